"""The local Lambda endpoint and today's Invoke: tenant isolation (TenantId), durable
functions (DurableExecutionName, DurableExecutionArn), the qualifier
$LATEST.PUBLISHED and Invoke's own errors (RecursiveInvocationException,
ModeNotSupportedException), driven with botocore's real Lambda client (SigV4
signed where the emulator checks it) and raw HTTP for what botocore would not send.
No PostgreSQL."""

import base64
import http.client
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from lambda_emulator import Emulator, InvokeError
from lambda_emulator.invoke_errors import INVOKE_ERRORS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUNCTIONS = os.path.join(ROOT, "examples", "functions")
ACCOUNT, REGION = "123456789012", "us-east-1"
AKID, SECRET = "AKIDEXAMPLE", "secret"
NO_RETRIES = Config(retries={"total_max_attempts": 1}, read_timeout=10, connect_timeout=5)
MODEL = botocore.session.get_session().get_service_model("lambda")
INVOKE = MODEL.operation_model("Invoke")
TENANT_PATTERN = INVOKE.input_shape.members["TenantId"].metadata["pattern"]
EXECUTION_ARN = re.compile(INVOKE.output_shape.members["DurableExecutionArn"].metadata["pattern"])


# -- helpers -------------------------------------------------------------------

class Answer:
    def __init__(self, response):
        self.status = response.status
        self.headers = {name.lower(): value for name, value in response.getheaders()}
        self.body = response.read()

    def json(self):
        return json.loads(self.body)


def post(emu, function, body=b"{}", headers=None, query=""):
    connection = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    try:
        path = f"/2015-03-31/functions/{quote(function, safe='')}/invocations" + (f"?{query}" if query else "")
        connection.request("POST", path, body=body, headers=headers or {})
        return Answer(connection.getresponse())
    finally:
        connection.close()


def control(emu, path):
    connection = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    try:
        connection.request("GET", path)
        answer = Answer(connection.getresponse())
        return answer.status, answer.json()
    finally:
        connection.close()


def client(emu):
    return botocore.session.get_session().create_client(
        "lambda", endpoint_url=emu.url, region_name=REGION, config=NO_RETRIES,
        aws_access_key_id=AKID, aws_secret_access_key=SECRET)


def error_of(answer):
    body = answer.json()
    assert body["Type"] in ("User", "Service") and body["message"] == body["Message"]
    return answer.status, answer.headers["x-amzn-errortype"], body["message"]


def client_error(call):
    """(HTTP status, error code, message) of the ClientError call raises."""
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def write(directory, name, text):
    with open(os.path.join(directory, name), "w") as file:
        file.write(text)


COUNTER = ("n = 0\n"
           "def handler(event, context):\n"
           "    global n\n"
           "    n += 1\n"
           "    return {'n': n, 'tenant': context.tenant_id, 'version': context.function_version,\n"
           "            'arn': context.invoked_function_arn}\n")


@pytest.fixture(scope="module")
def signed():
    """Checks SigV4, so every header botocore sends must be signed as Lambda wants."""
    with Emulator(FUNCTIONS, credentials={AKID: SECRET}) as emu:
        yield emu


@pytest.fixture
def emu(signed):
    signed.reset()
    return signed


@pytest.fixture(scope="module")
def lam(signed):
    return client(signed)


@pytest.fixture(scope="module")
def unsigned_emu():
    with Emulator(FUNCTIONS) as emu:
        yield emu


@pytest.fixture
def raw(unsigned_emu):
    unsigned_emu.reset()
    return unsigned_emu


# -- tenant isolation -----------------------------------------------------------------

def test_each_tenant_has_its_own_module_state(emu, lam):
    def call(tenant):
        result = lam.invoke(FunctionName="tenant_counter", TenantId=tenant, Payload=b"{}")
        assert result["StatusCode"] == 200 and result["ExecutedVersion"] == "$LATEST"
        return json.loads(result["Payload"].read())

    assert [call("blue") for _ in range(3)] == [{"tenant": "blue", "calls": n} for n in (1, 2, 3)]
    assert [call("green") for _ in range(2)] == [{"tenant": "green", "calls": n} for n in (1, 2)]
    assert call("blue") == {"tenant": "blue", "calls": 4}
    assert emu.invocations("tenant_counter") == 6
    assert emu.tenant_invocations("tenant_counter") == {"blue": 4, "green": 2}
    assert [r.tenant_id for r in emu.requests] == ["blue"] * 3 + ["green"] * 2 + ["blue"]
    assert emu.requests[-1].headers["X-Amz-Tenant-Id"] == "blue"


def test_a_tenant_isolated_function_needs_a_tenant_id(emu, lam):
    status, code, message = client_error(lambda: lam.invoke(FunctionName="tenant_counter"))
    assert (status, code) == (400, "InvalidParameterValueException") and "Tenant ID not specified" in message
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.invoke(FunctionName="tenant_counter", InvocationType="Event")
    assert emu.invocations("tenant_counter") == 0


def test_a_tenant_id_for_a_function_without_tenant_isolation_is_refused(emu, lam):
    status, code, message = client_error(lambda: lam.invoke(FunctionName="simple", TenantId="blue"))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "does not have tenant isolation enabled" in message
    assert emu.invocations("simple") == 0 and emu.requests[-1].tenant_id == "blue"


@pytest.mark.parametrize("tenant, constraint", [
    ("x" * 257, "Member must have length less than or equal to 256"),
    ("bad!tenant", "Member must satisfy regular expression pattern: " + TENANT_PATTERN),
    ("semi;colon", "Member must satisfy regular expression pattern: " + TENANT_PATTERN),
])
def test_a_malformed_tenant_id_is_a_validation_error(emu, lam, tenant, constraint):
    status, code, message = client_error(lambda: lam.invoke(FunctionName="tenant_counter", TenantId=tenant))
    assert (status, code) == (400, "ValidationException")
    assert message == (f"1 validation error detected: Value '{tenant}' at 'tenantId' failed to satisfy "
                       f"constraint: {constraint}")
    assert emu.invocations("tenant_counter") == 0


def test_malformed_tenant_ids_over_raw_http(raw):
    for tenant in ("x" * 257, "bad!", "caf\u00e9"):  # the last goes out as latin-1, as http.client sends it
        status, code, message = error_of(post(raw, "tenant_counter", headers={"X-Amz-Tenant-Id": tenant}))
        assert (status, code) == (400, "ValidationException") and "'tenantId'" in message
    assert post(raw, "tenant_counter", headers={"X-Amz-Tenant-Id": "x" * 256}).json()["calls"] == 1
    assert raw.invocations("tenant_counter") == 1


def test_every_character_the_model_allows(emu, lam):
    tenant = "Org.unit_1:team/a=b+c-d@e f"
    result = json.loads(lam.invoke(FunctionName="tenant_counter", TenantId=tenant)["Payload"].read())
    assert result == {"tenant": tenant, "calls": 1}
    assert re.fullmatch(INVOKE.input_shape.members["TenantId"].metadata["pattern"], tenant)


def test_event_calls_run_in_the_tenants_environment(emu, lam):
    assert lam.invoke(FunctionName="tenant_counter", TenantId="red")["StatusCode"] == 200
    for _ in range(2):
        assert lam.invoke(FunctionName="tenant_counter", TenantId="red", InvocationType="Event")["StatusCode"] == 202
        assert emu.wait_idle(5)
    assert json.loads(lam.invoke(FunctionName="tenant_counter", TenantId="red")["Payload"].read())["calls"] == 4
    assert json.loads(lam.invoke(FunctionName="tenant_counter", TenantId="ink")["Payload"].read())["calls"] == 1
    assert emu.tenant_invocations("tenant_counter") == {"red": 4, "ink": 1}


def test_environments_are_per_version_and_tenant_and_context_tenant_id(tmp_path):
    write(tmp_path, "iso.py", COUNTER)
    write(tmp_path, "iso@1.py", COUNTER)
    write(tmp_path, "iso.json", '{"tenancy": {"tenant_isolation_mode": "PER_TENANT"}}')
    write(tmp_path, "plain.py", COUNTER)
    with Emulator(tmp_path) as emu:
        lam = client(emu)

        def call(tenant, **kwargs):
            return json.loads(lam.invoke(FunctionName="iso", TenantId=tenant, **kwargs)["Payload"].read())

        assert [call("a")["n"], call("a")["n"], call("b")["n"]] == [1, 2, 1]
        assert [call("a", Qualifier="1")["n"], call("a", Qualifier="$LATEST.PUBLISHED")["n"]] == [1, 2]
        assert call("a")["n"] == 3 and call("b", Qualifier="1") == {
            "n": 1, "tenant": "b", "version": "1", "arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:iso:1"}
        assert json.loads(lam.invoke(FunctionName="plain")["Payload"].read())["tenant"] is None
        write(tmp_path, "iso.json", '{"tenancy": {"tenant_isolation_mode": "SHARED"}}')
        answer = post(emu, "iso", headers={"X-Amz-Tenant-Id": "a"})
        assert answer.status == 500 and "tenant_isolation_mode" in answer.json()["message"]


def test_tenants_in_the_control_endpoint(raw):
    post(raw, "tenant_counter", headers={"X-Amz-Tenant-Id": "blue"})
    post(raw, "tenant_counter", headers={"X-Amz-Tenant-Id": "blue"})
    post(raw, "tenant_counter", headers={"X-Amz-Tenant-Id": "green"})
    status, summary = control(raw, "/_emulator/requests")
    assert status == 200 and summary["tenant_invocations"] == {"tenant_counter": {"blue": 2, "green": 1}}
    assert [r["tenant_id"] for r in summary["requests"]] == ["blue", "blue", "green"]


# -- durable functions ------------------------------------------------------------------

def test_an_execution_name_starts_one_execution(emu, lam):
    payload = json.dumps({"order_id": 7}).encode()
    first = lam.invoke(FunctionName="durable_order", DurableExecutionName="order-7", Payload=payload)
    arn = first["DurableExecutionArn"]
    assert EXECUTION_ARN.fullmatch(arn), arn
    assert arn.startswith(f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:durable_order:$LATEST/durable-execution/order-7/")
    answer = json.loads(first["Payload"].read())
    assert answer == {"order_id": 7, "status": "placed", "placed": 1, "function_version": "$LATEST"}
    assert first["ResponseMetadata"]["HTTPHeaders"]["x-amz-durable-execution-arn"] == arn

    again = lam.invoke(FunctionName="durable_order", DurableExecutionName="order-7", Payload=payload)
    assert again["DurableExecutionArn"] == arn and json.loads(again["Payload"].read()) == answer
    assert again["StatusCode"] == 200 and again["ExecutedVersion"] == "$LATEST"
    assert emu.executions("durable_order") == 1 and emu.invocations("durable_order") == 1
    assert len(emu.requests) == 2
    assert [r.durable_execution_arn for r in emu.requests] == [arn, arn]
    assert [r.durable_execution_name for r in emu.requests] == ["order-7", "order-7"]
    (execution,) = emu.durable_executions
    assert (execution.arn, execution.name, execution.version, execution.status, execution.payload) == (
        arn, "order-7", "$LATEST", "SUCCEEDED", payload)
    assert execution.request_id == emu.requests[0].request_id


def test_the_same_name_with_another_payload_is_409(emu, lam):
    arn = lam.invoke(FunctionName="durable_order", DurableExecutionName="order-8",
                     Payload=b'{"order_id": 8}')["DurableExecutionArn"]
    status, code, message = client_error(lambda: lam.invoke(
        FunctionName="durable_order", DurableExecutionName="order-8", Payload=b'{"order_id": 9}'))
    assert (status, code) == (409, "DurableExecutionAlreadyStartedException")
    assert "order-8" in message and arn in message
    with pytest.raises(lam.exceptions.DurableExecutionAlreadyStartedException):
        lam.invoke(FunctionName="durable_order", DurableExecutionName="order-8", Payload=b'{"order_id":8}')
    assert emu.executions("durable_order") == 1 and emu.invocations("durable_order") == 1


def test_without_a_name_every_call_starts_an_execution(emu, lam):
    arns = [lam.invoke(FunctionName="durable_order", Payload=b'{"order_id": 1}')["DurableExecutionArn"]
            for _ in range(3)]
    assert len(set(arns)) == 3 and all(EXECUTION_ARN.fullmatch(arn) for arn in arns)
    assert emu.executions("durable_order") == 3 == emu.invocations("durable_order")
    names = [execution.name for execution in emu.durable_executions]
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name) for name in names) and len(set(names)) == 3


def test_retried_deliveries_start_one_execution_each(emu, lam):
    """What a queue that retries does: each delivery is sent with its own name, some
    twice (the answer was lost); executions started == deliveries, requests more."""
    deliveries = {f"delivery-{n}": json.dumps({"order_id": n}).encode() for n in range(5)}
    sent = list(deliveries.items()) + list(deliveries.items())[:3]
    arns = {}
    for name, payload in sent:
        arn = lam.invoke(FunctionName="durable_order", DurableExecutionName=name, Payload=payload,
                         InvocationType="Event")["DurableExecutionArn"]
        assert arns.setdefault(name, arn) == arn
    assert emu.wait_idle(5)
    assert emu.executions("durable_order") == len(deliveries) == emu.invocations("durable_order")
    assert len(emu.requests) == len(sent) > emu.executions("durable_order")
    status, summary = control(emu, "/_emulator/executions")
    assert status == 200 and summary["executions"] == {"durable_order": 5}
    assert sorted(e["name"] for e in summary["durable_executions"]) == sorted(deliveries)
    assert all(e["status"] == "SUCCEEDED" and e["invocation_type"] == "Event" for e in summary["durable_executions"])
    status, requests = control(emu, "/_emulator/requests")
    assert requests["executions"] == {"durable_order": 5} and requests["total"] == 8
    assert [r["durable_execution_arn"] for r in requests["requests"]] == [arns[name] for name, _ in sent]


def test_event_then_request_response_gets_the_stored_answer(emu, lam):
    started = lam.invoke(FunctionName="durable_order", DurableExecutionName="late", Payload=b'{"order_id": 3}',
                         InvocationType="Event")
    assert started["StatusCode"] == 202 and EXECUTION_ARN.fullmatch(started["DurableExecutionArn"])
    result = lam.invoke(FunctionName="durable_order", DurableExecutionName="late", Payload=b'{"order_id": 3}',
                        LogType="Tail")
    assert result["DurableExecutionArn"] == started["DurableExecutionArn"]
    assert json.loads(result["Payload"].read())["order_id"] == 3
    assert "durable_order: placing order 3" in base64.b64decode(result["LogResult"]).decode()
    assert emu.invocations("durable_order") == 1 and emu.executions("durable_order") == 1


def test_concurrent_calls_with_one_name_run_the_handler_once(tmp_path):
    write(tmp_path, "slow.py", "import time\nn = 0\ndef handler(event, context):\n"
                               "    global n\n    n += 1\n    time.sleep(0.3)\n    return n\n")
    write(tmp_path, "slow.json", '{"durable": {"execution_timeout": 60}}')
    with Emulator(tmp_path) as emu:
        lam = client(emu)

        def call(_):
            result = lam.invoke(FunctionName="slow", DurableExecutionName="once", Payload=b'{"a": 1}')
            return result["DurableExecutionArn"], result["Payload"].read()

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(call, range(6)))
        assert len(set(answers)) == 1 and answers[0][1] == b"1"
        assert emu.invocations("slow") == 1 and emu.executions("slow") == 1


def test_names_are_per_function_and_version(tmp_path):
    write(tmp_path, "job.py", COUNTER)
    write(tmp_path, "job@1.py", COUNTER)
    write(tmp_path, "other.py", COUNTER)
    write(tmp_path, "job.json", '{"durable": true}')
    write(tmp_path, "other.json", '{"durable": true}')
    with Emulator(tmp_path, region="eu-west-1", account_id="444455556666") as emu:
        lam = client(emu)
        first = lam.invoke(FunctionName="job", Qualifier="$LATEST.PUBLISHED", DurableExecutionName="run")
        arn = first["DurableExecutionArn"]
        assert first["ExecutedVersion"] == "1" and EXECUTION_ARN.fullmatch(arn)
        assert arn.startswith(f"arn:aws:lambda:{REGION}:444455556666:function:job:1/durable-execution/run/")
        assert lam.invoke(FunctionName="job:1", DurableExecutionName="run")["DurableExecutionArn"] == arn
        status, code, message = client_error(lambda: lam.invoke(FunctionName="job", DurableExecutionName="run"))
        assert (status, code) == (409, "DurableExecutionAlreadyStartedException") and arn in message
        other = lam.invoke(FunctionName="other", DurableExecutionName="run")["DurableExecutionArn"]
        assert other != arn and ":function:other:$LATEST/durable-execution/run/" in other
        assert emu.executions("job") == 1 and emu.executions("other") == 1
        emu.reset()  # forgets executions: the name starts a new one
        again = lam.invoke(FunctionName="job", Qualifier="1", DurableExecutionName="run")
        assert again["DurableExecutionArn"] != arn and emu.executions("job") == 1


def test_a_failed_execution_is_returned_not_run_again(tmp_path):
    write(tmp_path, "boom.py", "n = 0\ndef handler(event, context):\n    global n\n    n += 1\n"
                               "    raise ValueError(f'boom {n}')\n")
    write(tmp_path, "boom.json", '{"durable": true}')
    with Emulator(tmp_path) as emu:
        lam = client(emu)
        answers = [lam.invoke(FunctionName="boom", DurableExecutionName="x") for _ in range(2)]
        assert all(a["FunctionError"] == "Unhandled" for a in answers)
        assert [json.loads(a["Payload"].read())["errorMessage"] for a in answers] == ["boom 1", "boom 1"]
        assert emu.invocations("boom") == 1 and emu.durable_executions[0].status == "FAILED"


def test_dry_run_starts_no_execution(emu, lam):
    assert lam.invoke(FunctionName="durable_order", InvocationType="DryRun",
                      DurableExecutionName="dry")["StatusCode"] == 204
    assert emu.executions("durable_order") == 0 and emu.durable_executions == []


def test_an_execution_name_for_a_function_that_is_not_durable_is_refused(emu, lam):
    status, code, message = client_error(lambda: lam.invoke(FunctionName="simple", DurableExecutionName="n"))
    assert (status, code) == (400, "InvalidParameterValueException") and "not a durable function" in message
    assert emu.invocations("simple") == 0 and emu.executions("simple") == 0


def test_malformed_execution_names_are_validation_errors(raw):
    for name in ("x" * 65, "has space", "dot.ted", ""):
        status, code, message = error_of(post(raw, "durable_order",
                                              headers={"X-Amz-Durable-Execution-Name": name}))
        assert (status, code) == (400, "ValidationException") and "'durableExecutionName'" in message
    assert raw.executions("durable_order") == 0
    assert post(raw, "durable_order", headers={"X-Amz-Durable-Execution-Name": "a-Z_9" * 12 + "abcd"}).status == 200
    assert raw.executions("durable_order") == 1


# -- $LATEST.PUBLISHED -------------------------------------------------------------------

def test_latest_published_runs_the_highest_published_version(emu, lam):
    result = lam.invoke(FunctionName="echo", Qualifier="$LATEST.PUBLISHED")
    assert result["ExecutedVersion"] == "1" and json.loads(result["Payload"].read())["function_version"] == "1"
    assert emu.requests[-1].qualifier == "$LATEST.PUBLISHED"
    result = lam.invoke(FunctionName="simple:$LATEST.PUBLISHED")
    assert result["ExecutedVersion"] == "1" and b"version 1" in result["Payload"].read()
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:simple:$LATEST.PUBLISHED"
    assert lam.invoke(FunctionName=arn)["ExecutedVersion"] == "1"


def test_latest_published_is_the_numerically_highest(tmp_path):
    write(tmp_path, "f.py", COUNTER)
    for version in (1, 2, 10):
        write(tmp_path, f"f@{version}.py", COUNTER)
    with Emulator(tmp_path, account_id="444455556666") as emu:
        answer = post(emu, "f", query="Qualifier=%24LATEST.PUBLISHED")
        assert answer.headers["x-amz-executed-version"] == "10"
        assert answer.json()["arn"] == f"arn:aws:lambda:{REGION}:444455556666:function:f:$LATEST.PUBLISHED"
        write(tmp_path, "f@11.py", COUNTER)
        assert post(emu, "f:$LATEST.PUBLISHED").headers["x-amz-executed-version"] == "11"


def test_latest_published_without_a_published_version(emu, lam):
    status, code, message = client_error(lambda: lam.invoke(FunctionName="noop", Qualifier="$LATEST.PUBLISHED"))
    assert (status, code) == (400, "NoPublishedVersionException") and "no published versions" in message
    with pytest.raises(lam.exceptions.NoPublishedVersionException):
        lam.invoke(FunctionName="noop:$LATEST.PUBLISHED")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="nope", Qualifier="$LATEST.PUBLISHED")
    assert emu.invocations("noop") == 0


def test_latest_published_statuses_are_the_models():
    assert MODEL.shape_for("NoPublishedVersionException").metadata["error"]["httpStatusCode"] == 400
    pattern = INVOKE.input_shape.members["Qualifier"].metadata["pattern"]
    assert re.fullmatch(pattern, "$LATEST.PUBLISHED")


# -- Invoke's own errors on purpose ----------------------------------------------------------

def test_the_error_table_is_the_models():
    assert INVOKE_ERRORS == {shape.name: shape.metadata["error"]["httpStatusCode"] for shape in INVOKE.error_shapes}


def test_a_handler_raising_recursive_invocation(emu, lam):
    status, code, message = client_error(lambda: lam.invoke(FunctionName="recursive_loop"))
    assert (status, code) == (400, "RecursiveInvocationException") and "recursive loop" in message
    with pytest.raises(lam.exceptions.RecursiveInvocationException):
        lam.invoke(FunctionName="recursive_loop")
    assert emu.invocations("recursive_loop") == 2
    assert lam.invoke(FunctionName="recursive_loop", InvocationType="Event")["StatusCode"] == 202
    assert emu.wait_idle(5) and emu.invocations("recursive_loop") == 3


def test_invocation_types_answer_mode_not_supported(emu, lam):
    status, code, message = client_error(lambda: lam.invoke(FunctionName="async_only"))
    assert (status, code) == (400, "ModeNotSupportedException") and "RequestResponse" in message
    with pytest.raises(lam.exceptions.ModeNotSupportedException):
        lam.invoke(FunctionName="async_only", InvocationType="RequestResponse")
    assert emu.invocations("async_only") == 0
    assert lam.invoke(FunctionName="async_only", InvocationType="Event")["StatusCode"] == 202
    assert lam.invoke(FunctionName="async_only", InvocationType="DryRun")["StatusCode"] == 204
    assert emu.wait_idle(5) and emu.invocations("async_only") == 1


def test_invoke_error_in_the_json_and_from_a_handler(tmp_path):
    write(tmp_path, "cfg.py", "def handler(event, context):\n    return 1\n")
    write(tmp_path, "cfg.json", '{"invoke_error": {"type": "ModeNotSupportedException", "message": "no sync"}}')
    write(tmp_path, "quota.py", "def handler(event, context):\n    return 1\n")
    write(tmp_path, "quota.json", '{"invoke_error": "ServiceQuotaExceededException"}')
    write(tmp_path, "custom.py", "from lambda_emulator import InvokeError\n"
                                 "def handler(event, context):\n"
                                 "    print('about to refuse')\n"
                                 "    raise InvokeError('Teapot', 'short and stout', status=418)\n")
    write(tmp_path, "durable_loop.py", "from lambda_emulator import InvokeError\nn = 0\n"
                                       "def handler(event, context):\n    global n\n    n += 1\n"
                                       "    raise InvokeError('RecursiveInvocationException')\n")
    write(tmp_path, "durable_loop.json", '{"durable": true}')
    with Emulator(tmp_path) as emu:
        lam = client(emu)
        assert client_error(lambda: lam.invoke(FunctionName="cfg")) == (400, "ModeNotSupportedException", "no sync")
        assert client_error(lambda: lam.invoke(FunctionName="quota"))[:2] == (402, "ServiceQuotaExceededException")
        assert emu.invocations("cfg") == 0 == emu.invocations("quota")
        assert client_error(lambda: lam.invoke(FunctionName="custom")) == (418, "Teapot", "short and stout")
        assert emu.invocations("custom") == 1
        answers = [post(emu, "durable_loop", headers={"X-Amz-Durable-Execution-Name": "d"}) for _ in range(2)]
        assert [error_of(a)[:2] for a in answers] == [(400, "RecursiveInvocationException")] * 2
        assert answers[0].headers["x-amz-durable-execution-arn"] == answers[1].headers["x-amz-durable-execution-arn"]
        assert emu.invocations("durable_loop") == 1 and emu.durable_executions[0].status == "FAILED"
    assert isinstance(InvokeError("RecursiveInvocationException"), Exception)
    assert InvokeError("ModeNotSupportedException").status == 400


# -- all together, over a signed connection -----------------------------------------------------

def test_tenant_durable_and_published_together(tmp_path):
    write(tmp_path, "all.py", COUNTER)
    write(tmp_path, "all@1.py", COUNTER)
    write(tmp_path, "all@2.py", COUNTER)
    write(tmp_path, "all.json", '{"durable": true, "tenancy": {"tenant_isolation_mode": "PER_TENANT"}}')
    with Emulator(tmp_path, credentials={AKID: SECRET}) as emu:
        lam = client(emu)

        def call(tenant, name):
            result = lam.invoke(FunctionName="all", Qualifier="$LATEST.PUBLISHED", TenantId=tenant,
                                DurableExecutionName=name, Payload=b'{"x": 1}')
            return result["DurableExecutionArn"], json.loads(result["Payload"].read())

        arn, first = call("t1", "e1")
        assert first == {"n": 1, "tenant": "t1", "version": "2",
                         "arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:all:$LATEST.PUBLISHED"}
        assert ":function:all:2/durable-execution/e1/" in arn
        assert call("t1", "e1") == (arn, first)
        assert call("t2", "e2")[1]["n"] == 1 and call("t1", "e3")[1]["n"] == 2
        assert emu.executions("all") == 3 and emu.invocations("all") == 3 and len(emu.requests) == 4
        assert emu.tenant_invocations("all") == {"t1": 2, "t2": 1}
        assert [e.tenant_id for e in emu.durable_executions] == ["t1", "t2", "t1"]
        assert all(r.access_key == AKID for r in emu.requests)


def test_the_command_line_emulator_serves_the_new_examples(tmp_path):
    """python -m lambda_emulator, another process: the examples import InvokeError from it."""
    port_file = tmp_path / "port"
    process = subprocess.Popen(
        [sys.executable, "-m", "lambda_emulator", "--functions", FUNCTIONS, "--port", "0",
         "--port-file", str(port_file), "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        process.stdout.readline()
        port = int(port_file.read_text())

        class Remote:
            url = f"http://127.0.0.1:{port}"

        lam = client(Remote)
        with pytest.raises(lam.exceptions.RecursiveInvocationException):
            lam.invoke(FunctionName="recursive_loop")
        result = lam.invoke(FunctionName="durable_order", DurableExecutionName="cli", Payload=b'{"order_id": 1}')
        assert EXECUTION_ARN.fullmatch(result["DurableExecutionArn"])
        assert lam.invoke(FunctionName="durable_order", DurableExecutionName="cli",
                          Payload=b'{"order_id": 1}')["DurableExecutionArn"] == result["DurableExecutionArn"]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/_emulator/executions")
        assert json.loads(connection.getresponse().read())["executions"] == {"durable_order": 1}
        connection.close()
    finally:
        process.terminate()
        process.wait(timeout=5)
