"""One invocation: a checked Invocation in, a result row out (or a LambdaError)."""

import json
import time

from plpy_lambda import client, endpoints, errors, names
from plpy_lambda.errors import BadArgument, BadConfiguration

USER_AGENT = "aws_lambda-postgresql/1.0"


def prepare(backend, call, operator):
    """The request for one checked call, and the region it goes to."""
    region = call.region or _server_region(backend)
    endpoint = endpoints.for_region(backend, region, operator.endpoint_override)
    request = client.Request(
        endpoint=endpoint,
        region=region,
        function=call.function.path_name(),
        qualifier=call.qualifier,
        headers=request_headers(call),
        body=call.payload,
    )
    return request, region


def start(backend, request, timeouts, operator):
    """Send the request from a worker thread; returns the future and its deadline."""
    deadline = time.monotonic() + timeouts.total
    future = backend.waiter.submit(
        backend.transport.send, request, operator.role_arn, timeouts, deadline
    )
    return future, deadline


def run(plpy, backend, call, timeouts, operator):
    request, region = prepare(backend, call, operator)
    future, deadline = start(backend, request, timeouts, operator)
    response = backend.waiter.wait(
        plpy,
        future,
        deadline,
        lambda: errors.request_timed_out(request.endpoint, timeouts.request, sent=True),
    )
    return result_of(call, region, response)


def request_headers(call):
    headers = {
        "User-Agent": USER_AGENT,
        "X-Amz-Invocation-Type": call.invocation_type,
        "X-Amz-Log-Type": call.log_type,
    }
    if call.client_context is not None:
        headers["X-Amz-Client-Context"] = call.client_context
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
    """Map the service's answer to a result row, or raise the matching error."""
    headers = response.headers
    if response.status >= 300:
        error_type = headers.get("x-amzn-errortype", "").split(":")[0] or f"HTTP {response.status}"
        raise errors.service_error(response.status, error_type, _service_message(response.body))
    body = response.body.decode("utf-8", "replace")
    function_error = headers.get("x-amz-function-error")
    if function_error:
        error = errors.FunctionFailed(call.display_arn(region), function_error, body)
        error.status_code = response.status
        raise error
    payload = None
    if call.invocation_type == "RequestResponse" and body:
        try:
            json.loads(body)
        except ValueError:
            raise errors.invalid_response("the function's payload is not JSON") from None
        payload = body
    return {
        "status_code": response.status,
        "payload": payload,
        "executed_version": headers.get("x-amz-executed-version"),
        "log_result": headers.get("x-amz-log-result") if call.log_type == "Tail" else None,
    }


def _service_message(body):
    try:
        document = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")[:300].strip()
    if isinstance(document, dict):
        return str(document.get("message") or document.get("Message") or "")[:300]
    return ""
