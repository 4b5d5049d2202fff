"""Our SigV4 signer gives botocore's signature for every request shape invoke sends."""

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from plpy_lambda import sigv4
from plpy_lambda.client import Request


@pytest.mark.parametrize("function, qualifier", [
    ("simple", None),
    ("simple", "$LATEST"),
    ("123456789012:function:simple", "7"),
    ("arn:aws:lambda:eu-west-1:123456789012:function:my-function", "custom_version"),
])
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzE+/token=="])
def test_signature_matches_botocore(function, qualifier, token):
    credentials = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    request = Request(endpoint="https://lambda.eu-west-1.amazonaws.com", region="eu-west-1",
                      function=function, qualifier=qualifier,
                      headers={"User-Agent": "aws_lambda-postgresql/1.0",
                               "X-Amz-Invocation-Type": "RequestResponse",
                               "X-Amz-Log-Type": "Tail", "X-Amz-Client-Context": "eyJhIjogMX0="},
                      body='{"body": "Hello  from Postgres!"}'.encode())
    ours = sigv4.sign("POST", "lambda.eu-west-1.amazonaws.com", request.path, request.query,
                      request.headers, request.body, "eu-west-1", "lambda", credentials)
    url = request.endpoint + request.path + ("?" + request.query if request.query else "")
    theirs = AWSRequest(method="POST", url=url, data=request.body,
                        headers={**request.headers, "X-Amz-Date": ours["X-Amz-Date"]})
    signer = SigV4Auth(credentials, "lambda", "eu-west-1")
    signer._timestamp = lambda: ours["X-Amz-Date"]
    signer.add_auth(theirs)
    assert ours["Authorization"] == theirs.headers["Authorization"]
    assert ours.get("X-Amz-Security-Token") == token


@pytest.mark.parametrize("size", [0, sigv4.PAYLOAD_OPENSSL - 1, sigv4.PAYLOAD_OPENSSL, 1_000_000])
@pytest.mark.parametrize("secret", ["wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "k" * 100])
def test_signature_matches_botocore_for_any_body_and_secret(size, secret):
    """Bodies on both sides of the switch from CPython's SHA-256 to OpenSSL's, and a secret
    longer than HMAC's 64-byte block (which HMAC hashes first)."""
    credentials = ReadOnlyCredentials("AKIDEXAMPLE", secret, None)
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    headers = {"X-Amz-Invocation-Type": "RequestResponse"}
    path = "/2015-03-31/functions/simple/invocations"
    ours = sigv4.sign("POST", "lambda.us-east-1.amazonaws.com", path, "", headers, body,
                      "us-east-1", "lambda", credentials)
    theirs = AWSRequest(method="POST", url="https://lambda.us-east-1.amazonaws.com" + path, data=body,
                        headers={**headers, "X-Amz-Date": ours["X-Amz-Date"]})
    signer = SigV4Auth(credentials, "lambda", "us-east-1")
    signer._timestamp = lambda: ours["X-Amz-Date"]
    signer.add_auth(theirs)
    assert ours["Authorization"] == theirs.headers["Authorization"]


def test_a_warm_call_needs_no_botocore_with_environment_credentials(db):
    """The common case (keys in the server's environment) imports neither botocore nor urllib3."""
    db.execute("SELECT aws_lambda.invoke('simple', '{}'::json)")
    db.execute("""CREATE OR REPLACE FUNCTION pg_temp.loaded() RETURNS text[] LANGUAGE plpython3u
                  AS $$ import sys; return sorted(m for m in ('botocore', 'boto3', 'urllib3') if m in sys.modules) $$""")
    assert db.execute("SELECT pg_temp.loaded()").fetchone() == ([],)
