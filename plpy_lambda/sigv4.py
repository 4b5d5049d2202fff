"""AWS Signature Version 4: the Authorization of one Lambda Invoke request.

A few lines of SHA-256 instead of botocore's signer, which costs a large import on
each new connection and a few hundred microseconds per call. A Template does
everything that does not change from one call of the same shape to the next once
(the canonical headers, the credential scope, the signing key), so that signing a
call is two SHA-256 hashes and one HMAC, whose two padded key blocks are hashed once
a day (RFC 2104): a copy of each hash per call costs a third of what hmac.digest
does, which looks up OpenSSL 3's MAC on every call.

SHA-256 is CPython's own (_sha2, or _sha256 before 3.12) for what is short (the canonical
request, the HMAC's blocks, a small payload): hashlib would load OpenSSL's on a new
connection's first call, some 0.8 ms. OpenSSL's is several times as fast on longer input
(it uses the CPU's SHA instructions), so a payload of PAYLOAD_OPENSSL bytes or more is
hashed by hashlib's, imported then.

The result is checked against botocore.auth.SigV4Auth by the test suite, and the
local endpoint verifies every request with botocore.
"""

import sys
import time

try:  # tried in the order of this Python: a module not found costs a search of sys.path
    if sys.version_info >= (3, 12):
        from _sha2 import sha256 as _sha256
    else:
        from _sha256 import sha256 as _sha256
except ImportError:  # a Python built without its own SHA-256
    from hashlib import sha256 as _sha256

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED = ("user-agent", "expect", "x-amzn-trace-id")  # as botocore
PAYLOAD_OPENSSL = 1024  # bytes: from here on, OpenSSL's SHA-256 gains more than its import costs
_signing_keys = {}
_INNER_PAD = bytes(byte ^ 0x36 for byte in range(256))  # RFC 2104's ipad and opad, as
_OUTER_PAD = bytes(byte ^ 0x5C for byte in range(256))  # bytes.translate tables


def payload_hash(body):
    """The SHA-256 of a request's body, in hex."""
    if len(body) < PAYLOAD_OPENSSL:
        return _sha256(body).hexdigest()
    import hashlib

    return hashlib.sha256(body).hexdigest()


def _keyed(key):
    """HMAC-SHA256 with key (RFC 2104), before any message: its inner and outer hashes."""
    if len(key) > 64:
        key = _sha256(key).digest()
    block = key.ljust(64, b"\0")
    return _sha256(block.translate(_INNER_PAD)), _sha256(block.translate(_OUTER_PAD))


def _hmac(keyed, message):
    """The HMAC of message with a key made ready by _keyed."""
    inner, outer = keyed
    inner = inner.copy()
    inner.update(message)
    outer = outer.copy()
    outer.update(inner.digest())
    return outer


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def quote(text, safe=""):
    """Percent-encode text as urllib.parse.quote(text, safe) does (UTF-8)."""
    keep = _UNRESERVED.union(safe)
    if all(char in keep for char in text):
        return text
    return "".join(chr(byte) if chr(byte) in keep else f"%{byte:02X}"
                   for byte in text.encode("utf-8"))


def sign(method, host, path, query, headers, body, region, service, credentials, now=None):
    """Return headers plus Host, X-Amz-Date, X-Amz-Security-Token and Authorization.

    `path` and `query` are as sent (already percent-encoded); `credentials` has
    access_key, secret_key and token, like botocore's frozen credentials.
    """
    template = Template(method, host, path, query, headers, region, service, credentials)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    out = dict(headers)
    out["Host"] = host
    out["X-Amz-Date"] = stamp
    if credentials.token:
        out["X-Amz-Security-Token"] = credentials.token
    out["Authorization"] = template.authorization(payload_hash(body), stamp)
    return out


class Template:
    """The signature of requests that differ only in their time and payload."""

    __slots__ = ("_before_date", "_after_date", "_scope_tail", "_credential", "_secret",
                 "_region", "_service", "_day", "_key")

    def __init__(self, method, host, path, query, headers, region, service, credentials):
        signed = {name.lower(): " ".join(str(value).split()) for name, value in headers.items()
                  if name.lower() not in UNSIGNED}
        signed["host"] = host
        signed["x-amz-date"] = None
        if credentials.token:
            signed["x-amz-security-token"] = credentials.token
        names = sorted(signed)
        at = names.index("x-amz-date")
        head = [method, quote(path, safe="/~"), "&".join(sorted(query.split("&"))) if query else ""]
        self._before_date = "\n".join(head) + "\n" + "".join(
            f"{name}:{signed[name]}\n" for name in names[:at]) + "x-amz-date:"
        self._after_date = "\n" + "".join(
            f"{name}:{signed[name]}\n" for name in names[at + 1:]) + "\n" + ";".join(names) + "\n"
        self._scope_tail = f"/{region}/{service}/aws4_request"
        self._credential = (f"{ALGORITHM} Credential={credentials.access_key}/",
                            f"{self._scope_tail}, SignedHeaders={';'.join(names)}, Signature=")
        self._secret = credentials.secret_key
        self._region = region
        self._service = service
        self._day = None
        self._key = None  # the day's signing key, _keyed

    def authorization(self, payload_hash, stamp):
        """The Authorization header for a request at stamp (YYYYMMDDTHHMMSSZ) whose
        payload has the SHA-256 hex digest payload_hash."""
        day = stamp[:8]
        if day != self._day:
            self._key = _keyed(_signing_key(self._secret, day, self._region, self._service))
            self._day = day
        canonical = self._before_date + stamp + self._after_date + payload_hash
        to_sign = (f"{ALGORITHM}\n{stamp}\n{day}{self._scope_tail}\n"
                   f"{_sha256(canonical.encode()).hexdigest()}")
        first, rest = self._credential
        return f"{first}{day}{rest}{_hmac(self._key, to_sign.encode()).hexdigest()}"


def _signing_key(secret, day, region, service):
    cache_key = (secret, day, region, service)
    key = _signing_keys.get(cache_key)
    if key is None:
        key = ("AWS4" + secret).encode()
        for part in (day, region, service, "aws4_request"):
            key = _hmac(_keyed(key), part.encode()).digest()
        if len(_signing_keys) > 64:
            _signing_keys.clear()
        _signing_keys[cache_key] = key
    return key
