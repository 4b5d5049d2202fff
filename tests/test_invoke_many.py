"""aws_lambda.invoke_many: one row per payload, in order, each with its own result or error."""

import time

import psycopg
import pytest


def test_rows_come_back_in_input_order_with_per_item_errors(db, emulator):
    rows = db.execute("""
        SELECT ordinality, status_code, payload -> 'event' ->> 'i', error_sqlstate
        FROM aws_lambda.invoke_many('echo', ARRAY['{"i": 1}', '{"i": 2}', NULL, '{"i": 4}']::jsonb[],
                                    max_concurrency => 2)""").fetchall()
    assert rows == [(1, 200, "1", None), (2, 200, "2", None), (3, None, None, "22004"), (4, 200, "4", None)]
    assert emulator.invocations("echo") == 3


def test_a_failing_item_does_not_hide_the_others(db):
    rows = db.execute("""
        SELECT ordinality, status_code, error_sqlstate, error_message
        FROM aws_lambda.invoke_many('fail', ARRAY['{}', '{}']::json[])""").fetchall()
    assert [r[:3] for r in rows] == [(1, None, "LM010"), (2, None, "LM010")]
    assert rows[0][3] == "lambda invocation failed"


def test_json_in_gives_json_out(db):
    (kind,) = db.execute("""SELECT DISTINCT pg_typeof(payload)::text FROM aws_lambda.invoke_many(
        'echo', ARRAY['{}']::json[])""").fetchone()
    assert kind == "json"


def test_bad_shared_arguments_fail_the_whole_call_and_send_nothing(db, emulator):
    for sql, sqlstate in [
        ("SELECT * FROM aws_lambda.invoke_many('bad name', ARRAY['{}']::jsonb[])", "22023"),
        ("SELECT * FROM aws_lambda.invoke_many('echo', NULL::jsonb[])", "22004"),
        ("SELECT * FROM aws_lambda.invoke_many('echo', ARRAY['{}']::jsonb[], max_concurrency => 0)", "22023"),
        ("SELECT * FROM aws_lambda.invoke_many('echo', ARRAY['{}']::jsonb[], max_concurrency => 65)", "22023"),
        ("SELECT * FROM aws_lambda.invoke_many('echo', ARRAY['{}']::jsonb[], max_concurrency => NULL)", "22004"),
        ("SELECT * FROM aws_lambda.invoke_many('echo', ARRAY['{}']::jsonb[], invocation_type => 'event')", "22023"),
    ]:
        with pytest.raises(psycopg.Error) as caught:
            db.execute(sql)
        assert caught.value.diag.sqlstate == sqlstate
    assert emulator.requests == []


def test_items_run_concurrently(db, emulator):
    started = time.monotonic()
    (count,) = db.execute("""
        SELECT count(*) FROM aws_lambda.invoke_many(
            'sleep', (SELECT array_agg(json_build_object('seconds', 0.3, 'i', g)) FROM generate_series(1, 20) g),
            max_concurrency => 20) WHERE status_code = 200""").fetchone()
    assert count == 20
    assert time.monotonic() - started < 2.0  # sequential would be 6 s


def test_statement_timeout_stops_the_whole_batch(db, emulator):
    db.execute("SET aws_lambda.request_timeout_ms = 60000")
    db.execute("SET statement_timeout = '300ms'")
    started = time.monotonic()
    with pytest.raises(psycopg.errors.QueryCanceled):
        db.execute("""SELECT count(*) FROM aws_lambda.invoke_many('sleep',
            (SELECT array_agg(json_build_object('seconds', 10, 'i', g)) FROM generate_series(1, 50) g),
            max_concurrency => 5)""")
    assert time.monotonic() - started < 1.0
    db.execute("RESET statement_timeout")
    assert len(emulator.requests) == 5  # queued items were never sent
    assert db.execute("SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)").fetchone() == (200,)
