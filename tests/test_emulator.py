"""The local Lambda endpoint over real HTTP on 127.0.0.1, with http.client and
botocore's real Lambda and STS clients (real SigV4 signing). No PostgreSQL."""

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import AssumeRoleCredentialFetcher, Credentials
from botocore.exceptions import ClientError

from lambda_emulator import Emulator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUNCTIONS = os.path.join(ROOT, "examples", "functions")
ACCOUNT, REGION = "123456789012", "us-east-1"
AKID, SECRET = "AKIDEXAMPLE", "secret"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/lambda-caller"
HELLO = b'{"statusCode": 200, "body": "\\"Hello from Lambda!\\""}'
NO_RETRIES = Config(retries={"total_max_attempts": 1}, read_timeout=10, connect_timeout=5)


# -- helpers -------------------------------------------------------------------

class Answer:
    def __init__(self, response):
        self.status = response.status
        self.headers = {name.lower(): value for name, value in response.getheaders()}
        self.body = response.read()

    def json(self):
        return json.loads(self.body)

    def log(self):
        return base64.b64decode(self.headers["x-amz-log-result"]).decode()


def post(emu, function, body=b"{}", headers=None, query="", method="POST"):
    connection = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    try:
        path = f"/2015-03-31/functions/{quote(function, safe='')}/invocations" + (f"?{query}" if query else "")
        connection.request(method, path, body=body, headers=headers or {})
        return Answer(connection.getresponse())
    finally:
        connection.close()


def control(emu, method, path, value=None):
    connection = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    try:
        body = json.dumps(value).encode() if value is not None else None
        connection.request(method, path, body=body)
        answer = Answer(connection.getresponse())
        return answer.status, answer.json()
    finally:
        connection.close()


def client(emu, service="lambda", key=AKID, secret=SECRET, token=None):
    return botocore.session.get_session().create_client(
        service, endpoint_url=emu.url, region_name=REGION, config=NO_RETRIES,
        aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token,
    )


def error_of(answer):
    body = answer.json()
    assert body["Type"] in ("User", "Service") and body["message"] == body["Message"]
    return answer.status, answer.headers["x-amzn-errortype"], body["message"]


def write_function(directory, name, source):
    path = os.path.join(directory, name + ".py")
    with open(path, "w") as file:
        file.write(source)
    return path


@pytest.fixture(scope="module")
def shared():
    with Emulator(FUNCTIONS) as emu:
        yield emu


@pytest.fixture
def emu(shared):
    shared.reset()
    return shared


@pytest.fixture(scope="module")
def secure():
    with Emulator(FUNCTIONS, credentials={AKID: SECRET}, assume_role_duration=1) as emu:
        yield emu


@pytest.fixture(scope="module")
def lam(shared):
    return client(shared)


# -- synchronous calls ------------------------------------------------------------

def test_sync_call_returns_the_handlers_result_exactly(emu):
    answer = post(emu, "simple", b'{"body": "Hello from Postgres!"}')
    assert answer.status == 200 and answer.body == HELLO
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-amz-executed-version"] == "$LATEST"
    assert "x-amz-function-error" not in answer.headers and "x-amz-log-result" not in answer.headers
    record = emu.requests[-1]
    assert record.request_id == answer.headers["x-amzn-requestid"]
    assert (record.function, record.qualifier, record.invocation_type, record.log_type) == (
        "simple", None, "RequestResponse", "None")
    assert record.body == b'{"body": "Hello from Postgres!"}' and record.status == 200
    assert record.headers["content-length"] == record.headers["Content-Length"] == "32"
    assert emu.invocations("simple") == 1


def test_botocore_invoke_with_tail_gets_this_calls_log(emu, lam):
    result = lam.invoke(FunctionName="simple", Payload=b'{"x": 1}', LogType="Tail")
    assert result["StatusCode"] == 200 and result["Payload"].read() == HELLO
    request_id = result["ResponseMetadata"]["RequestId"]
    log = base64.b64decode(result["LogResult"]).decode()
    lines = log.splitlines()
    assert lines[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert 'simple got {"x": 1}' in lines
    assert f"END RequestId: {request_id}" in lines
    assert lines[-1].startswith(f"REPORT RequestId: {request_id}\tDuration: ")
    assert "\tBilled Duration: " in lines[-1] and "\tMemory Size: 128 MB\t" in lines[-1]


def test_tail_keeps_the_last_4096_bytes(tmp_path):
    write_function(tmp_path, "chatty", "def handler(event, context):\n    print('x' * 10000)\n    return 1\n")
    with Emulator(tmp_path) as emu:
        answer = post(emu, "chatty", headers={"X-Amz-Log-Type": "Tail"})
    raw = base64.b64decode(answer.headers["x-amz-log-result"])
    assert len(raw) == 4096 and raw.decode().rstrip().splitlines()[-1].startswith("REPORT RequestId:")


def test_empty_payload_reaches_the_handler_as_an_empty_object(emu):
    assert post(emu, "echo", b"").json()["event"] == {}
    assert post(emu, "echo", b'"just a string"').json()["event"] == "just a string"


def test_chunked_request_bodies_are_read(emu):
    connection = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    connection.request("POST", "/2015-03-31/functions/echo/invocations", body=iter([b'{"a": ', b'[1, 2]}']),
                       encode_chunked=True)
    answer = Answer(connection.getresponse())
    connection.close()
    assert answer.json()["event"] == {"a": [1, 2]}


def test_non_ascii_results_come_back_as_utf8(emu):
    answer = post(emu, "echo", json.dumps({"s": "héllo"}).encode())
    assert json.loads(answer.body.decode("utf-8"))["event"] == {"s": "héllo"}


@pytest.mark.parametrize("name", [
    "simple",
    "simple:$LATEST",
    f"{ACCOUNT}:function:simple",
    f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:simple",
    f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:simple:$LATEST",
    f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:simple",
    "arn:aws:lambda:us-west-2:111122223333:function:simple",
])
def test_every_function_name_form_reaches_the_function(emu, name):
    answer = post(emu, name)
    assert answer.status == 200 and answer.body == HELLO
    assert emu.requests[-1].path_name == name and emu.requests[-1].function == "simple"


def test_the_context_object(tmp_path):
    write_function(tmp_path, "ctx", """
def handler(event, context):
    return {k: getattr(context, k) for k in ("function_name", "function_version", "invoked_function_arn",
            "memory_limit_in_mb", "aws_request_id", "log_group_name", "log_stream_name", "identity")} | {
            "remaining": context.get_remaining_time_in_millis(), "cc": context.client_context}
""")
    with Emulator(tmp_path, region="eu-central-1", account_id="444455556666") as emu:
        answer = post(emu, "ctx", query="Qualifier=%24LATEST")
    context = answer.json()
    assert context["function_name"] == "ctx" and context["function_version"] == "$LATEST"
    assert context["invoked_function_arn"] == "arn:aws:lambda:eu-central-1:444455556666:function:ctx:$LATEST"
    assert context["memory_limit_in_mb"] == "128" and context["log_group_name"] == "/aws/lambda/ctx"
    assert context["aws_request_id"] == answer.headers["x-amzn-requestid"]
    assert "[$LATEST]" in context["log_stream_name"] and context["identity"] is None
    assert 0 < context["remaining"] <= 3000 and context["cc"] is None


# -- versions and aliases --------------------------------------------------------------

def test_versions_and_aliases(emu, lam):
    for qualifier, executed in [("1", "1"), ("custom_version", "1"), ("$LATEST", "$LATEST")]:
        answer = post(emu, "echo", query="Qualifier=" + quote(qualifier, safe=""))
        assert answer.status == 200 and answer.headers["x-amz-executed-version"] == executed
        assert answer.json()["function_version"] == executed
        assert emu.requests[-1].qualifier == qualifier
    result = lam.invoke(FunctionName="simple", Qualifier="custom_version")
    assert result["ExecutedVersion"] == "1" and b"version 1" in result["Payload"].read()
    assert post(emu, "simple:custom_version").headers["x-amz-executed-version"] == "1"


def test_unknown_version_or_alias_is_not_found(emu):
    for query, suffix in [("Qualifier=99", ":99"), ("Qualifier=nope", ":nope")]:
        assert error_of(post(emu, "echo", query=query)) == (
            404, "ResourceNotFoundException", f"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:echo{suffix}")


def test_conflicting_qualifiers_are_refused(emu):
    status, error_type, message = error_of(post(emu, "echo:1", query="Qualifier=custom_version"))
    assert (status, error_type) == (400, "InvalidParameterValueException") and "does not match" in message
    assert post(emu, "echo:1", query="Qualifier=1").status == 200


# -- errors --------------------------------------------------------------------------

def test_unknown_function_is_404_like_lambda(emu, lam):
    assert error_of(post(emu, "nope")) == (
        404, "ResourceNotFoundException", f"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:nope")
    assert error_of(post(emu, "arn:aws:lambda:eu-west-1:999999999999:function:nope:7"))[2] == (
        "Function not found: arn:aws:lambda:eu-west-1:999999999999:function:nope:7")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="nope")


def test_handler_exception_is_an_unhandled_function_error(emu, lam):
    answer = post(emu, "fail", headers={"X-Amz-Log-Type": "Tail"})
    assert answer.status == 200 and answer.headers["x-amz-function-error"] == "Unhandled"
    body = answer.json()
    assert list(body) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert body["errorType"] == "RuntimeError" and body["errorMessage"].startswith("fail.py always raises")
    assert body["requestId"] == answer.headers["x-amzn-requestid"]
    assert "raise RuntimeError" in "".join(body["stackTrace"])
    log = answer.log()
    assert "fail is about to raise" in log and "[ERROR] RuntimeError: fail.py always raises" in log
    assert "Traceback (most recent call last):" in log
    result = lam.invoke(FunctionName="fail")
    assert result["FunctionError"] == "Unhandled"


def test_load_and_marshal_errors_look_like_the_runtimes(tmp_path):
    write_function(tmp_path, "broken", "def handler(event, context)\n    return 1\n")
    write_function(tmp_path, "nohandler", "x = 1\n")
    write_function(tmp_path, "badimport", "import no_such_module_here\n")
    write_function(tmp_path, "aset", "def handler(event, context):\n    return {1, 2}\n")
    with Emulator(tmp_path) as emu:
        for name, error_type in [("broken", "Runtime.UserCodeSyntaxError"), ("nohandler", "Runtime.HandlerNotFound"),
                                 ("badimport", "Runtime.ImportModuleError"), ("aset", "Runtime.MarshalError")]:
            answer = post(emu, name)
            assert answer.status == 200 and answer.headers["x-amz-function-error"] == "Unhandled"
            assert answer.json()["errorType"] == error_type


def test_invalid_headers_and_bodies_are_400(emu):
    cases = [
        ({"X-Amz-Invocation-Type": "Sometimes"}, b"{}", "InvalidParameterValueException"),
        ({"X-Amz-Log-Type": "Everything"}, b"{}", "InvalidParameterValueException"),
        ({"X-Amz-Client-Context": "not base64!"}, b"{}", "InvalidParameterValueException"),
        ({"X-Amz-Client-Context": base64.b64encode(b"[1, 2]").decode()}, b"{}", "InvalidParameterValueException"),
        ({}, b"{not json", "InvalidRequestContentException"),
    ]
    for headers, body, error_type in cases:
        status, got_type, _ = error_of(post(emu, "echo", body, headers))
        assert (status, got_type) == (400, error_type)
    assert emu.invocations("echo") == 0
    assert post(emu, "bad name!").status == 400


def test_payload_limits_are_413(emu):
    status, error_type, message = error_of(post(emu, "echo", b'"' + b"x" * (1024 * 1024) + b'"',
                                                 {"X-Amz-Invocation-Type": "Event"}))
    assert (status, error_type) == (413, "RequestEntityTooLargeException") and "Event" in message
    status, error_type, message = error_of(post(emu, "echo", b'"' + b"x" * (6 * 1024 * 1024) + b'"'))
    assert (status, error_type) == (413, "RequestEntityTooLargeException")
    assert message == "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    assert post(emu, "simple", b'"' + b"x" * (6 * 1024 * 1024 - 2) + b'"').status == 200
    assert emu.invocations("echo") == 0


def test_response_over_6mb_is_a_function_error(emu):
    answer = post(emu, "echo", b'"' + b"x" * (6 * 1024 * 1024 - 2) + b'"')
    assert answer.headers["x-amz-function-error"] == "Unhandled"
    assert answer.json()["errorType"] == "Function.ResponseSizeTooLarge"


# -- invocation types and client context ------------------------------------------------

def test_event_is_202_at_once_and_runs_in_the_background(emu):
    started = time.monotonic()
    answer = post(emu, "sleep", b'{"seconds": 0.3}', {"X-Amz-Invocation-Type": "Event", "X-Amz-Log-Type": "Tail"})
    assert time.monotonic() - started < 0.25
    assert (answer.status, answer.body) == (202, b"")
    assert "x-amz-log-result" not in answer.headers and "x-amzn-requestid" in answer.headers
    assert emu.wait_idle(5) and emu.invocations("sleep") == 1
    assert emu.requests[-1].invocation_type == "Event"


def test_dry_run_is_204_and_runs_nothing(emu, lam):
    answer = post(emu, "echo", headers={"X-Amz-Invocation-Type": "DryRun"})
    assert (answer.status, answer.body) == (204, b"")
    assert lam.invoke(FunctionName="echo", InvocationType="DryRun")["StatusCode"] == 204
    assert emu.invocations("echo") == 0
    assert post(emu, "nope", headers={"X-Amz-Invocation-Type": "DryRun"}).status == 404


def test_client_context_reaches_the_handler(emu, lam):
    sent = {"custom": {"tenant": "t1"}, "env": {"locale": "en"}, "client": {"app_title": "psql"}}
    result = lam.invoke(FunctionName="echo", ClientContext=base64.b64encode(json.dumps(sent).encode()).decode())
    got = json.loads(result["Payload"].read())["client_context"]
    assert got["custom"] == sent["custom"] and got["env"] == sent["env"]
    assert got["client"]["app_title"] == "psql" and got["client"]["installation_id"] is None
    assert json.loads(base64.b64decode(emu.requests[-1].headers["X-Amz-Client-Context"])) == sent
    assert post(emu, "echo").json()["client_context"] is None


# -- signatures and STS ----------------------------------------------------------------

def test_import_does_not_load_botocore():
    code = "import sys, lambda_emulator; assert 'botocore' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_signed_requests_are_verified(secure):
    secure.reset()
    result = client(secure).invoke(FunctionName=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:simple:custom_version")
    assert result["StatusCode"] == 200 and result["ExecutedVersion"] == "1"
    assert (secure.requests[-1].access_key, secure.requests[-1].role_arn) == (AKID, None)
    assert client(secure).invoke(FunctionName="echo", Qualifier="$LATEST")["ExecutedVersion"] == "$LATEST"
    with pytest.raises(ClientError) as caught:
        client(secure, secret="wrong").invoke(FunctionName="simple")
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as caught:
        client(secure, key="AKIDUNKNOWN").invoke(FunctionName="simple")
    assert caught.value.response["Error"] == {
        "Code": "UnrecognizedClientException", "Message": "The security token included in the request is invalid."}
    assert error_of(post(secure, "simple"))[:2] == (403, "MissingAuthenticationTokenException")
    assert error_of(post(secure, "simple", headers={"Authorization": "Basic x"}))[:2] == (
        403, "IncompleteSignatureException")
    assert secure.invocations("simple") == 1 and secure.invocations("echo") == 1


def _signed(emu, body, region=REGION, service="lambda", function="simple", secret=SECRET):
    url = f"{emu.url}/2015-03-31/functions/{function}/invocations"
    request = AWSRequest(method="POST", url=url, data=body, headers={"X-Amz-Log-Type": "None"})
    SigV4Auth(Credentials(AKID, secret), service, region).add_auth(request)
    return dict(request.headers.items())


def test_tampered_or_misscoped_signatures_are_refused(secure):
    headers = _signed(secure, b'{"a": 1}')
    assert post(secure, "simple", b'{"a": 1}', headers).status == 200
    assert error_of(post(secure, "simple", b'{"a": 2}', headers))[:2] == (403, "InvalidSignatureException")
    assert error_of(post(secure, "echo", b'{"a": 1}', headers))[:2] == (403, "InvalidSignatureException")
    assert error_of(post(secure, "simple", b"{}", _signed(secure, b"{}", service="s3")))[:2] == (
        403, "InvalidSignatureException")
    assert post(secure, "simple", b"{}", _signed(secure, b"{}", region="ap-south-1")).status == 200


def test_assume_role_and_use_the_temporary_key(secure):
    secure.reset()
    sts = client(secure, "sts")
    answer = sts.assume_role(RoleArn=ROLE, RoleSessionName="demo")
    creds = answer["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and creds["SessionToken"] and creds["Expiration"]
    assert answer["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/lambda-caller/demo"
    temporary = client(secure, key=creds["AccessKeyId"], secret=creds["SecretAccessKey"], token=creds["SessionToken"])
    assert temporary.invoke(FunctionName="simple")["StatusCode"] == 200
    record = secure.requests[-1]
    assert (record.access_key, record.role_arn) == (creds["AccessKeyId"], ROLE)
    assert secure.assume_role_calls[-1]["source_access_key"] == AKID
    without_token = client(secure, key=creds["AccessKeyId"], secret=creds["SecretAccessKey"])
    with pytest.raises(ClientError) as caught:
        without_token.invoke(FunctionName="simple")
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"
    time.sleep(1.05)  # assume_role_duration=1
    with pytest.raises(ClientError) as caught:
        temporary.invoke(FunctionName="simple")
    assert caught.value.response["Error"]["Code"] == "ExpiredTokenException"


def test_sts_errors_are_sts_xml(secure):
    with pytest.raises(ClientError) as caught:
        client(secure, "sts", secret="wrong").assume_role(RoleArn=ROLE, RoleSessionName="demo")
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as caught:
        client(secure, "sts").assume_role(RoleArn="arn:aws:s3:::not-a-role-at-all", RoleSessionName="demo")
    assert caught.value.response["Error"]["Code"] == "ValidationError"


def test_botocore_assume_role_fetcher_parses_and_refreshes(secure):
    secure.reset()

    def create_client(service, **kwargs):
        return botocore.session.get_session().create_client(
            service, endpoint_url=secure.url, region_name=REGION, **kwargs)

    fetcher = AssumeRoleCredentialFetcher(create_client, Credentials(AKID, SECRET), ROLE,
                                          extra_args={"RoleSessionName": "fetcher"})
    secure.assume_role_duration = 60  # long enough to be used on a slow machine
    try:
        first = fetcher.fetch_credentials()
        second = fetcher.fetch_credentials()  # expires within botocore's 15 minutes: fetched again
    finally:
        secure.assume_role_duration = 1
    assert first["access_key"] != second["access_key"] and len(secure.assume_role_calls) == 2
    assert first["access_key"].startswith("ASIA") and first["token"] and first["expiry_time"]
    lam = client(secure, key=second["access_key"], secret=second["secret_key"], token=second["token"])
    assert lam.invoke(FunctionName="simple")["StatusCode"] == 200
    assert secure.requests[-1].role_arn == ROLE


def test_without_credentials_anything_is_accepted_and_the_key_recorded(emu):
    assert post(emu, "simple").status == 200 and emu.requests[-1].access_key is None
    assert client(emu, secret="whatever").invoke(FunctionName="simple")["StatusCode"] == 200
    assert emu.requests[-1].access_key == AKID


# -- faults ------------------------------------------------------------------------

def test_close_before_response(emu):
    emu.set_fault("simple", "close_before_response", count=1)
    with pytest.raises(http.client.RemoteDisconnected):
        post(emu, "simple")
    assert post(emu, "simple").status == 200
    assert emu.invocations("simple") == 1
    assert [r.fault for r in emu.requests] == ["close_before_response", None]


def test_drop_mid_response(emu):
    emu.set_fault("simple", "drop_mid_response", size=2000, sent=100)
    with pytest.raises(http.client.IncompleteRead) as caught:
        post(emu, "simple")
    assert len(caught.value.partial) == 100 and caught.value.expected == 1900


def test_delay_then_normal_answer(emu):
    emu.set_fault("simple", "delay", count=1, seconds=0.3)
    started = time.monotonic()
    answer = post(emu, "simple")
    assert time.monotonic() - started >= 0.3 and answer.body == HELLO
    assert emu.invocations("simple") == 1


@pytest.mark.parametrize("status, error_type", [
    (429, "TooManyRequestsException"), (500, "ServiceException"), (502, "ServiceException"),
    (503, "ServiceException"), (413, "RequestTooLargeException"),
])
def test_status_faults(emu, status, error_type):
    emu.set_fault("simple", "status", count=1, status=status)
    answer = post(emu, "simple")
    assert error_of(answer)[:2] == (status, error_type)
    assert ("retry-after" in answer.headers) == (status == 429)
    assert emu.invocations("simple") == 0 and post(emu, "simple").status == 200


def test_status_fault_seen_by_botocore(emu, lam):
    emu.set_fault("*", "status", count=1, status=429, retry_after=7)
    with pytest.raises(lam.exceptions.TooManyRequestsException) as caught:
        lam.invoke(FunctionName="echo")
    assert caught.value.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "7"


def test_not_json_and_huge(emu):
    emu.set_fault("simple", "not_json", count=1)
    answer = post(emu, "simple")
    assert answer.status == 200
    with pytest.raises(ValueError):
        json.loads(answer.body)
    emu.set_fault("simple", "huge", count=1, size=7_000_000)
    answer = post(emu, "simple")
    assert answer.status == 200 and len(answer.body) == 7_000_000 and isinstance(answer.json(), str)


def test_faults_apply_in_order_count_times_then_stop(emu):
    emu.set_fault("simple", "status", count=2, status=500)
    emu.set_fault("simple", "status", count=1, status=429)
    assert [post(emu, "simple").status for _ in range(4)] == [500, 500, 429, 200]
    assert post(emu, "echo").status == 200
    emu.set_fault("simple", "status", status=503)  # every request, until cleared
    assert [post(emu, "simple").status for _ in range(3)] == [503, 503, 503]
    emu.clear_faults()
    assert post(emu, "simple").status == 200
    with pytest.raises(ValueError):
        emu.set_fault("simple", "explode")
    with pytest.raises(ValueError):
        emu.set_fault("simple", "delay", minutes=1)


def test_http_control_endpoints(emu):
    assert control(emu, "GET", "/_emulator/health") == (200, {"ok": True})
    status, answer = control(emu, "POST", "/_emulator/faults", {"function": "echo", "kind": "status", "count": 1,
                                                                 "status": 429})
    assert status == 200 and answer["fault"]["params"]["status"] == 429
    assert control(emu, "POST", "/_emulator/faults", {"function": "echo", "kind": "nope"})[0] == 400
    assert post(emu, "echo").status == 429 and post(emu, "echo").status == 200
    control(emu, "POST", "/_emulator/faults", {"kind": "status", "status": 500})
    assert len(control(emu, "GET", "/_emulator/faults")[1]["faults"]) == 1
    assert control(emu, "DELETE", "/_emulator/faults")[1] == {"faults": []}
    post(emu, "simple")
    status, counts = control(emu, "GET", "/_emulator/requests")
    assert counts["total"] == 3 and counts["by_function"] == {"echo": 2, "simple": 1}
    assert counts["invocations"] == {"echo": 1, "simple": 1}
    assert counts["requests"][0]["fault"] == "status" and counts["requests"][0]["status"] == 429
    assert control(emu, "POST", "/_emulator/reset") == (200, {"ok": True})
    assert control(emu, "GET", "/_emulator/requests")[1]["total"] == 0


# -- concurrency, robustness, performance --------------------------------------------------

def test_concurrent_tail_logs_do_not_mix(tmp_path):
    write_function(tmp_path, "talk", """
import sys, time
def handler(event, context):
    for i in range(5):
        print(f"{event['me']} line {i}")
        print(f"{event['me']} err {i}", file=sys.stderr)
        time.sleep(0.01)
    return event['me']
""")
    with Emulator(tmp_path) as emu:
        def call(me):
            return me, post(emu, "talk", json.dumps({"me": me}).encode(), {"X-Amz-Log-Type": "Tail"}).log()

        with ThreadPoolExecutor(10) as pool:
            logs = list(pool.map(call, [f"caller{n}" for n in range(10)]))
    for me, log in logs:
        lines = log.splitlines()[1:-2]
        assert len(lines) == 10 and all(line.startswith(me + " ") for line in lines)


def test_twenty_concurrent_connections_and_a_slow_handler_block_nobody(emu):
    def slow(_):
        return post(emu, "sleep", b'{"seconds": 0.4}').json()

    started = time.monotonic()
    with ThreadPoolExecutor(20) as pool:
        pending = [pool.submit(slow, n) for n in range(20)]
        quick = post(emu, "simple")
        assert quick.status == 200 and time.monotonic() - started < 0.35
        results = [future.result() for future in pending]
    assert results == [{"slept": 0.4}] * 20 and time.monotonic() - started < 2.0


def test_a_client_that_goes_away_does_not_hurt_the_server(emu):
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", emu.port))
        body = b'{"seconds": 0.2}'
        sock.sendall(b"POST /2015-03-31/functions/sleep/invocations HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        sock.close()
    sock = socket.create_connection(("127.0.0.1", emu.port))
    sock.sendall(b"POST /2015-03-31/functions/simple/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    sock.close()  # mid-body
    time.sleep(0.3)
    assert post(emu, "simple").body == HELLO


def test_keep_alive_calls_are_fast(emu):
    connection = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    path = "/2015-03-31/functions/simple/invocations"
    for _ in range(20):
        connection.request("POST", path, body=b"{}")
        connection.getresponse().read()
    started = time.perf_counter()
    for _ in range(500):
        connection.request("POST", path, body=b"{}")
        response = connection.getresponse()
        assert response.read() == HELLO
    per_call_ms = (time.perf_counter() - started) * 1000 / 500
    connection.close()
    assert per_call_ms < 3, per_call_ms  # client and server together; typically ~0.3 ms


def test_handlers_are_fresh_per_emulator_and_reloaded_when_edited(tmp_path):
    path = write_function(tmp_path, "count", "n = 0\ndef handler(event, context):\n"
                                             "    global n\n    n += 1\n    return n\n")
    with Emulator(tmp_path) as first, Emulator(tmp_path) as second:
        assert [post(first, "count").json() for _ in range(3)] == [1, 2, 3]
        assert post(second, "count").json() == 1
        write_function(tmp_path, "count", "def handler(event, context):\n    return 'edited'\n")
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
        assert post(first, "count").json() == "edited"


def test_stop_closes_the_port_and_kept_alive_connections():
    emu = Emulator(FUNCTIONS).start()
    connection = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
    connection.request("POST", "/2015-03-31/functions/simple/invocations", body=b"{}")
    assert connection.getresponse().read() == HELLO
    port = emu.port
    emu.stop()
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        connection.request("POST", "/2015-03-31/functions/simple/invocations", body=b"{}")
        connection.getresponse().read()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_command_line(tmp_path):
    port_file = tmp_path / "port"
    process = subprocess.Popen(
        [sys.executable, "-m", "lambda_emulator", "--functions", FUNCTIONS, "--port", "0",
         "--port-file", str(port_file), "--credentials", f"{AKID}:{SECRET}", "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline().strip()
        port = int(port_file.read_text())
        assert line == f"plpy_lambda emulator listening on http://127.0.0.1:{port}"
        lam = botocore.session.get_session().create_client(
            "lambda", endpoint_url=f"http://127.0.0.1:{port}", region_name=REGION, config=NO_RETRIES,
            aws_access_key_id=AKID, aws_secret_access_key=SECRET)
        assert lam.invoke(FunctionName="simple")["Payload"].read() == HELLO
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
