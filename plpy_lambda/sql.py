"""Entry points of the SQL functions: arguments in from SQL, rows (with error columns) out.

Each gets plpy and GD passed in. Failures come back as error columns (invoke's: as None,
its error columns kept for failure()), never as Python exceptions, so that the SQL layer
can raise them with RDS's exact message, DETAIL and a SQLSTATE of ours (an exception
leaving PL/Python is always printed as "Type: message", with a traceback).

batch and delivery are imported by the functions that use them: a connection whose
first call is an invoke does not pay for them.
"""

from plpy_lambda import arguments, backend, errors, invoke, settings

_ENQUEUE = ("SELECT aws_lambda.invoke_on_commit($1, $2::json, $3, $4, $5, $6::json, $7, "
            "tenant_id => coalesce($8, ''), durable_execution_name => $9) AS id")
# An Event queued by aws_lambda.events_after_commit: RDS's 202, the other columns NULL.
_QUEUED_EVENT = (202, None, None, None)


def invoke_one(plpy, GD, result_type, function_name, payload, region, invocation_type, log_type,
               context, qualifier, composite_region, from_composite, connect_timeout,
               request_timeout, conf_load_time, events_after_commit=None, tenant_setting=None,
               durable_setting=None):
    """One invocation: the row of aws_lambda_internal._invoke_json or _invoke_jsonb
    (status_code, payload, executed_version, log_result), or None when it failed, with
    the failure kept for failure(). result_type ('json' or 'jsonb') is the payload
    column's type: a payload it cannot hold is an error of ours (LM005). tenant_setting and
    durable_setting are the session's aws_lambda.tenant_id and durable_execution_name."""
    state = backend.state(GD)
    try:
        key = (function_name, region, invocation_type, log_type, context, qualifier,
               composite_region, from_composite, tenant_setting, durable_setting)
        call = state.checked_calls.get(key)
        if call is None:
            call = _checked(state, key, payload)
        try:
            body = arguments.payload_bytes(payload, call.invocation_type)
        except errors.LambdaError:
            _checked(state, key, payload)  # the error the arguments in order give
            raise
        if (events_after_commit is not None and call.invocation_type == "Event"
                and settings.session_boolean(settings.EVENTS_AFTER_COMMIT, events_after_commit)):
            _enqueue(plpy, state, call, payload)
            return _QUEUED_EVENT
        timeouts = state.timeouts.get((connect_timeout, request_timeout))
        if timeouts is None:
            timeouts = state.remember(state.timeouts, (connect_timeout, request_timeout),
                                      settings.timeouts(connect_timeout, request_timeout))
        operator_settings = settings.operator_settings(plpy, state.settings_cache,
                                                       conf_load_time)
        result = invoke.for_result_type(
            invoke.run(plpy, state, call, timeouts, operator_settings, body), result_type)
        return (result["status_code"], result["payload"], result["executed_version"],
                result["log_result"])
    except errors.LambdaError as error:
        state.failure = errors.as_row(error)
        return None


def failure(GD):
    """aws_lambda_internal._failure: the error columns (sqlstate, message, detail, hint) of
    the failure the last invoke_one returned None for, taken once."""
    state = backend.state(GD)
    row, state.failure = state.failure, None
    if row is None:  # only a call out of turn, by the extension's owner
        return ("XX000", "aws_lambda: no failed invocation to report", None, None)
    return (row["error_sqlstate"], row["error_message"], row["error_detail"], row["error_hint"])


def _checked(state, key, payload):
    """The Invocation for invoke's arguments but the payload (kept per backend), or the
    first error the arguments give, checked in order with the payload."""
    (function_name, region, invocation_type, log_type, context, qualifier, composite_region,
     from_composite, tenant_setting, durable_setting) = key
    try:
        call = arguments.from_sql(function_name, "{}", region, invocation_type, log_type,
                                  context, qualifier, composite_region=composite_region,
                                  from_composite=from_composite)
    except errors.LambdaError:
        arguments.from_sql(function_name, payload, region, invocation_type, log_type, context,
                           qualifier, composite_region=composite_region,
                           from_composite=from_composite)
        raise
    call = call.with_headers(arguments.tenant_id(None, tenant_setting),
                           arguments.durable_execution_name(None, durable_setting))
    return state.remember(state.checked_calls, key, call)


def _enqueue(plpy, state, call, payload):
    """aws_lambda.events_after_commit: queue the checked call as invoke_on_commit does."""
    plan = state.enqueue_plan
    if plan is None:
        plan = state.enqueue_plan = plpy.prepare(
            _ENQUEUE, ["text", "text", "text", "text", "text", "text", "text", "text", "text"])
    queued = call.queued()
    try:
        plpy.execute(plan, [queued["function_name"], payload, queued["region"],
                            queued["invocation_type"], queued["log_type"], queued["context"],
                            queued["qualifier"], queued["tenant_id"],
                            queued["durable_execution_name"]])
    except plpy.SPIError as error:  # on a hot standby: invoke_on_commit's 25006
        on_standby = getattr(error, "sqlstate", None) == "25006"
        raise errors.Refused(error, errors.EVENTS_ON_STANDBY if on_standby else None) from None


def invoke_many(plpy, GD, function_name, payloads, region, invocation_type, log_type, context,
                qualifier, max_concurrency, connect_timeout, request_timeout, conf_load_time,
                result_type="json", tenant_id=None, tenant_setting=None):
    """Rows of the batch, in order; an error of the whole call is one row without ordinality.

    An item's error row keeps what the function gave: its error payload (LM010) in
    payload, when the shell's type holds it, and log_result (log_type => 'Tail')."""
    from plpy_lambda import batch

    state = backend.state(GD)
    try:
        shared = arguments.from_sql(
            function_name, "{}", region, invocation_type, log_type, context, qualifier
        ).with_headers(arguments.tenant_id(tenant_id, tenant_setting))
        batch.check_concurrency(max_concurrency)
        if payloads is None:
            raise errors.BadArgument("payloads", "must not be NULL", null=True)
        if payloads and isinstance(payloads[0], list):  # PL/Python's form of a 2-D array
            raise errors.BadArgument(
                "payloads", f"is a {_dimensions(payloads)}-dimensional array",
                hint="Pass a one-dimensional array: one payload per element "
                     "(array_agg of the payloads, or ARRAY(SELECT unnest(...)) to flatten one).")
        timeouts = settings.timeouts(connect_timeout, request_timeout)
        operator_settings = settings.operator_settings(plpy, state.settings_cache,
                                                       conf_load_time)
        calls = _calls_of(shared, payloads)
        for ordinality, outcome in batch.run(plpy, state, calls, timeouts,
                                             operator_settings, max_concurrency):
            if not isinstance(outcome, errors.LambdaError):
                try:
                    outcome = invoke.for_result_type(outcome, result_type)
                except errors.LambdaError as error:
                    outcome = error
            if isinstance(outcome, errors.LambdaError):
                yield {"ordinality": ordinality, **errors.NO_RESULT,
                       "payload": invoke.error_payload(outcome, result_type),
                       "log_result": outcome.log_result, "request_id": outcome.request_id,
                       **errors.as_row(outcome)}
            else:
                yield {"ordinality": ordinality, **outcome, **errors.NO_ERROR}
    except errors.LambdaError as error:
        yield {"ordinality": None, **errors.NO_RESULT, **errors.as_row(error)}


def _dimensions(array):
    """The dimensions of an array as PL/Python gives it (nested lists; PostgreSQL's arrays
    are rectangular, so the first element of each level tells)."""
    dimensions = 0
    while isinstance(array, list):
        dimensions += 1
        array = array[0] if array else None
    return dimensions


def _calls_of(shared, payloads):
    """(ordinality, Invocation or LambdaError) for each payload of invoke_many."""
    for ordinality, payload in enumerate(payloads, start=1):
        try:
            data = arguments.payload_bytes(payload, shared.invocation_type)
        except errors.LambdaError as error:
            yield ordinality, error
            continue
        yield ordinality, shared.with_payload(data)


NOT_QUEUED = dict.fromkeys(
    ("function_name", "region", "invocation_type", "log_type", "context", "qualifier", "tenant_id",
     "durable_execution_name")
)


def check_queued(GD, function_name, region, invocation_type, log_type, context, qualifier,
                 composite_region, from_composite, payload_size, tenant_id=None,
                 tenant_setting=None, durable_execution_name=None):
    """aws_lambda_internal._check_queued: invoke_on_commit's arguments as stored, or the error."""
    from plpy_lambda import delivery

    try:
        queued = delivery.check(backend.state(GD), function_name, region, invocation_type,
                                log_type, context, qualifier, composite_region, from_composite,
                                payload_size, tenant_id, tenant_setting, durable_execution_name)
        return {**queued, **errors.NO_ERROR}
    except errors.LambdaError as error:
        return {**NOT_QUEUED, **errors.as_row(error)}


def deliver_batch(plpy, GD, batch_size, max_concurrency, connect_timeout, request_timeout,
                  conf_load_time, report_deliveries=None):
    """aws_lambda_internal._deliver_batch: the counts per status of one delivered batch, or the error."""
    from plpy_lambda import delivery

    state = backend.state(GD)
    try:
        timeouts = settings.timeouts(connect_timeout, request_timeout)
        report = settings.session_boolean(settings.REPORT_DELIVERIES, report_deliveries)
        operator_settings = settings.operator_settings(plpy, state.settings_cache,
                                                       conf_load_time)
        counts = delivery.deliver_batch(plpy, state, batch_size, max_concurrency, timeouts,
                                        operator_settings, report)
        return {**counts, **errors.NO_ERROR}
    except errors.LambdaError as error:
        return {**dict.fromkeys(delivery.COUNTED, 0), **errors.as_row(error)}


def prune_deliveries(plpy, GD, conf_load_time, every):
    """aws_lambda_internal._prune_deliveries: how many expired deliveries it removed, or the error."""
    from plpy_lambda import delivery

    state = backend.state(GD)
    try:
        operator_settings = settings.operator_settings(plpy, state.settings_cache,
                                                       conf_load_time)
        return {"pruned": delivery.prune(plpy, state, operator_settings, every),
                **errors.NO_ERROR}
    except errors.LambdaError as error:
        return {"pruned": 0, **errors.as_row(error)}
