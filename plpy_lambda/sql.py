"""Entry points of the SQL functions. Each gets plpy and GD passed in.

Failures come back as error columns, never as Python exceptions, so that the SQL
layer can raise them with RDS's exact message, DETAIL and a SQLSTATE of ours
(an exception leaving PL/Python is always printed as "Type: message").
"""

import dataclasses

from plpy_lambda import arguments, backend, batch, delivery, errors, invoke as invocation, settings

QUEUED_EVENT = {"status_code": 202, "payload": None, "executed_version": None, "log_result": None}
_ENQUEUE = "SELECT aws_lambda.invoke_on_commit($1, $2::json, $3, $4, $5, $6::json, $7) AS id"


def invoke(plpy, GD, function_name, payload, region, invocation_type, log_type, context,
           qualifier, composite_region, from_composite, connect_timeout, request_timeout,
           conf_load_time, events_after_commit=None, result_type="json"):
    """One invocation; result_type ('json' or 'jsonb') is the type the shell casts the
    payload to, so that a payload it cannot hold is an error of ours (LM005)."""
    state = backend.of(GD)
    try:
        call = arguments.from_sql(
            function_name, payload, region, invocation_type, log_type, context, qualifier,
            composite_region=composite_region, from_composite=from_composite,
        )
        if call.invocation_type == "Event" and settings.events_after_commit(events_after_commit):
            _enqueue(plpy, state, call, payload)
            return {**QUEUED_EVENT, **errors.NO_ERROR}
        timeouts = settings.timeouts(connect_timeout, request_timeout)
        operator = settings.operator_settings(plpy, state.settings_cache, conf_load_time)
        result = invocation.run(plpy, state, call, timeouts, operator)
        return {**invocation.for_result_type(result, result_type), **errors.NO_ERROR}
    except errors.LambdaError as error:
        return {**errors.NO_RESULT, **errors.as_row(error)}


def _enqueue(plpy, state, call, payload):
    """aws_lambda.events_after_commit: queue the checked call as invoke_on_commit does."""
    plan = state.enqueue_plan
    if plan is None:
        plan = state.enqueue_plan = plpy.prepare(
            _ENQUEUE, ["text", "text", "text", "text", "text", "text", "text"])
    queued = call.queued()
    plpy.execute(plan, [queued["function_name"], payload, queued["region"],
                        queued["invocation_type"], queued["log_type"], queued["context"],
                        queued["qualifier"]])


def invoke_many(plpy, GD, function_name, payloads, region, invocation_type, log_type, context,
                qualifier, max_concurrency, connect_timeout, request_timeout, conf_load_time,
                result_type="json"):
    """Rows of the batch, in order; an error of the whole call is one row without ordinality.

    An item's error row keeps what the function gave: its error payload (LM010) in
    payload, when the shell's type holds it, and log_result (log_type => 'Tail')."""
    state = backend.of(GD)
    try:
        shared = arguments.from_sql(
            function_name, "{}", region, invocation_type, log_type, context, qualifier
        )
        batch.check_concurrency(max_concurrency)
        if payloads is None:
            raise errors.BadArgument("payloads", "must not be NULL", null=True)
        timeouts = settings.timeouts(connect_timeout, request_timeout)
        operator = settings.operator_settings(plpy, state.settings_cache, conf_load_time)
        calls = _calls_of(shared, payloads)
        for ordinality, outcome in batch.run(plpy, state, calls, timeouts, operator,
                                             max_concurrency):
            if not isinstance(outcome, errors.LambdaError):
                try:
                    outcome = invocation.for_result_type(outcome, result_type)
                except errors.LambdaError as error:
                    outcome = error
            if isinstance(outcome, errors.LambdaError):
                yield {"ordinality": ordinality, **errors.NO_RESULT,
                       "payload": invocation.error_payload(outcome, result_type),
                       "log_result": outcome.log_result, **errors.as_row(outcome)}
            else:
                yield {"ordinality": ordinality, **outcome, **errors.NO_ERROR}
    except errors.LambdaError as error:
        yield {"ordinality": None, **errors.NO_RESULT, **errors.as_row(error)}


def _calls_of(shared, payloads):
    """(ordinality, Invocation or LambdaError) for each payload of invoke_many."""
    for ordinality, payload in enumerate(payloads, start=1):
        try:
            data = arguments.payload_bytes(payload, shared.invocation_type)
        except errors.LambdaError as error:
            yield ordinality, error
            continue
        yield ordinality, dataclasses.replace(shared, payload=data)


NOT_QUEUED = dict.fromkeys(
    ("function_name", "region", "invocation_type", "log_type", "context", "qualifier")
)


def check_queued(GD, function_name, region, invocation_type, log_type, context, qualifier,
                 composite_region, from_composite, payload_size):
    """aws_lambda_internal._check_queued: invoke_on_commit's arguments as stored, or the error."""
    try:
        queued = delivery.check(backend.of(GD), function_name, region, invocation_type,
                                log_type, context, qualifier, composite_region, from_composite,
                                payload_size)
        return {**queued, **errors.NO_ERROR}
    except errors.LambdaError as error:
        return {**NOT_QUEUED, **errors.as_row(error)}


def deliver_batch(plpy, GD, batch_size, max_concurrency, connect_timeout, request_timeout,
                  conf_load_time):
    """aws_lambda_internal._deliver_batch: the counts per status of one delivered batch, or the error."""
    state = backend.of(GD)
    try:
        timeouts = settings.timeouts(connect_timeout, request_timeout)
        operator = settings.operator_settings(plpy, state.settings_cache, conf_load_time)
        counts = delivery.deliver_batch(plpy, state, batch_size, max_concurrency, timeouts,
                                        operator)
        return {**counts, **errors.NO_ERROR}
    except errors.LambdaError as error:
        return {**dict.fromkeys(delivery.COUNTED, 0), **errors.as_row(error)}
