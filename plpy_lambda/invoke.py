"""One invocation: a checked Invocation in, a result row out (or a LambdaError)."""

import time

from plpy_lambda import answers, client, endpoints, errors, names
from plpy_lambda.errors import BadArgument, BadConfiguration

USER_AGENT = "aws_lambda-postgresql/1.0"


def prepare(backend, call, operator_settings, body=None):
    """The request for one checked call (with body instead of its payload, when given),
    and the region it goes to. What a call's arguments decide (the region, the endpoint,
    the headers) is worked out once per backend and endpoint override."""
    key = (call.function_name, call.region, call.qualifier, call.invocation_type, call.log_type,
           call.client_context, call.tenant_id, call.durable_execution_name,
           operator_settings.endpoint_override)
    found = backend.requests.get(key)
    if found is None:
        region = call.region or _server_region(backend)
        endpoint = endpoints.for_region(backend, region, operator_settings.endpoint_override)
        found = backend.remember(backend.requests, key, (
            endpoint, region, call.function.path_name(), request_headers(call), [None]))
    endpoint, region, function, headers, shape = found
    request = client.Request(endpoint, region, function, call.qualifier, headers,
                             call.payload if body is None else body, shape)
    return request, region


def run(plpy, backend, call, timeouts, operator_settings, body=None):
    """Send one call (with body instead of its payload, when given) and wait for it,
    on the backend's thread: its result row (see result_of), or its LambdaError."""
    request, region = prepare(backend, call, operator_settings, body)
    started = time.monotonic()
    try:
        response = backend.transport.run(
            request, operator_settings.role_arn, timeouts, started + timeouts.total,
            operator_settings.max_response_bytes, backend.checker(plpy))
        result = result_of(call, region, response)
    except errors.LambdaError as error:
        if operator_settings.logs_calls:
            _log(plpy, operator_settings, call, error, started)
        raise
    if operator_settings.logs_calls:
        _log(plpy, operator_settings, call, result, started)
    return result


def _log(plpy, operator_settings, call, outcome, started):
    """The server-log line of a slow or failed call, when the operator asks for them."""
    from plpy_lambda import calllog

    calllog.note(plpy, operator_settings, call, outcome, time.monotonic() - started)


def request_headers(call):
    headers = {
        "User-Agent": USER_AGENT,
        "X-Amz-Invocation-Type": call.invocation_type,
        "X-Amz-Log-Type": call.log_type,
    }
    if call.client_context is not None:
        headers["X-Amz-Client-Context"] = call.client_context
    if call.tenant_id is not None:
        headers["X-Amz-Tenant-Id"] = call.tenant_id
    if call.durable_execution_name is not None:
        headers["X-Amz-Durable-Execution-Name"] = call.durable_execution_name
    return headers


def _server_region(backend):
    region = backend.credentials.default_region()
    if not region:
        raise BadArgument(
            "region",
            "no region given, and the database server has no default region",
            hint="Pass region, use a full ARN, or set AWS_REGION in the server's environment "
            "(or region in the postgres OS user's ~/.aws/config).",
        )
    try:
        return names.check_region(region)
    except BadArgument:
        raise BadConfiguration(
            f'the server\'s default region "{region[:40]}" is not an AWS region name'
        ) from None


def result_of(call, region, response):
    """Map the service's answer to a result row, or raise the matching error.

    A payload is checked for json (answers.py); the row's "answer" says whether jsonb
    holds it too (see for_result_type). An error after the function ran carries the
    log (log_result, log_tail) and, for a function error, its payload (answer).
    """
    headers = response.headers
    if response.status >= 300:
        error_type = headers.get("x-amzn-errortype", "").split(":")[0] or f"HTTP {response.status}"
        raise errors.service_error(response.status, error_type, _service_message(response.body),
                                   call.durable_execution_name, _request_id(headers))
    log_result = _header_text(headers.get("x-amz-log-result")) if call.log_type == "Tail" else None
    function_error = headers.get("x-amz-function-error")
    if function_error:
        error = errors.FunctionFailed(call.display_arn(region), function_error,
                                      response.body.decode("utf-8", "replace"),
                                      size=len(response.body))
        error.answer = answers.check(response.body)
        raise _ran(error, response, log_result)
    answer = payload = None
    if call.invocation_type == "RequestResponse" and response.body:
        answer = answers.check(response.body)
        if answer.problem is not None:
            raise _ran(errors.invalid_response(answer.problem.reason, answer.problem.hint),
                       response, log_result)
        payload = answer.text
    return {
        "status_code": response.status,
        "payload": payload,
        "executed_version": _header_text(headers.get("x-amz-executed-version")),
        "log_result": log_result,
        "durable_execution_arn": _header_text(headers.get("x-amz-durable-execution-arn")),
        "request_id": _request_id(headers),
        "answer": answer,
    }


def for_result_type(result, result_type):
    """The result row of result_of for the shell's type ('json' or 'jsonb'), without its
    "answer"; raises LM005 when jsonb cannot hold the payload that json would."""
    answer = result.pop("answer", None)
    if answer is not None and result_type == "jsonb":
        problem = answer.problem_for("jsonb")
        if problem is not None:
            error = errors.invalid_response(problem.reason, problem.hint)
            error.status_code = result["status_code"]
            error.log_result = result["log_result"]
            error.log_tail = answers.log_tail(result["log_result"])
            raise error
    return result


def error_payload(error, result_type):
    """The function's error payload for a result row's payload column, when the
    shell's type holds it (the whole of it; DETAIL has it cut)."""
    answer = error.answer
    if answer is None or answer.problem_for(result_type) is not None:
        return None
    return answer.text


def _ran(error, response, log_result):
    """error, for an answer of the function: with its HTTP status, request id and log."""
    error.status_code = response.status
    error.request_id = _request_id(response.headers)
    error.log_result = log_result
    error.log_tail = answers.log_tail(log_result)
    return error


def _request_id(headers):
    """The answer's x-amzn-RequestId (Lambda's request id), or None."""
    return _header_text(headers.get("x-amzn-requestid"))


def _header_text(value):
    """A header value as a text column holds it (no NUL)."""
    return value.replace("\x00", "\ufffd") if value and "\x00" in value else value


def _service_message(body):
    import json  # only for an error of the service

    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return body.decode("utf-8", "replace")[:300].strip()
    if isinstance(document, dict):
        return str(document.get("message") or document.get("Message") or "")[:300]
    return ""
