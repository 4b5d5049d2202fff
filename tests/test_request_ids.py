"""Lambda's request id (x-amzn-RequestId), the first thing AWS support asks for, reaches the
user: the last line of the HINT of every error an answer of the service gave, a column of
invoke_many's rows, and aws_lambda.deliveries.request_id. invoke's result row stays RDS's."""

import psycopg
import pytest

from conftest import request_id_line


@pytest.mark.parametrize("statement", [
    "SELECT * FROM aws_lambda.invoke('no-such-function', '{}'::json)",  # the service refused: LM004
    "SELECT * FROM aws_lambda.invoke('fail', '{}'::json)",  # the function raised: LM010
])
def test_an_error_from_an_answer_ends_its_hint_with_the_request_id(db, emulator, statement):
    with pytest.raises(psycopg.Error) as caught:
        db.execute(statement)
    assert caught.value.diag.message_hint.split("\n")[-1] == request_id_line(emulator)


def test_an_error_without_an_answer_has_no_request_id(db, emulator):
    db.execute("SET aws_lambda.request_timeout_ms = 200")
    with pytest.raises(psycopg.Error) as caught:
        db.execute("SELECT * FROM aws_lambda.invoke('sleep', '{\"seconds\": 1}'::json)")
    assert caught.value.diag.sqlstate == "LM002"
    assert "Lambda request id" not in (caught.value.diag.message_hint or "")


def test_invoke_many_rows_carry_the_request_id(db, emulator):
    rows = db.execute("SELECT ordinality, error_sqlstate, request_id FROM aws_lambda.invoke_many("
                      "'echo', ARRAY['{}', '{}']::json[])").fetchall()
    rows += db.execute("SELECT ordinality, error_sqlstate, request_id FROM aws_lambda.invoke_many("
                       "'fail', ARRAY['{}']::json[])").fetchall()
    assert [(n, state) for n, state, _ in rows] == [(1, None), (2, None), (1, "LM010")]
    assert sorted(request_id for _, _, request_id in rows) == sorted(r.request_id for r in emulator.requests)


def test_a_delivery_records_the_request_id_of_its_last_answer(queue, emulator):
    queue.execute("SELECT aws_lambda.invoke_on_commit('echo', '{}'::json)")
    queue.execute("SELECT aws_lambda.invoke_on_commit('no-such-function', '{}'::json)")
    queue.execute("CALL aws_lambda.deliver()")
    recorded = dict(queue.execute("SELECT status, request_id FROM aws_lambda.deliveries").fetchall())
    by_function = {r.function: r.request_id for r in emulator.requests}
    assert recorded == {"succeeded": by_function["echo"], "dead": by_function["no-such-function"]}
    (last_error,) = queue.execute("SELECT last_error FROM aws_lambda.deliveries WHERE status = 'dead'"
                                  ).fetchone()
    assert last_error.endswith(f"\nLambda request id: {by_function['no-such-function']}")
