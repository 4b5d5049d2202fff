"""The Lambda Invoke API: ``POST /2015-03-31/functions/{FunctionName}/invocations``.

Owns what the real API does with one Invoke request, in this order: parse the
function name (bare name, ``name:qualifier``, partial or full ARN, URL-encoded)
and ``?Qualifier=``, apply a fault if one is set, check SigV4 when enabled,
validate headers and payload size, resolve the function, version or alias, and
run it: synchronously (``RequestResponse``), in a background thread (``Event``:
202 at once, no payload, no log, no client context) or not at all (``DryRun``:
204). Empty payloads reach the handler as ``{}``.

Limits: request payload 6 MB (6291456 bytes) for RequestResponse and 1 MB
(1048576 bytes) for Event, both answered 413 RequestEntityTooLargeException as
real Lambda does; client context 3583 bytes; response payload 6 MB (else the
runtime error Function.ResponseSizeTooLarge); ``X-Amz-Log-Result`` holds the
last 4096 bytes of the call's log.

One emulator stands for every region and account: an ARN naming any of them
reaches the same functions. The ARN the handler and error messages see uses the
region of the ARN in the path, else the region the request was signed for, else
the emulator's region, and the ARN's account, else the emulator's.

Today's Invoke, as the API model (botocore) and AWS's documentation describe it:

- ``X-Amz-Tenant-Id`` (TenantId: 1 to 256 characters of ``[a-zA-Z0-9._:/=+@ -]``;
  otherwise 400 ValidationException, like the other members whose constraints a
  request breaks). A tenant-isolated function (NAME.json ``tenancy``) must get one,
  and a function that is not tenant-isolated must not: both are 400
  InvalidParameterValueException, as AWS's tenant isolation troubleshooting page
  documents. Each tenant's calls run in the tenant's own module instance
  (functions.py), and ``context.tenant_id`` names the tenant.
- ``X-Amz-Durable-Execution-Name`` (1 to 64 characters of ``[a-zA-Z0-9-_]``, else
  400 ValidationException): every call of a durable function (NAME.json
  ``durable``) starts a durable execution or, for a name already used with the same
  payload and version, returns that one without running the handler again (a
  RequestResponse call gets the stored answer, waiting for it if the execution is
  still running); a name used with another payload or version is 409
  DurableExecutionAlreadyStartedException (durable.py). Answers of durable calls
  (200 and 202) carry ``X-Amz-Durable-Execution-Arn``; DryRun starts nothing. The
  name sent to a function that is not durable is 400 InvalidParameterValueException:
  AWS documents no answer for that case, and this mirrors its rule for a tenant id
  sent to a function that is not tenant-isolated. (Lambda also wants durable
  functions invoked by a qualified name; the emulator does not insist.)
- The qualifier ``$LATEST.PUBLISHED`` (in ``?Qualifier=`` or after the name) runs
  the highest published version; with none, 400 NoPublishedVersionException (the
  model's status for that error).
- NAME.json ``invocation_types`` (400 ModeNotSupportedException for the others)
  and ``invoke_error``, or a handler raising ``InvokeError``, answer with Invoke's
  own errors, such as RecursiveInvocationException (400), at the model's statuses
  (invoke_errors.py).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

from . import durable, faults, request_auth, runtime
from .functions import NoPublishedVersion
from .messages import HeaderDict, Response, aws_error, new_request_id

INVOKE_PATH = re.compile(r"/2015-03-31/functions/([^/]+)/invocations/?")
# Lambda's API model (botocore's NamespacedFunctionName, 1..256 characters); \d is ASCII there.
NAME_PATTERN = (r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
                r"(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?")
NAME_MAX = 256
_NAME_RE = re.compile(
    r"(?:arn:(?P<partition>aws[a-zA-Z-]*):lambda:)?"
    r"(?:(?P<region>(?:eusc-)?[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?"
    r"(?:(?P<account>\d{12}):)?(?:function:)?(?P<name>[a-zA-Z0-9_.-]+)"
    r"(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_-]+))?",
    re.ASCII,
)
_QUALIFIER_RE = re.compile(r"\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_-]{1,128}", re.ASCII)
TENANT_ID_RE = re.compile(r"[a-zA-Z0-9._:/=+\-@ ]{1,256}", re.ASCII)
TENANT_ID_PATTERN = r"[a-zA-Z0-9\._:\/=+\-@ ]+"  # as the API model writes it
TENANT_ID_MAX = 256
DURABLE_NAME_MAX = 64
DURABLE_WAIT = 900  # seconds a repeated RequestResponse call waits for its running execution (Lambda's 15 minutes)
SYNC_LIMIT = 6 * 1024 * 1024
EVENT_LIMIT = 1024 * 1024
RESPONSE_LIMIT = 6 * 1024 * 1024
CLIENT_CONTEXT_LIMIT = 3583
TAIL_BYTES = 4096
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
LOG_TYPES = ("None", "Tail")


@dataclass
class InvokeRecord:
    """One received Invoke request, as kept in Emulator.requests."""

    request_id: str
    path_name: str  # FunctionName as it appeared in the path, URL-decoded
    function: str | None  # the bare function name, None if the name did not parse
    qualifier: str | None  # from the name or ?Qualifier=
    invocation_type: str | None
    log_type: str | None
    headers: HeaderDict  # as received; lookups ignore case
    body: bytes
    received: float  # time.time()
    access_key: str | None = None  # the key that signed it (checked if verification is on)
    role_arn: str | None = None  # the role that key was issued for by the emulator's STS
    fault: str | None = None  # the fault kind applied, if any
    status: int | None = None  # the HTTP status answered (0: connection closed)
    tenant_id: str | None = None  # X-Amz-Tenant-Id as received
    durable_execution_name: str | None = None  # X-Amz-Durable-Execution-Name as received
    durable_execution_arn: str | None = None  # the execution the call started or got back


def handle(emu, request, raw_name):
    """Answer one Invoke request; records it in emu."""
    request_id = new_request_id()
    headers = request.headers
    record = InvokeRecord(
        request_id, unquote(raw_name), None, None,
        headers.get("X-Amz-Invocation-Type") or "RequestResponse", headers.get("X-Amz-Log-Type") or "None",
        HeaderDict(headers.items()), request.body, request.received,
        tenant_id=headers.get("X-Amz-Tenant-Id"),
        durable_execution_name=headers.get("X-Amz-Durable-Execution-Name"),
    )
    emu._record_request(record)
    response = _invoke(emu, request, record)
    record.status = response.status
    return response


def _invoke(emu, request, record):
    request_id = record.request_id
    match = _NAME_RE.fullmatch(record.path_name)
    if not match or len(record.path_name) > NAME_MAX:
        return aws_error(400, "ValidationException",
                         f"1 validation error detected: Value '{record.path_name}' at 'functionName' failed to "
                         f"satisfy constraint: Member must satisfy regular expression pattern: {NAME_PATTERN}",
                         request_id)
    record.function = name = match["name"]
    qualifier = match["qualifier"]
    query = parse_qs(request.query, keep_blank_values=True).get("Qualifier")
    if query is not None:
        if not _QUALIFIER_RE.fullmatch(query[0]):
            return aws_error(400, "ValidationException",
                             f"1 validation error detected: Value '{query[0]}' at 'qualifier' failed to satisfy "
                             "constraint: Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)",
                             request_id)
        if qualifier is not None and qualifier != query[0]:
            return aws_error(400, "InvalidParameterValueException",
                             "The derived qualifier from the function name does not match the specified qualifier.",
                             request_id)
        qualifier = query[0]
    record.qualifier = qualifier

    fault = emu.faults.take(name)
    if fault is not None:
        record.fault = fault.kind
        if fault.kind == "delay":
            time.sleep(float(fault.params["seconds"]))
        else:
            return faults.response(fault, request_id)

    if emu.keys.verify:
        try:
            key = request_auth.verify(emu.keys, request, "lambda")
        except request_auth.AuthError as error:
            return aws_error(error.status, error.code, error.message, request_id)
        record.access_key, record.role_arn = key.access_key_id, key.role_arn
    else:
        record.access_key, record.role_arn = request_auth.identify(emu.keys, request)

    invocation_type, log_type = record.invocation_type, record.log_type
    if invocation_type not in INVOCATION_TYPES:
        return aws_error(400, "InvalidParameterValueException",
                         f"Unsupported invocation type {invocation_type}; use one of {', '.join(INVOCATION_TYPES)}.",
                         request_id)
    if log_type not in LOG_TYPES:
        return aws_error(400, "InvalidParameterValueException",
                         f"Unsupported log type {log_type}; use one of {', '.join(LOG_TYPES)}.", request_id)
    tenant_id, execution_name = record.tenant_id, record.durable_execution_name
    invalid = (_invalid_member(tenant_id, "tenantId", TENANT_ID_MAX, TENANT_ID_RE, TENANT_ID_PATTERN)
               or _invalid_member(execution_name, "durableExecutionName", DURABLE_NAME_MAX, durable.NAME_RE,
                                  durable.NAME_PATTERN))
    if invalid:
        return aws_error(400, "ValidationException", invalid, request_id)
    client_context = None
    encoded = request.headers.get("X-Amz-Client-Context")
    if encoded:
        if len(encoded) > CLIENT_CONTEXT_LIMIT:
            return aws_error(400, "InvalidParameterValueException",
                             f"Client context must be at most {CLIENT_CONTEXT_LIMIT} bytes of base64-encoded data.",
                             request_id)
        try:
            client_context = json.loads(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            client_context = None
        if not isinstance(client_context, dict):
            return aws_error(400, "InvalidParameterValueException",
                             "Client context must be a valid Base64-encoded JSON object.", request_id)

    size = len(request.body)
    if invocation_type == "Event" and size > EVENT_LIMIT:
        return aws_error(413, "RequestEntityTooLargeException",
                         f"{size} byte payload is too large for the Event invocation type (limit {EVENT_LIMIT} bytes)",
                         request_id)
    if size > SYNC_LIMIT:
        return aws_error(413, "RequestEntityTooLargeException",
                         f"Request must be smaller than {SYNC_LIMIT} bytes for the InvokeFunction operation",
                         request_id)

    region = match["region"] or _signed_region(request) or emu.region
    account = match["account"] or emu.account_id
    arn = f"arn:{match['partition'] or 'aws'}:lambda:{region}:{account}:function:{name}"
    invoked_arn = f"{arn}:{qualifier}" if qualifier else arn
    try:
        target = emu.functions.resolve(name, qualifier)
    except NoPublishedVersion:
        return aws_error(400, "NoPublishedVersionException",
                         f"The function {arn} has no published versions, so {qualifier} has nothing to run.",
                         request_id)
    if target is None:
        return aws_error(404, "ResourceNotFoundException", f"Function not found: {invoked_arn}", request_id)
    if target.tenant_isolation_mode and tenant_id is None:
        return aws_error(400, "InvalidParameterValueException",
                         f"Tenant ID not specified: the function {invoked_arn} uses tenant isolation mode "
                         f"{target.tenant_isolation_mode}; invoke it with a tenant ID.", request_id)
    if tenant_id is not None and not target.tenant_isolation_mode:
        return aws_error(400, "InvalidParameterValueException",
                         f"Tenant ID passed to the function {invoked_arn}, which does not have tenant isolation "
                         "enabled.", request_id)
    if execution_name is not None and not target.durable:
        return aws_error(400, "InvalidParameterValueException",
                         f"Durable execution name passed to the function {invoked_arn}, which is not a durable "
                         "function.", request_id)
    if (target.invocation_types is not None and invocation_type != "DryRun"
            and invocation_type not in target.invocation_types):
        return aws_error(400, "ModeNotSupportedException",
                         f"The function {invoked_arn} doesn't support the {invocation_type} invocation type; it "
                         f"supports {', '.join(target.invocation_types)}.", request_id)
    if target.invoke_error is not None:
        error = target.invoke_error
        return aws_error(error.status, error.error_type, error.message, request_id)

    try:
        event = json.loads(request.body) if request.body.strip() else {}
    except ValueError as error:
        return aws_error(400, "InvalidRequestContentException",
                         f"Could not parse request body into json: Could not parse payload into json: {error}",
                         request_id)

    ids = [("x-amzn-RequestId", request_id)]
    if invocation_type == "DryRun":
        return Response(204, headers=ids, content_type=None)

    execution = None
    if target.durable:
        try:
            execution, started = emu.durable.start(arn, name, target.version, execution_name, request.body,
                                                   invocation_type, request_id, tenant_id)
        except durable.AlreadyStarted as conflict:
            return aws_error(409, "DurableExecutionAlreadyStartedException", str(conflict), request_id)
        record.durable_execution_arn = execution.arn
        ids.append(("X-Amz-Durable-Execution-Arn", execution.arn))
        if not started:
            if invocation_type == "Event":
                return Response(202, headers=ids, content_type=None)
            if not execution.done.wait(DURABLE_WAIT):
                return aws_error(500, "ServiceException",
                                 f"Durable execution {execution.arn} is still running.", request_id)
            return _answer(execution.outcome, execution.version, ids, log_type, request_id)

    if invocation_type == "Event":
        emu._async_started()
        threading.Thread(
            target=_run_async, args=(emu, target, request_id, event, invoked_arn, tenant_id, execution),
            name=f"lambda-event-{name}", daemon=True,
        ).start()
        return Response(202, headers=ids, content_type=None)

    outcome = _run(emu, target, request_id, event, invoked_arn, client_context, tenant_id, execution)
    return _answer(outcome, target.version, ids, log_type, request_id)


def _run(emu, target, request_id, event, invoked_arn, client_context, tenant_id, execution):
    """Run the handler once (counted; a durable execution's result kept); its Outcome,
    the payload already held to the response limit."""
    outcome = None
    try:
        emu._count_invocation(target.name, tenant_id)
        outcome = runtime.run(emu.functions, target, request_id, event, invoked_arn, client_context, tenant_id)
        emu._log(outcome.log)
        if len(outcome.payload) > RESPONSE_LIMIT:
            outcome.payload = runtime.error_payload(
                "Function.ResponseSizeTooLarge",
                f"Response payload size ({len(outcome.payload)} bytes) exceeded maximum allowed payload size "
                f"({RESPONSE_LIMIT} bytes).", request_id)
            outcome.function_error = "Unhandled"
        return outcome
    finally:
        if execution is not None:
            emu.durable.finish(execution, outcome if outcome is not None else runtime.Outcome(
                runtime.error_payload("ServiceException", "the emulator failed to run the handler", request_id),
                "Unhandled", ""))


def _answer(outcome, version, ids, log_type, request_id):
    """The 200 answer for a handler's outcome (or the Invoke error it raised)."""
    if outcome.invoke_error is not None:
        error = outcome.invoke_error
        return aws_error(error.status, error.error_type, error.message, request_id, ids[1:])
    headers = ids + [("X-Amz-Executed-Version", version)]
    if outcome.function_error:
        headers.append(("X-Amz-Function-Error", outcome.function_error))
    if log_type == "Tail":
        headers.append(("X-Amz-Log-Result", base64.b64encode(outcome.log.encode()[-TAIL_BYTES:]).decode()))
    return Response(200, outcome.payload, headers)


def _run_async(emu, target, request_id, event, invoked_arn, tenant_id=None, execution=None):
    try:
        _run(emu, target, request_id, event, invoked_arn, None, tenant_id, execution)
    finally:
        emu._async_finished()


def _invalid_member(value, member, maximum, regex, pattern):
    """The ValidationException message for a header that breaks its model constraints, or None."""
    if value is None:
        return None
    if not value:
        constraint = "Member must have length greater than or equal to 1"
    elif len(value) > maximum:
        constraint = f"Member must have length less than or equal to {maximum}"
    elif not regex.fullmatch(value):
        constraint = f"Member must satisfy regular expression pattern: {pattern}"
    else:
        return None
    return f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"


def _signed_region(request):
    auth = request_auth.parse_authorization(request.headers.get("Authorization"))
    return auth["region"] if auth else None
