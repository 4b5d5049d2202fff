"""Entry points of the SQL functions. Each gets plpy and GD passed in.

Failures come back as error columns, never as Python exceptions, so that the SQL
layer can raise them with RDS's exact message, DETAIL and a SQLSTATE of ours
(an exception leaving PL/Python is always printed as "Type: message").
"""

from plpy_lambda import arguments, backend, errors, invoke as invocation, settings

NO_RESULT = {"status_code": None, "payload": None, "executed_version": None, "log_result": None}
NO_ERROR = {"error_sqlstate": None, "error_message": None, "error_detail": None, "error_hint": None}


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
        return {**invocation.run(plpy, state, call, timeouts, operator), **NO_ERROR}
    except errors.LambdaError as error:
        return {**NO_RESULT, **errors.as_row(error)}
