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

from . import faults, request_auth, runtime
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
_QUALIFIER_RE = re.compile(r"\$LATEST|[a-zA-Z0-9_-]{1,128}", re.ASCII)
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


def handle(emu, request, raw_name):
    """Answer one Invoke request; records it in emu."""
    request_id = new_request_id()
    headers = request.headers
    record = InvokeRecord(
        request_id, unquote(raw_name), None, None,
        headers.get("X-Amz-Invocation-Type") or "RequestResponse", headers.get("X-Amz-Log-Type") or "None",
        HeaderDict(headers.items()), request.body, request.received,
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
    target = emu.functions.resolve(name, qualifier)
    if target is None:
        return aws_error(404, "ResourceNotFoundException", f"Function not found: {invoked_arn}", request_id)

    try:
        event = json.loads(request.body) if request.body.strip() else {}
    except ValueError as error:
        return aws_error(400, "InvalidRequestContentException",
                         f"Could not parse request body into json: Could not parse payload into json: {error}",
                         request_id)

    ids = [("x-amzn-RequestId", request_id)]
    if invocation_type == "DryRun":
        return Response(204, headers=ids, content_type=None)
    if invocation_type == "Event":
        emu._async_started()
        threading.Thread(
            target=_run_async, args=(emu, target, request_id, event, invoked_arn),
            name=f"lambda-event-{name}", daemon=True,
        ).start()
        return Response(202, headers=ids, content_type=None)

    emu._count_invocation(name)
    outcome = runtime.run(emu.functions, target, request_id, event, invoked_arn, client_context)
    emu._log(outcome.log)
    payload, function_error = outcome.payload, outcome.function_error
    if len(payload) > RESPONSE_LIMIT:
        payload = runtime.error_payload(
            "Function.ResponseSizeTooLarge",
            f"Response payload size ({len(payload)} bytes) exceeded maximum allowed payload size "
            f"({RESPONSE_LIMIT} bytes).", request_id)
        function_error = "Unhandled"
    headers = ids + [("X-Amz-Executed-Version", target.version)]
    if function_error:
        headers.append(("X-Amz-Function-Error", function_error))
    if log_type == "Tail":
        headers.append(("X-Amz-Log-Result", base64.b64encode(outcome.log.encode()[-TAIL_BYTES:]).decode()))
    return Response(200, payload, headers)


def _run_async(emu, target, request_id, event, invoked_arn):
    try:
        emu._count_invocation(target.name)
        outcome = runtime.run(emu.functions, target, request_id, event, invoked_arn)
        emu._log(outcome.log)
    finally:
        emu._async_finished()


def _signed_region(request):
    auth = request_auth.parse_authorization(request.headers.get("Authorization"))
    return auth["region"] if auth else None
