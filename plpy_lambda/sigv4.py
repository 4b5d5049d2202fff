"""AWS Signature Version 4 for one Lambda Invoke request.

A few lines of hmac and hashlib instead of botocore's signer, which costs a
large import on each new connection and a few hundred microseconds per call.
The result is checked against botocore.auth.SigV4Auth by the test suite, and
the local endpoint verifies every request with botocore.
"""

import hashlib
import hmac
import time
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
_signing_keys = {}


def sign(method, host, path, query, headers, body, region, service, credentials, now=None):
    """Return headers plus Host, X-Amz-Date, X-Amz-Security-Token and Authorization.

    `path` and `query` are as sent (already percent-encoded); `credentials` has
    access_key, secret_key and token, like botocore's frozen credentials.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    day = stamp[:8]
    signed = {name.lower(): " ".join(str(value).split()) for name, value in headers.items()
              if name.lower() not in ("user-agent", "expect", "x-amzn-trace-id")}
    signed["host"] = host
    signed["x-amz-date"] = stamp
    if credentials.token:
        signed["x-amz-security-token"] = credentials.token
    names = sorted(signed)
    canonical = "\n".join([
        method,
        quote(path, safe="/~"),
        "&".join(sorted(query.split("&"))) if query else "",
        "".join(f"{name}:{signed[name]}\n" for name in names),
        ";".join(names),
        hashlib.sha256(body).hexdigest(),
    ])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = f"{ALGORITHM}\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signature = hmac.new(_signing_key(credentials.secret_key, day, region, service),
                         to_sign.encode(), hashlib.sha256).hexdigest()
    out = dict(headers)
    out["Host"] = host
    out["X-Amz-Date"] = stamp
    if credentials.token:
        out["X-Amz-Security-Token"] = credentials.token
    out["Authorization"] = (f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
                            f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return out


def _signing_key(secret, day, region, service):
    cache_key = (secret, day, region, service)
    key = _signing_keys.get(cache_key)
    if key is None:
        key = ("AWS4" + secret).encode()
        for part in (day, region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        if len(_signing_keys) > 64:
            _signing_keys.clear()
        _signing_keys[cache_key] = key
    return key
