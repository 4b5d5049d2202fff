"""aws_lambda.invoke against a real cluster and the local endpoint: results and the wire."""

import base64
import json

import pytest
from psycopg.types.json import Json

from conftest import ACCOUNT, REGION

HELLO = '{"body": "Hello from Postgres!"}'


def one(db, sql, *params):
    return db.execute(sql, params).fetchone()


def test_synchronous_call_returns_the_functions_payload(db):
    status, payload, version, log = one(
        db, "SELECT * FROM aws_lambda.invoke('simple', %s::json)", HELLO)
    assert (status, version, log) == (200, "$LATEST", None)
    assert payload == {"statusCode": 200, "body": '"Hello from Lambda!"'}


def test_jsonb_in_gives_jsonb_out_and_json_gives_json(db):
    assert one(db, "SELECT pg_typeof(payload)::text FROM aws_lambda.invoke('simple', '{}'::jsonb)") == ("jsonb",)
    assert one(db, "SELECT pg_typeof(payload)::text FROM aws_lambda.invoke('simple', '{}'::json)") == ("json",)
    assert one(db, """SELECT pg_typeof(payload)::text FROM aws_lambda.invoke(
        aws_commons.create_lambda_function_arn('simple'), '{}'::jsonb)""") == ("jsonb",)


def test_the_event_reaches_the_handler_unchanged(db):
    event = {"a": [1, 2, {"b": None}], "s": "héllo"}
    (payload,) = one(db, "SELECT payload FROM aws_lambda.invoke('echo', %s)", Json(event))
    assert payload["event"] == event


def test_event_invocation_is_asynchronous(db, emulator):
    row = one(db, "SELECT status_code, payload, log_result FROM aws_lambda.invoke('echo', '{}'::json, invocation_type => 'Event', log_type => 'Tail')")
    assert row == (202, None, None)
    assert emulator.requests[-1].invocation_type == "Event"


def test_dry_run_checks_access_without_running(db, emulator):
    row = one(db, "SELECT status_code, payload FROM aws_lambda.invoke('echo', '{}'::json, invocation_type => 'DryRun')")
    assert row == (204, None)
    assert emulator.invocations("echo") == 0


def test_tail_returns_the_base64_log_of_this_call(db):
    (log,) = one(db, """SELECT convert_from(decode(log_result, 'base64'), 'utf-8')
                        FROM aws_lambda.invoke('simple', '{}'::json, log_type => 'Tail')""")
    assert "START RequestId:" in log and "END RequestId:" in log


def test_client_context_is_sent_base64_encoded(db, emulator):
    (payload,) = one(db, """SELECT payload FROM aws_lambda.invoke('echo', '{}'::jsonb,
                                context => '{"custom": {"tenant": "t1"}}'::jsonb)""")
    sent = emulator.requests[-1].headers["X-Amz-Client-Context"]
    assert json.loads(base64.b64decode(sent)) == {"custom": {"tenant": "t1"}}
    assert payload["client_context"]["custom"] == {"tenant": "t1"}


def test_qualifier_selects_an_alias(db, emulator):
    (version,) = one(db, "SELECT executed_version FROM aws_lambda.invoke('simple', '{}'::json, qualifier => 'custom_version')")
    assert version != "$LATEST"
    assert emulator.requests[-1].qualifier == "custom_version"


@pytest.mark.parametrize(
    "name, sent_name, qualifier",
    [
        ("simple", "simple", None),
        ("simple:custom_version", "simple", "custom_version"),
        (f"{ACCOUNT}:function:simple", f"{ACCOUNT}:function:simple", None),
        (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:simple",
         f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:simple", None),
        (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:simple:custom_version",
         f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:simple", "custom_version"),
    ],
)
def test_every_name_form_reaches_the_function(db, emulator, name, sent_name, qualifier):
    (status,) = one(db, "SELECT status_code FROM aws_lambda.invoke(%s, '{}'::json)", name)
    assert status == 200
    request = emulator.requests[-1]
    assert (request.qualifier or None) == qualifier
    assert sent_name in request.path_name


def signed_region(request):
    credential = request.headers["Authorization"].split("Credential=")[1].split(",")[0]
    return credential.split("/")[2]


def test_region_comes_from_the_arn_then_the_argument_then_the_server(db, emulator):
    one(db, f"SELECT 1 FROM aws_lambda.invoke('arn:aws:lambda:eu-west-1:{ACCOUNT}:function:simple', '{{}}'::json)")
    assert signed_region(emulator.requests[-1]) == "eu-west-1"
    one(db, "SELECT 1 FROM aws_lambda.invoke('simple', '{}'::json, 'ap-south-1')")
    assert signed_region(emulator.requests[-1]) == "ap-south-1"
    one(db, "SELECT 1 FROM aws_lambda.invoke(aws_commons.create_lambda_function_arn('simple', 'sa-east-1'), '{}'::json)")
    assert signed_region(emulator.requests[-1]) == "sa-east-1"
    one(db, "SELECT 1 FROM aws_lambda.invoke('simple', '{}'::json)")
    assert signed_region(emulator.requests[-1]) == REGION


def test_requests_are_sigv4_signed_with_the_servers_credentials(db, emulator):
    one(db, "SELECT 1 FROM aws_lambda.invoke('simple', '{}'::json)")
    request = emulator.requests[-1]
    assert request.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIATESTKEY")
    assert request.access_key == "AKIATESTKEY000000000"
