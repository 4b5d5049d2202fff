"""Recomputing a SigV4 signature with botocore over a request as it was received.

The only module of the emulator that imports botocore; request_auth.py imports it
lazily, when a signed request has to be checked.
"""

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials


class _ReceivedRequestAuth(SigV4Auth):
    """SigV4Auth over exactly the headers the client listed in SignedHeaders
    (botocore's own selection would leave out some, such as User-Agent)."""

    def __init__(self, credentials, service, region, signed_headers):
        super().__init__(credentials, service, region)
        self._signed_headers = signed_headers

    def headers_to_sign(self, request):
        return self._signed_headers


def compute(key, service, region, amz_date, method, path, query, signed_headers, body):
    """The hex signature for a request; signed_headers: [(lower-case name, [values])]."""
    headers = HTTPHeaders()
    for name, values in signed_headers:
        for value in values:
            headers[name] = value
    host = headers.get("host") or "localhost"
    url = f"http://{host}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, headers=dict(headers.items()), data=body)
    request.context["timestamp"] = amz_date
    signer = _ReceivedRequestAuth(
        Credentials(key.access_key_id, key.secret_access_key, key.session_token), service, region, headers
    )
    canonical_request = signer.canonical_request(request)
    return signer.signature(signer.string_to_sign(request, canonical_request), request)
