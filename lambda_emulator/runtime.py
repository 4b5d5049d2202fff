"""One handler invocation, done the way the AWS Lambda Python runtime does it.

Owns the context object (and its client_context), capturing what the handler
prints, marshalling the result (``json.dumps`` with default separators and, like
the python3.12+ runtimes, non-ASCII characters left unescaped), the runtime's
error payload ``{"errorMessage", "errorType", "requestId", "stackTrace"}``, and
the log text: ``START``, the handler's output, ``END`` and ``REPORT`` lines.
A tenant-isolated function's calls run in the tenant's own module instance, and
``context.tenant_id`` names the tenant (None otherwise), as in Lambda's Python
runtime. A handler that raises ``InvokeError`` gets the Invoke call answered with
that AWS error (``Outcome.invoke_error``) instead of a function error.
"""

from __future__ import annotations

import decimal
import json
import math
import resource
import time
import uuid
from dataclasses import dataclass

from . import capture
from .functions import InitError, stack_trace
from .invoke_errors import InvokeError

_LOG_STREAM_ID = uuid.uuid4().hex


class Client:
    """context.client_context.client, as in the real runtime."""

    __slots__ = ("installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name")


class ClientContext:
    """context.client_context: ``custom``, ``env`` and ``client`` like the real
    runtime, plus ``raw``: the decoded JSON object as the caller sent it."""

    __slots__ = ("custom", "env", "client", "raw")

    def __init__(self, data):
        self.raw = data
        self.custom = data.get("custom")
        self.env = data.get("env")
        self.client = None
        if isinstance(data.get("client"), dict):
            self.client = Client()
            for field in Client.__slots__:
                setattr(self.client, field, data["client"].get(field))


class LambdaContext:
    """The context argument handlers receive."""

    def __init__(self, target, request_id, invoked_function_arn, client_context, tenant_id=None):
        self.function_name = target.name
        self.function_version = target.version
        self.invoked_function_arn = invoked_function_arn
        self.memory_limit_in_mb = str(target.memory_size)  # a string in the real runtime too
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{target.name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/", time.gmtime()) + f"[{target.version}]{_LOG_STREAM_ID}"
        self.client_context = ClientContext(client_context) if client_context is not None else None
        self.identity = None
        self.tenant_id = tenant_id  # the X-Amz-Tenant-Id of a tenant-isolated function's call
        self._deadline = time.monotonic() + target.timeout

    def get_remaining_time_in_millis(self):
        """Milliseconds left before the configured timeout (which is not enforced)."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class Outcome:
    payload: bytes
    function_error: str | None  # "Unhandled" when the handler failed
    log: str
    invoke_error: InvokeError | None = None  # raised by the handler: the call's answer is this AWS error


def _decimal(value):
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def error_payload(error_type, message, request_id, trace=()):
    body = {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": list(trace)}
    return json.dumps(body, ensure_ascii=False).encode()


def run(store, target, request_id, event, invoked_function_arn, client_context=None, tenant_id=None):
    """Run target's handler on event (in tenant_id's own module instance when given);
    return its Outcome. Never raises for handler faults."""
    error = None
    invoke_error = None
    init_ms = None
    with capture.captured() as output:
        started = time.perf_counter()
        try:
            handler, init_ms = store.load(target, tenant_id)
            started = time.perf_counter()
            context = LambdaContext(target, request_id, invoked_function_arn, client_context, tenant_id)
            result = handler(event, context)
        except InvokeError as failure:
            invoke_error = failure
            result = None
            print(f"[ERROR] {failure.error_type}: {failure.message} (the Invoke call is answered "
                  f"{failure.status} {failure.error_type})")
        except InitError as failure:
            error = (failure.error_type, str(failure), failure.stack_trace)
        except (Exception, SystemExit) as failure:
            error = (type(failure).__name__, str(failure), stack_trace(failure))
        duration_ms = (time.perf_counter() - started) * 1000
        if error is None and invoke_error is None:
            try:
                payload = json.dumps(result, ensure_ascii=False, default=_decimal).encode()
            except (TypeError, ValueError) as failure:
                error = ("Runtime.MarshalError", f"Unable to marshal response: {failure}", [])
        if error is not None:
            payload = error_payload(*error[:2], request_id, error[2])
            log_lines = f"[ERROR] {error[0]}: {error[1]}\n"
            if error[2]:
                log_lines += "Traceback (most recent call last):\n" + "".join(error[2])
            print(log_lines, end="")
    max_memory_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    report = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {max(1, math.ceil(duration_ms))} ms\tMemory Size: {target.memory_size} MB\t"
        f"Max Memory Used: {max_memory_mb} MB\t"
        + (f"Init Duration: {init_ms:.2f} ms\t" if init_ms is not None else "")
    )
    text = output.getvalue()
    if text and not text.endswith("\n"):
        text += "\n"
    log = f"START RequestId: {request_id} Version: {target.version}\n{text}END RequestId: {request_id}\n{report}\n"
    if invoke_error is not None:
        return Outcome(b"", None, log, invoke_error)
    return Outcome(payload, "Unhandled" if error else None, log)
