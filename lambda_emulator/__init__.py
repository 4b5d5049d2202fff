"""A local endpoint that speaks the AWS Lambda Invoke API and runs Python handler files.

For the demo, the test suite, and your own development and CI: point
``aws_lambda.endpoint_override`` (or any AWS SDK's ``endpoint_url``) at it.
It listens on 127.0.0.1 only unless told otherwise, and needs nothing but the
standard library (botocore only to check signatures, when credentials are set).

Python::

    from lambda_emulator import Emulator
    with Emulator("examples/functions", credentials={"AKID": "SECRET"}) as emu:
        emu.url                       # http://127.0.0.1:PORT
        emu.requests[-1].qualifier    # what was received
        emu.invocations("simple")     # how often a handler ran
        emu.tenant_invocations("tenant_counter")  # {tenant_id: runs}
        emu.executions("durable_order")   # durable executions started

``ssl_context=`` (a server-side ssl.SSLContext) serves HTTPS; ``url`` is then https://.

Command line (prints ``plpy_lambda emulator listening on http://127.0.0.1:PORT``,
serves until SIGTERM or SIGINT)::

    python3 -m lambda_emulator --functions examples/functions [--port 9001]
        [--host 127.0.0.1] [--region us-east-1] [--account-id 123456789012]
        [--credentials AKID:SECRET ...] [--assume-role-duration 3600]
        [--port-file FILE] [--quiet]

Functions directory:

- ``NAME.py`` defining ``handler(event, context)``: function NAME, version ``$LATEST``;
- ``NAME@N.py``: its published version N (``X-Amz-Executed-Version: N``);
- ``NAME.json`` (optional): ``{"aliases": {"custom_version": "1"}, "handler":
  "handler", "memory_size": 128, "timeout": 3}``; an alias may also point at
  ``"$LATEST"``. The timeout only feeds ``get_remaining_time_in_millis()``.
  Today's Lambda features: ``"tenancy": {"tenant_isolation_mode": "PER_TENANT"}``
  (tenant isolation), ``"durable": true`` (a durable function),
  ``"invocation_types": ["Event"]`` (the only invocation types it supports) and
  ``"invoke_error": "RecursiveInvocationException"`` (or ``{"type", "message",
  "status"}``: every call answered with that Invoke error).

Files are looked up on each call; an edited file is reloaded. Handlers run in the
emulator's process, in the request's thread (Event: a background thread); what
they print (stdout and stderr) goes to the call's log, which ``Tail`` returns.
The context has the real runtime's attributes; ``context.client_context`` has
``custom``, ``env``, ``client`` and ``raw`` (the decoded JSON object).

Invoke (``POST /2015-03-31/functions/{FunctionName}/invocations[?Qualifier=]``)
behaves like Lambda: name, ``name:qualifier``, partial or full ARN; invocation
types RequestResponse (200), Event (202, runs in the background), DryRun (204);
``Tail`` logs; client context; ``X-Amz-Function-Error: Unhandled`` with the
Python runtime's error payload; 404 ResourceNotFoundException; 413
RequestEntityTooLargeException over 6 MB (1 MB for Event); 400
InvalidParameterValueException / InvalidRequestContentException. Empty payloads
reach the handler as ``{}``. One emulator stands for every region and account:
ARNs naming any of them reach the same functions; the ARN a handler or an error
message sees takes the region from the function's ARN, else from the signature,
else ``region``, and the account from the ARN, else ``account_id``.

Tenant isolation: a ``tenancy`` function must be called with ``X-Amz-Tenant-Id``
(1-256 characters of ``[a-zA-Z0-9._:/=+@ -]``, else 400 ValidationException),
any other function without it; both mistakes are 400
InvalidParameterValueException, as AWS documents. Each tenant runs in its own
module instance per function version (module globals one tenant's calls keep are
never seen by another's); ``context.tenant_id`` names it (None otherwise).

Durable functions: each call of a ``durable`` function starts a durable execution,
answered (200 or 202) with ``X-Amz-Durable-Execution-Arn``
(``arn:aws:lambda:REGION:ACCOUNT:function:NAME:VERSION/durable-execution/EXECUTION/ID``).
``X-Amz-Durable-Execution-Name`` (1-64 characters of ``[a-zA-Z0-9-_]``) is an
idempotency key within the function: the same name with the same payload and
version returns the existing execution (same ARN, the handler does not run again,
RequestResponse gets the stored answer); with another payload or version, 409
DurableExecutionAlreadyStartedException naming the execution. The name sent to a
function that is not durable is 400 InvalidParameterValueException (the
emulator's choice; AWS documents no answer). DryRun starts nothing.

``$LATEST.PUBLISHED`` (as ``Qualifier`` or after the name) runs the highest
published ``NAME@N.py``; with none, 400 NoPublishedVersionException. Invoke's own
errors on purpose: a handler raising ``lambda_emulator.InvokeError(error_type,
message=None, status=None)`` gets the call answered with that AWS error, at the
API model's status (RecursiveInvocationException 400, ModeNotSupportedException
400, ...); ``invocation_types`` answers the other types 400
ModeNotSupportedException; ``invoke_error`` answers every call with its error.

Signatures: with ``credentials``, every request must be SigV4-signed by a known
key (403 MissingAuthenticationTokenException, UnrecognizedClientException,
InvalidSignatureException, ExpiredTokenException otherwise); any region is
accepted in the signature's scope. Without, anything is accepted and the
claimed access key is still recorded.

STS: ``POST /`` ``Action=AssumeRole`` issues temporary keys (valid
``assume_role_duration`` seconds, or DurationSeconds if shorter) that Invoke
then accepts; each Invoke record notes the role its key came from (``role_arn``).

Faults (``emu.set_fault(function, kind, count=None, **params)``, function ``"*"``
for all; ``emu.clear_faults()``) replace the next ``count`` answers for a function
(all of them when count is None), in the order set:
``close_before_response`` (reset: a TCP reset instead of an orderly close);
``drop_mid_response`` (size, sent); ``delay`` (seconds; the call is then served
normally); ``status`` (status, error_type, message, retry_after: 429
TooManyRequestsException with Retry-After, 500/502/503 ServiceException, 413
RequestTooLargeException, ...); ``not_json`` (body, status); ``huge`` (size
bytes of valid JSON, streamed, so any size; chunked: without a Content-Length);
``drip`` (size, interval, chunk, head: the answer comes chunk bytes every
interval seconds, its head too when head is true); ``raw`` (body or body_base64,
status, function_error, log or log_base64: an answer exactly as given). Faults are applied before the
signature check, and the handler does not run (except for ``delay``). Two
faults are properties of the server's kept-alive connections instead (function
ignored, count counting connections): ``idle_close`` (seconds, reset: close a
connection left idle that long after an answer) and ``close_unread`` (close a
connection as the next request arrives on it, without reading it).

Records: ``emu.requests`` lists the last 10000 Invoke requests as
InvokeRecord(request_id, path_name, function, qualifier, invocation_type,
log_type, headers, body, received, access_key, role_arn, fault, status,
tenant_id, durable_execution_name, durable_execution_arn);
``emu.invocations(fn)`` (handler runs), ``emu.tenant_invocations(fn)`` (handler
runs by tenant), ``emu.executions(fn)`` (durable executions started),
``emu.durable_executions`` (DurableExecution records: arn, function, version,
name, payload, status, ...), ``emu.assume_role_calls``, ``emu.wait_idle()``
(Event handlers done), ``emu.reset()`` (forgets executions too).

HTTP control endpoints (unsigned): ``GET /_emulator/health``,
``GET /_emulator/requests`` (counts, with ``executions`` and
``tenant_invocations``, durable execution and request summaries),
``GET /_emulator/executions`` (durable executions started, by function, and
their summaries),
``GET|POST|DELETE /_emulator/faults`` (POST ``{"function": "fn", "kind": "status",
"count": 1, "status": 429}``; DELETE ``?function=fn`` or all),
``POST /_emulator/reset``.
"""

from .core import Emulator
from .invoke_errors import InvokeError

__all__ = ["Emulator", "InvokeError"]
