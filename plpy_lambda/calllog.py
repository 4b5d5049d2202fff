"""The server-log line of a slow or failed call (aws_lambda.log_min_duration,
aws_lambda.log_failures), as log_min_duration_statement logs a slow statement.

One LOG line per call, key=value: the function as given, its qualifier when there is one,
its invocation type, the HTTP status (or none), the duration, Lambda's request id and the
tenant when there are some, and for a failure its SQLSTATE. Never a payload, a context or a
log tail. A call canceled by statement_timeout or a cancel is not logged: PostgreSQL logs
the cancel itself.
"""

from plpy_lambda import errors


def note(plpy, operator_settings, call, outcome, seconds):
    """LOG call's line when it took at least log_min_duration, or failed with log_failures on.
    `outcome` is invoke's result dict or the call's LambdaError."""
    if isinstance(outcome, errors.Canceled):
        return
    failed = isinstance(outcome, errors.LambdaError)
    threshold = operator_settings.log_min_duration
    if not (failed and operator_settings.log_failures) and (threshold is None or seconds < threshold):
        return
    if failed:
        status, request_id = outcome.status_code, outcome.request_id
    else:
        status, request_id = outcome["status_code"], outcome["request_id"]
    fields = [("function", call.function_name), ("qualifier", call.qualifier),
              ("invocation_type", call.invocation_type), ("status", status),
              ("duration_ms", f"{seconds * 1000:.1f}"), ("request_id", request_id),
              ("tenant_id", call.tenant_id)]
    if failed:
        fields.append(("sqlstate", outcome.sqlstate))
    words = " ".join(f"{name}={_value(value)}" for name, value in fields if value is not None)
    plpy.log(f"aws_lambda: {'failed' if failed else 'slow'} call: {words}")


def _value(value):
    text = str(value)
    return f'"{text}"' if " " in text or '"' in text else text
