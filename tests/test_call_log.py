"""Slow and failed calls in the server log: aws_lambda.log_min_duration and
aws_lambda.log_failures, set by the operator in postgresql.conf as log_min_duration_statement
is. One LOG line per call, key=value, never a payload."""

import re

import psycopg
import pytest

import fixture
from plpy_lambda import settings
from plpy_lambda.errors import BadConfiguration

SECRET = "payload-secret-4711"


@pytest.fixture(scope="module")
def logged(emulator):
    """A server that logs calls of 200 ms or more, and every failed call."""
    pg = fixture.cluster(emulator.url, conf={"aws_lambda.log_min_duration": "'200ms'",
                                             "aws_lambda.log_failures": "on"})
    yield pg
    pg.stop()


def lines_of(cluster, kind):
    return [line.split("LOG:  ", 1)[1] for line in cluster.server_log().splitlines()
            if f"LOG:  aws_lambda: {kind} call: " in line]


def test_a_slow_call_is_logged_and_a_quick_one_is_not(logged, emulator):
    with psycopg.connect(logged.dsn(), autocommit=True) as conn:
        conn.execute("SELECT * FROM aws_lambda.invoke('echo', %s::json)", [f'{{"s": "{SECRET}"}}'])
        conn.execute("SELECT * FROM aws_lambda.invoke('sleep', %s::json)",
                     [f'{{"seconds": 0.3, "s": "{SECRET}"}}'])
    (line,) = lines_of(logged, "slow")
    match = re.fullmatch(r"aws_lambda: slow call: function=sleep invocation_type=RequestResponse "
                         r"status=200 duration_ms=(\d+\.\d) request_id=(\S+)", line)
    assert match, line
    assert 300 <= float(match[1]) < 3000
    assert match[2] == [r.request_id for r in emulator.requests if r.function == "sleep"][-1]
    assert SECRET not in logged.server_log()


def test_a_failed_call_is_logged_with_its_sqlstate_and_tenant(logged, emulator):
    with psycopg.connect(logged.dsn(), autocommit=True) as conn:
        conn.execute("SET aws_lambda.tenant_id = 'acme'")
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT * FROM aws_lambda.invoke('fail', %s::json)", [f'{{"s": "{SECRET}"}}'])
    line = lines_of(logged, "failed")[-1]
    assert re.fullmatch(r"aws_lambda: failed call: function=fail invocation_type=RequestResponse "
                        r"status=400 duration_ms=\d+\.\d request_id=\S+ tenant_id=acme sqlstate=LM004",
                        line), line  # fail is not tenant-isolated: the service refuses the tenant
    with psycopg.connect(logged.dsn(), autocommit=True) as conn:
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT * FROM aws_lambda.invoke('fail', '{}'::json)")
    assert re.fullmatch(r"aws_lambda: failed call: function=fail invocation_type=RequestResponse "
                        r"status=200 duration_ms=\d+\.\d request_id=\S+ sqlstate=LM010",
                        lines_of(logged, "failed")[-1])
    with psycopg.connect(logged.dsn(), autocommit=True) as conn:
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT * FROM aws_lambda.invoke('fail', '{}'::json, qualifier => '$LATEST')")
    assert lines_of(logged, "failed")[-1].startswith(
        "aws_lambda: failed call: function=fail qualifier=$LATEST invocation_type=RequestResponse ")
    assert SECRET not in logged.server_log()


def test_invoke_many_and_deliveries_log_each_call(logged, emulator):
    with psycopg.connect(logged.dsn(), autocommit=True) as conn:
        before = len(lines_of(logged, "failed")), len(lines_of(logged, "slow"))
        conn.execute("SELECT * FROM aws_lambda.invoke_many('fail', ARRAY['{}', '{}']::json[])")
        conn.execute("SELECT aws_lambda.invoke_on_commit('sleep', '{\"seconds\": 0.25}'::json, "
                     "invocation_type => 'RequestResponse')")
        conn.execute("CALL aws_lambda.deliver()")
    failed, slow = lines_of(logged, "failed")[before[0]:], lines_of(logged, "slow")[before[1]:]
    assert len(failed) == 2 and all("function=fail" in line for line in failed)
    assert len(slow) == 1 and "function=sleep" in slow[0]


def test_the_default_server_logs_no_call(cluster, db, emulator):
    db.execute("SELECT * FROM aws_lambda.invoke('sleep', '{\"seconds\": 0.25}'::json)")
    with pytest.raises(psycopg.Error):
        db.execute("SELECT * FROM aws_lambda.invoke('fail', '{}'::json)")
    assert "aws_lambda: slow call" not in cluster.server_log()
    assert "aws_lambda: failed call" not in cluster.server_log()


@pytest.mark.parametrize("setting, value", [("aws_lambda.log_min_duration", "'soon'"),
                                            ("aws_lambda.log_failures", "'perhaps'")])
def test_a_malformed_log_setting_is_lm020(emulator, setting, value):
    pg = fixture.cluster(emulator.url, conf={setting: value})
    try:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            with pytest.raises(psycopg.Error) as caught:
                conn.execute("SELECT * FROM aws_lambda.invoke('echo', '{}'::json)")
        assert caught.value.diag.sqlstate == "LM020"
        assert caught.value.diag.message_primary.startswith(f"{setting} in the server configuration is not")
    finally:
        pg.stop()


@pytest.mark.parametrize("setting, text", [
    ("aws_lambda.log_min_duration", "\u0663"),  # ARABIC-INDIC DIGIT THREE
    ("aws_lambda.log_min_duration", "2\u00a0s"),  # a no-break space
    ("aws_lambda.max_response_bytes", "\uff16MB"),  # FULLWIDTH DIGIT SIX
])
def test_numbers_in_settings_are_ascii_as_postgresql_reads_them(setting, text):
    with pytest.raises(BadConfiguration) as caught:
        settings.parse_operator_settings({setting: text})
    assert caught.value.message.startswith(f"{setting} in the server configuration is not")


def test_a_canceled_call_is_left_to_postgresqls_own_log(logged, emulator):
    with psycopg.connect(logged.dsn(), autocommit=True) as conn:
        before = len(lines_of(logged, "failed"))
        conn.execute("SET statement_timeout = '200ms'")
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT * FROM aws_lambda.invoke('sleep', '{\"seconds\": 1}'::json)")
    assert len(lines_of(logged, "failed")) == before
    assert "canceling statement due to statement timeout" in logged.server_log()
