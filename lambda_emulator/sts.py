"""A minimal STS: ``AssumeRole`` at ``POST /`` (form body, query protocol).

Issues a temporary key (``ASIA...``, secret, session token) that the Lambda
endpoint then accepts, remembering the role it was issued for. Answers and
errors are the XML real STS sends, so botocore's STS client and its
AssumeRoleCredentialFetcher parse them. When the emulator verifies signatures,
AssumeRole must be signed (service ``sts``, any region) with a known key.
Credentials last ``assume_role_duration`` seconds, or ``DurationSeconds`` when
the request asks for less.
"""

import base64
import re
import secrets
import string
import time
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from . import request_auth
from .messages import Response, new_request_id

NS = "https://sts.amazonaws.com/doc/2011-06-15/"
_SESSION_NAME_RE = re.compile(r"[\w+=,.@-]{2,64}")
_ROLE_ARN_RE = re.compile(r"arn:aws[a-zA-Z-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})")
_STS_CODES = {  # the Lambda-style codes request_auth.py raises, as STS names them
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
    "IncompleteSignatureException": "IncompleteSignature",
    "UnrecognizedClientException": "InvalidClientTokenId",
    "ExpiredTokenException": "ExpiredToken",
    "InvalidSignatureException": "SignatureDoesNotMatch",
}


def _error(status, code, message, request_id):
    body = (f'<ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>")
    return Response(status, body.encode(), [("x-amzn-RequestId", request_id)], "text/xml")


def _random(alphabet, length):
    return "".join(secrets.choice(alphabet) for _ in range(length))


def handle(emu, request):
    """Answer one STS request."""
    request_id = new_request_id()
    try:
        form = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        form = {}
    param = {name: values[0] for name, values in form.items()}
    if emu.keys.verify:
        try:
            source = request_auth.verify(emu.keys, request, "sts")
        except request_auth.AuthError as error:
            return _error(error.status, _STS_CODES.get(error.code, error.code), error.message, request_id)
        source_key = source.access_key_id
    else:
        source_key = request_auth.identify(emu.keys, request)[0]
    action = param.get("Action")
    if action != "AssumeRole":
        return _error(400, "InvalidAction", f"Could not find operation {action} for version 2011-06-15", request_id)
    role_arn, session_name = param.get("RoleArn", ""), param.get("RoleSessionName", "")
    role = _ROLE_ARN_RE.fullmatch(role_arn)
    if not role:
        return _error(400, "ValidationError", f"{role_arn!r} is invalid", request_id)
    if not _SESSION_NAME_RE.fullmatch(session_name):
        return _error(400, "ValidationError",
                      f"1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to "
                      "satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*",
                      request_id)
    duration = emu.assume_role_duration
    if param.get("DurationSeconds"):
        try:
            duration = min(duration, int(param["DurationSeconds"]))
        except ValueError:
            return _error(400, "ValidationError", "DurationSeconds must be an integer", request_id)
    expires = time.time() + duration
    key = request_auth.Key(
        "ASIA" + _random(string.ascii_uppercase + "234567", 16),
        _random(string.ascii_letters + string.digits + "+/", 40),
        base64.b64encode(secrets.token_bytes(96)).decode(),
        expires,
        role_arn,
    )
    emu.keys.add(key)
    emu._record_assume_role(role_arn, session_name, key.access_key_id, source_key, expires)
    role_id = "AROA" + _random(string.ascii_uppercase + "234567", 17)
    partition = role_arn.split(":")[1]
    body = (
        f'<AssumeRoleResponse xmlns="{NS}"><AssumeRoleResult>'
        f"<Credentials><AccessKeyId>{key.access_key_id}</AccessKeyId>"
        f"<SecretAccessKey>{escape(key.secret_access_key)}</SecretAccessKey>"
        f"<SessionToken>{escape(key.session_token)}</SessionToken>"
        f"<Expiration>{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(expires))}</Expiration></Credentials>"
        f"<AssumedRoleUser><Arn>arn:{partition}:sts::{role.group(1)}:assumed-role/{escape(role.group(2))}/"
        f"{escape(session_name)}</Arn><AssumedRoleId>{role_id}:{escape(session_name)}</AssumedRoleId>"
        f"</AssumedRoleUser></AssumeRoleResult>"
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></AssumeRoleResponse>"
    )
    return Response(200, body.encode(), [("x-amzn-RequestId", request_id)], "text/xml")
