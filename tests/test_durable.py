"""Durable functions: a durable execution name starts one execution, however often it is sent.

invoke sends the session's aws_lambda.durable_execution_name; invoke_on_commit stores its
durable_execution_name argument and sends it on every attempt, and the row trigger's 'durable'
option names each delivery; the execution's ARN is recorded (invoke_many: a column). The
local endpoint's durable_order and durable_sleep are durable functions: a call with a name it
has seen, and the same payload, gets the execution already started back, and the handler does
not run again; another payload is 409 DurableExecutionAlreadyStartedException.
"""

import json
import re
import time

import psycopg
import pytest

from conftest import request_id_line, wait_until
from test_relay import relays  # noqa: F401 (a fixture)

ARN = re.compile(r"arn:aws:lambda:us-east-1:123456789012:function:(\w+):\$LATEST"
                 r"/durable-execution/([\w-]+)/[\w-]+")


def test_invoke_with_a_durable_execution_name_starts_one_execution(db, emulator):
    db.execute("SET aws_lambda.durable_execution_name = 'order-7'")
    place = "SELECT payload->>'placed' FROM aws_lambda.invoke('durable_order', '{\"order_id\": 7}'::json)"
    first = db.execute(place).fetchone()
    assert db.execute(place).fetchone() == first  # the execution already started, its answer
    assert emulator.executions("durable_order") == 1 and len(emulator.requests) == 2
    assert [r.headers.get("X-Amz-Durable-Execution-Name") for r in emulator.requests] == ["order-7"] * 2


def test_another_payload_under_a_taken_name_is_lm004_naming_the_execution(db, emulator):
    db.execute("SET aws_lambda.durable_execution_name = 'order-8'")
    db.execute("SELECT * FROM aws_lambda.invoke('durable_order', '{\"order_id\": 8}'::json)")
    with pytest.raises(psycopg.Error) as caught:
        db.execute("SELECT * FROM aws_lambda.invoke('durable_order', '{\"order_id\": 9}'::json)")
    diag = caught.value.diag
    assert (diag.sqlstate, diag.message_primary) == ("LM004", "invoke API failed")
    assert diag.message_detail.startswith(
        "AWS Lambda client returned 'DurableExecutionAlreadyStartedException: ")
    assert diag.message_hint == (
        'The service answered HTTP 409. The durable execution "order-8" was started before with '
        "another payload or version, and a name starts one execution only: the function did not "
        "run again. Use another durable_execution_name for another execution.\n"
        + request_id_line(emulator))
    assert emulator.executions("durable_order") == 1


@pytest.mark.parametrize("value, problem", [
    ("order 7", '" " is not allowed; a durable execution name takes letters, digits, - and _'),
    ("n" * 65, "is 65 characters long; a durable execution name has 1 to 64"),
])
def test_a_bad_durable_execution_name_is_22023_and_sends_nothing(db, emulator, value, problem):
    db.execute("SELECT set_config('aws_lambda.durable_execution_name', %s, false)", [value])
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        db.execute("SELECT * FROM aws_lambda.invoke('durable_order', '{}'::json)")
    assert caught.value.diag.message_primary == (
        f'invalid value for setting "aws_lambda.durable_execution_name": {problem}')
    db.execute("RESET aws_lambda.durable_execution_name")
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        db.execute("SELECT aws_lambda.invoke_on_commit('durable_order', '{}'::json, "
                   "durable_execution_name => %s)", [value])
    assert caught.value.diag.message_primary == f"invalid value for argument durable_execution_name: {problem}"
    assert emulator.requests == []


def test_invoke_many_rows_carry_the_execution_arn(db, emulator):
    rows = db.execute("SELECT ordinality, status_code, durable_execution_arn FROM aws_lambda.invoke_many("
                      "'durable_order', ARRAY['{\"order_id\": 1}', '{\"order_id\": 2}']::jsonb[])").fetchall()
    assert [(n, status) for n, status, _ in rows] == [(1, 200), (2, 200)]
    assert all(ARN.fullmatch(arn).group(1) == "durable_order" for _, _, arn in rows)
    assert len({arn for _, _, arn in rows}) == 2  # no name given: one execution each
    assert db.execute("SELECT durable_execution_arn FROM aws_lambda.invoke_many('echo', "
                      "ARRAY['{}']::json[])").fetchall() == [(None,)]  # not a durable function


def test_a_delivery_sends_its_name_on_every_attempt_and_records_the_arn(queue, emulator):
    emulator.set_fault("durable_order", "status", count=1, status=500)  # the first attempt fails
    queue.execute("SELECT aws_lambda.invoke_on_commit('durable_order', '{\"order_id\": 11}'::json, "
                  "invocation_type => 'RequestResponse', durable_execution_name => 'order-11')")
    queue.execute("CALL aws_lambda.deliver(run_for => interval '3 seconds')")
    status, attempts, name, arn = queue.execute(
        "SELECT status, attempts, durable_execution_name, durable_execution_arn "
        "FROM aws_lambda.deliveries").fetchone()
    assert (status, attempts, name) == ("succeeded", 2, "order-11")
    assert ARN.fullmatch(arn).group(2) == "order-11"
    assert [r.headers.get("X-Amz-Durable-Execution-Name") for r in emulator.requests] == ["order-11"] * 2
    assert emulator.executions("durable_order") == 1


def test_a_taken_name_in_the_delivery_log_is_failed_not_retried(queue, emulator):
    queue.execute("SET aws_lambda.durable_execution_name = 'order-12'")
    queue.execute("SELECT * FROM aws_lambda.invoke('durable_order', '{\"order_id\": 12}'::json)")
    queue.execute("RESET aws_lambda.durable_execution_name")
    queue.execute("SELECT aws_lambda.invoke_on_commit('durable_order', '{\"order_id\": 13}'::json, "
                  "durable_execution_name => 'order-12')")
    queue.execute("CALL aws_lambda.deliver()")
    status, attempts, last_error = queue.execute(
        "SELECT status, attempts, last_error FROM aws_lambda.deliveries").fetchone()
    assert (status, attempts) == ("failed", 1)
    assert "DurableExecutionAlreadyStartedException" in last_error and "not retried" in last_error
    # redeliver() sends the same name again: still no second execution
    queue.execute("SELECT aws_lambda.redeliver(id) FROM aws_lambda.deliveries")
    queue.execute("CALL aws_lambda.deliver()")
    assert queue.execute("SELECT status, attempts FROM aws_lambda.deliveries").fetchone() == ("failed", 1)
    assert [r.headers.get("X-Amz-Durable-Execution-Name") for r in emulator.requests] == ["order-12"] * 3
    assert emulator.executions("durable_order") == 1


def test_the_triggers_durable_option_names_each_delivery_uniquely(queue, emulator):
    queue.execute("DROP TABLE IF EXISTS orders")
    queue.execute("CREATE TABLE orders (id int PRIMARY KEY, state text)")
    queue.execute("CREATE TRIGGER orders_to_lambda AFTER INSERT OR UPDATE ON orders FOR EACH ROW "
                  "EXECUTE FUNCTION aws_lambda.invoke_on_commit_trigger('durable_order', 'Event', "
                  "'ordered', 'durable')")
    queue.execute("INSERT INTO orders VALUES (1, 'new'), (2, 'new')")
    queue.execute("UPDATE orders SET state = 'paid' WHERE id = 1")
    queue.execute("DROP TABLE orders")
    origin, database = queue.execute(
        "SELECT aws_lambda_internal._system_identifier(), "
        "(SELECT oid FROM pg_database WHERE datname = current_database())").fetchone()
    rows = queue.execute("SELECT id, durable_execution_name, ordering_key FROM aws_lambda.deliveries "
                         "ORDER BY id").fetchall()
    assert [name for _, name, _ in rows] == [f"pg-{origin}-{database}-{i}" for i, _, _ in rows]
    assert [key for _, _, key in rows] == ["public.orders[1]", "public.orders[2]", "public.orders[1]"]
    queue.execute("CALL aws_lambda.deliver()")
    assert emulator.executions("durable_order") == 3


@pytest.mark.parametrize("options", ["'bad'", "'durable', 'durable'", "'ordered', 'durable', 'x'"])
def test_the_triggers_options_are_checked(queue, options):
    queue.execute("DROP TABLE IF EXISTS orders")
    queue.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    queue.execute("CREATE TRIGGER t AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION "
                  f"aws_lambda.invoke_on_commit_trigger('durable_order', 'Event', {options})")
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        queue.execute("INSERT INTO orders VALUES (1)")
    assert caught.value.diag.message_hint == (
        "Arguments: function_name [, invocation_type [, 'ordered', 'durable', 'columns=a,b']].")
    queue.execute("DROP TABLE orders")


def test_exactly_once_starts_while_the_relay_is_killed_mid_batch_again_and_again(
        queue, emulator, relays, cluster):
    """Deliveries named by the trigger's 'durable' option, to a durable function that takes
    1 s. Three times a relay is killed with a batch in flight: what was in flight is sent
    again (by the next relay), and every resend gets the execution already started back."""
    total, per_round = 60, 20
    queue.execute("DROP TABLE IF EXISTS jobs")
    queue.execute("CREATE TABLE jobs (id int PRIMARY KEY, seconds float8)")
    queue.execute("CREATE TRIGGER jobs_to_lambda AFTER INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION "
                  "aws_lambda.invoke_on_commit_trigger('durable_sleep', 'RequestResponse', 'durable')")
    for first in range(1, total + 1, per_round):
        relay = relays(cluster.dsn(), "--max-concurrency", "5", "--batch-size", "10")
        sent_before = len(emulator.requests)
        queue.execute("INSERT INTO jobs SELECT i, 1.0 FROM generate_series(%s::int, %s::int) AS i",
                      [first, first + per_round - 1])
        wait_until(lambda: len(emulator.requests) >= sent_before + 3, 10, "a batch is in flight")
        relay.process.kill()
        relay.process.wait(10)
        wait_until(lambda: queue.execute(  # the killed relay's backend notices and lets its claim go
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'aws_lambda relay'"
        ).fetchone()[0] == 0, 10, "the killed relay's backend is gone")
    queue.execute("DROP TABLE jobs")
    relays(cluster.dsn(), "--max-concurrency", "10")
    wait_until(lambda: queue.execute("SELECT count(*) FROM aws_lambda.deliveries "
                                     "WHERE status = 'succeeded'").fetchone()[0] == total,
               60, "every delivery succeeded")
    requests = [r for r in emulator.requests if r.function == "durable_sleep"]
    sent_per_delivery = {}
    for r in requests:
        name = r.headers.get("X-Amz-Durable-Execution-Name")
        sent_per_delivery[name] = sent_per_delivery.get(name, 0) + 1
    print(f"\n{total} deliveries, {len(requests)} requests, "
          f"{emulator.executions('durable_sleep')} executions started")
    assert len(sent_per_delivery) == total
    assert len(requests) > total  # the kills made the relays send some again
    assert emulator.executions("durable_sleep") == total  # each started once
    assert queue.execute("SELECT count(DISTINCT durable_execution_arn) FROM aws_lambda.deliveries"
                         ).fetchone() == (total,)
    assert json.loads(requests[0].body)["record"]["seconds"] == 1.0
