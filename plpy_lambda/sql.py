"""Entry points of the SQL functions. Each gets plpy and GD passed in.

Failures come back as error columns, never as Python exceptions, so that the SQL
layer can raise them with RDS's exact message, DETAIL and a SQLSTATE of ours
(an exception leaving PL/Python is always printed as "Type: message").
"""

from plpy_lambda import arguments, backend, batch, errors, invoke as invocation, settings


def invoke(plpy, GD, function_name, payload, region, invocation_type, log_type, context,
           qualifier, composite_region, from_composite, connect_timeout, request_timeout,
           conf_load_time):
    state = backend.of(GD)
    try:
        call = arguments.from_sql(
            function_name, payload, region, invocation_type, log_type, context, qualifier,
            composite_region=composite_region, from_composite=from_composite,
        )
        timeouts = settings.timeouts(connect_timeout, request_timeout)
        operator = settings.operator_settings(plpy, state.settings_cache, conf_load_time)
        return {**invocation.run(plpy, state, call, timeouts, operator), **errors.NO_ERROR}
    except errors.LambdaError as error:
        return {**errors.NO_RESULT, **errors.as_row(error)}


def invoke_many(plpy, GD, function_name, payloads, region, invocation_type, log_type, context,
                qualifier, max_concurrency, connect_timeout, request_timeout, conf_load_time):
    """Rows of the batch, in order; an error of the whole call is one row without ordinality."""
    state = backend.of(GD)
    try:
        template = arguments.from_sql(
            function_name, "{}", region, invocation_type, log_type, context, qualifier
        )
        batch.check_concurrency(max_concurrency)
        if payloads is None:
            raise errors.BadArgument("payloads", "must not be NULL", null=True)
        timeouts = settings.timeouts(connect_timeout, request_timeout)
        operator = settings.operator_settings(plpy, state.settings_cache, conf_load_time)
        yield from batch.run(plpy, state, template, payloads, timeouts, operator, max_concurrency)
    except errors.LambdaError as error:
        yield {"ordinality": None, **errors.NO_RESULT, **errors.as_row(error)}
