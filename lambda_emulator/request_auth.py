"""Checking AWS Signature Version 4 on received requests.

Owns the emulator's keys (the configured ones and the temporary ones its STS
issued) and the checks, answered with the error codes AWS uses, all HTTP 403:

- no ``Authorization`` header: MissingAuthenticationTokenException
  ("Missing Authentication Token");
- a header that is not ``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
  Signature=...``, or no ``X-Amz-Date``: IncompleteSignatureException;
- an unknown access key, or a session token that does not go with the key
  (missing for a temporary key, present for a permanent one):
  UnrecognizedClientException ("The security token included in the request is invalid.");
- an expired temporary key: ExpiredTokenException;
- the wrong service in the credential scope, a date more than 5 minutes off, or a
  signature that does not match: InvalidSignatureException.

Any region is accepted in the credential scope: one emulator stands in for every
region's endpoint. The signature is recomputed by botocore (signature.py), which
is imported only when a signed request has to be checked.
"""

from __future__ import annotations

import calendar
import hmac
import re
import threading
import time
from dataclasses import dataclass

_AUTH_RE = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-fA-F]+)\s*"
)
MAX_SKEW = 300  # seconds
MISMATCH = ("The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. "
            "Consult the service documentation for details.")


@dataclass(frozen=True)
class Key:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    expires: float | None = None  # time.time() after which the key is refused
    role_arn: str | None = None  # the role a temporary key was issued for


class AuthError(Exception):
    def __init__(self, code, message, status=403):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class KeyStore:
    """Known keys. verify is true when credentials were configured."""

    def __init__(self, credentials=None):
        self.verify = bool(credentials)
        self._lock = threading.Lock()
        self._keys = {akid: Key(akid, secret) for akid, secret in (credentials or {}).items()}

    def add(self, key):
        with self._lock:
            self._keys[key.access_key_id] = key

    def get(self, access_key_id):
        with self._lock:
            return self._keys.get(access_key_id)


def parse_authorization(value):
    """{"access_key_id", "date", "region", "service", "signed_headers", "signature"} or None."""
    match = _AUTH_RE.fullmatch(value or "")
    if not match:
        return None
    scope = match.group(1).split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        return None
    return {
        "access_key_id": scope[0], "date": scope[1], "region": scope[2], "service": scope[3],
        "signed_headers": match.group(2).lower().split(";"), "signature": match.group(3).lower(),
    }


def identify(keys, request):
    """(access key, role ARN) the request claims, without checking anything."""
    auth = parse_authorization(request.headers.get("Authorization"))
    if auth is None:
        return None, None
    key = keys.get(auth["access_key_id"])
    return auth["access_key_id"], key.role_arn if key else None


def verify(keys, request, service):
    """Check request's SigV4 signature for service; return the Key, or raise AuthError."""
    header = request.headers.get("Authorization")
    if not header:
        raise AuthError("MissingAuthenticationTokenException", "Missing Authentication Token")
    auth = parse_authorization(header)
    if auth is None:
        raise AuthError("IncompleteSignatureException",
                        "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' "
                        f"parameters. Authorization={header}")
    key = keys.get(auth["access_key_id"])
    if key is None or request.headers.get("X-Amz-Security-Token") != key.session_token:
        raise AuthError("UnrecognizedClientException", "The security token included in the request is invalid.")
    if key.expires is not None and time.time() >= key.expires:
        raise AuthError("ExpiredTokenException", "The security token included in the request is expired")
    if auth["service"] != service:
        raise AuthError("InvalidSignatureException", f"Credential should be scoped to correct service: '{service}'. ")
    amz_date = request.headers.get("X-Amz-Date")
    if not amz_date:
        raise AuthError("IncompleteSignatureException",
                        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    try:
        signed_at = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise AuthError("IncompleteSignatureException", f"Invalid X-Amz-Date: {amz_date}") from None
    now = time.time()
    if abs(now - signed_at) > MAX_SKEW:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        raise AuthError("InvalidSignatureException",
                        f"Signature expired: {amz_date} is now earlier or later than {stamp} +/- 5 min.")
    if amz_date[:8] != auth["date"]:
        raise AuthError("InvalidSignatureException",
                        f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                        f"from HTTP: '{auth['date']}' != '{amz_date[:8]}', from '{amz_date}'.")
    from . import signature  # botocore, only now

    signed = [(name, request.headers.get_all(name) or []) for name in auth["signed_headers"]]
    expected = signature.compute(
        key, auth["service"], auth["region"], amz_date,
        request.method, request.path, request.query, signed, request.body,
    )
    if not hmac.compare_digest(expected, auth["signature"]):
        raise AuthError("InvalidSignatureException", MISMATCH)
    return key
