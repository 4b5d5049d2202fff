"""Errors as RDS prints them, each with its own SQLSTATE, and a session that goes on."""

import psycopg
import pytest

from conftest import ACCOUNT, REGION, SECRET_KEY


def error_of(db, sql, *params):
    with pytest.raises(psycopg.Error) as caught:
        db.execute(sql, params)
    return caught.value.diag


def test_function_error_is_lambda_invocation_failed(db):
    diag = error_of(db, "SELECT * FROM aws_lambda.invoke('fail', '{}'::json)")
    assert diag.sqlstate == "LM010"
    assert diag.message_primary == "lambda invocation failed"
    assert diag.message_detail.startswith('"fail" returned error "Unhandled", details: "{')
    assert diag.context.endswith('SQL function "invoke" statement 1')
    assert db.execute("SELECT 1").fetchone() == (1,)


def test_each_failure_is_raised_once_by_the_call_that_failed(db):
    # invoke's PL/Python function returns NULL and keeps the failure; the CHECK of its
    # result type takes it and raises it. Nothing is left for a later call.
    assert error_of(db, "SELECT * FROM aws_lambda.invoke('fail', '{}'::json)").sqlstate == "LM010"
    assert error_of(db, "SELECT * FROM aws_lambda.invoke('no-such-function', '{}'::jsonb)").sqlstate == "LM004"
    assert db.execute("SELECT status_code FROM aws_lambda.invoke('simple', '{}'::jsonb)").fetchone() == (200,)
    assert db.execute("SELECT * FROM aws_lambda_internal._failure()").fetchone() == (
        "XX000", "aws_lambda: no failed invocation to report", None, None)


def test_function_error_names_the_arn_when_it_is_known(db):
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fail"
    diag = error_of(db, "SELECT * FROM aws_lambda.invoke(%s, '{}'::json)", arn)
    assert diag.message_detail.startswith(f'"{arn}" returned error "Unhandled"')


def test_unknown_function_is_invoke_api_failed(db):
    diag = error_of(db, "SELECT * FROM aws_lambda.invoke('no-such-function', '{}'::json)")
    assert diag.sqlstate == "LM004"
    assert diag.message_primary == "invoke API failed"
    assert diag.message_detail.startswith("AWS Lambda client returned 'ResourceNotFoundException")
    assert diag.message_detail.endswith("'.")


def test_oversized_payloads_are_refused_before_sending(db, emulator):
    big = '"' + "x" * (6 * 1024 * 1024) + '"'
    diag = error_of(db, "SELECT aws_lambda.invoke('echo', %s::json)", big)
    assert (diag.sqlstate, diag.message_primary) == ("54000", f"payload is too large: {len(big)} bytes")
    medium = '"' + "x" * (1024 * 1024) + '"'
    diag = error_of(db, "SELECT aws_lambda.invoke('echo', %s::json, invocation_type => 'Event')", medium)
    assert diag.sqlstate == "54000"
    assert emulator.requests == []


def test_oversized_context_is_refused(db, emulator):
    diag = error_of(db, "SELECT aws_lambda.invoke('echo', '{}'::json, context => json_build_object('k', repeat('v', 3000)))")
    assert diag.sqlstate == "54000"
    assert emulator.requests == []


@pytest.mark.parametrize("value", ["abc", "0", "900001", "-5", "1.5"])
def test_timeout_settings_are_checked(db, value):
    db.execute(f"SET aws_lambda.request_timeout_ms = '{value}'")
    diag = error_of(db, "SELECT aws_lambda.invoke('simple', '{}'::json)")
    assert diag.sqlstate == "22023"
    assert '"aws_lambda.request_timeout_ms"' in diag.message_primary
    db.execute("RESET aws_lambda.request_timeout_ms")
    assert db.execute("SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)").fetchone() == (200,)


def test_no_secret_in_errors_or_the_server_log(db, cluster):
    for sql in ("SELECT aws_lambda.invoke('fail', '{}'::json)",
                "SELECT aws_lambda.invoke('no-such-function', '{}'::json)",
                "SELECT aws_lambda.invoke('bad name', '{}'::json)"):
        diag = error_of(db, sql)
        text = " ".join(str(x) for x in (diag.message_primary, diag.message_detail, diag.message_hint, diag.context))
        assert SECRET_KEY not in text
    assert SECRET_KEY not in cluster.server_log()
