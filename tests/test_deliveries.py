"""Invoking after commit: invoke_on_commit, the deliveries log, deliver(), retries, order."""

import contextlib
import json
import os
import re
import subprocess
import time

import psycopg
import pytest

from conftest import operator_sets, reload_configuration
from plpy_lambda import names


@pytest.fixture
def queue(db, emulator):
    """The superuser connection, with an empty deliveries log and the default policy."""
    db.execute("DELETE FROM aws_lambda.deliveries")
    emulator.clear_faults()
    yield db
    emulator.clear_faults()
    db.execute("ALTER SYSTEM RESET ALL")  # the operator_sets() below
    reload_configuration(db)


def deliver(conn, sql="CALL aws_lambda.deliver()"):
    conn.execute(sql)


@contextlib.contextmanager
def app_roles(queue, *roles):
    """Login roles that may use aws_lambda, for the block; then the log is emptied and the
    roles are dropped with what they own."""
    for role in roles:
        queue.execute(f"DROP ROLE IF EXISTS {role}")
        queue.execute(f"CREATE ROLE {role} LOGIN")
        queue.execute(f"GRANT USAGE ON SCHEMA aws_lambda TO {role}")
        queue.execute(f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA aws_lambda TO {role}")
    try:
        yield
    finally:
        drop_roles(queue, *roles)


def drop_roles(queue, *roles):
    """Empty the log, then drop the roles with what they own."""
    queue.execute("DELETE FROM aws_lambda.deliveries")
    for role in roles:
        queue.execute(f"DROP OWNED BY {role}")
        queue.execute(f"DROP ROLE {role}")


def row(db, delivery_id, columns="status, attempts, status_code"):
    return db.execute(f"SELECT {columns} FROM aws_lambda.deliveries WHERE id = %s",
                      [delivery_id]).fetchone()


def bodies(emulator, function):
    return [json.loads(r.body) for r in emulator.requests if r.function == function]


def test_nothing_is_sent_before_commit_and_a_rollback_leaves_no_trace(queue, cluster, emulator):
    with psycopg.connect(cluster.dsn()) as app:  # a transaction, as an application has
        app.execute("""SELECT aws_lambda.invoke_on_commit('echo', '{"kept": 1}'::jsonb)""")
        app.execute("SAVEPOINT s")
        app.execute("""SELECT aws_lambda.invoke_on_commit('echo', '{"kept": 0}'::jsonb)""")
        app.execute("ROLLBACK TO SAVEPOINT s")
        deliver(queue)  # another session: sees nothing uncommitted
        assert emulator.requests == []
        app.commit()
        app.execute("""SELECT aws_lambda.invoke_on_commit('echo', '{"kept": 0}'::jsonb)""")
        app.rollback()
    deliver(queue)
    emulator.wait_idle()
    assert bodies(emulator, "echo") == [{"kept": 1}]
    assert queue.execute("SELECT status, payload ->> 'kept' FROM aws_lambda.deliveries").fetchall() == [
        ("succeeded", "1")]


def test_invoke_on_commit_returns_the_id_of_its_row(queue):
    (delivery_id,) = queue.execute(
        """SELECT aws_lambda.invoke_on_commit('echo', '{"a": 1}'::json)""").fetchone()
    assert queue.execute("""
        SELECT function_name, invocation_type, log_type, status, attempts, payload -> 'a',
               queued_by, delivered_at
        FROM aws_lambda.deliveries WHERE id = %s""", [delivery_id]).fetchone() == (
        "echo", "Event", "None", "pending", 0, 1, "postgres", None)


def test_all_four_overloads_queue_what_invoke_would_send(queue, emulator):
    ids = [queue.execute(sql).fetchone()[0] for sql in [
        """SELECT aws_lambda.invoke_on_commit('echo', '{"o": 1}'::json, 'us-east-1')""",
        """SELECT aws_lambda.invoke_on_commit('echo', '{"o": 2}'::jsonb, qualifier => '$LATEST')""",
        """SELECT aws_lambda.invoke_on_commit(aws_commons.create_lambda_function_arn('echo', 'us-east-1'),
                                              '{"o": 3}'::json)""",
        """SELECT aws_lambda.invoke_on_commit(aws_commons.create_lambda_function_arn('echo'),
                                              '{"o": 4}'::jsonb, 'RequestResponse')""",
    ]]
    assert [row(queue, i, "region, qualifier, invocation_type") for i in ids] == [
        ("us-east-1", None, "Event"), (None, "$LATEST", "Event"), ("us-east-1", None, "Event"),
        (None, None, "RequestResponse")]
    deliver(queue)
    emulator.wait_idle()
    assert sorted(b["o"] for b in bodies(emulator, "echo")) == [1, 2, 3, 4]
    assert [row(queue, i) for i in ids] == [
        ("succeeded", 1, 202), ("succeeded", 1, 202), ("succeeded", 1, 202), ("succeeded", 1, 200)]


@pytest.mark.parametrize("call, sqlstate", [
    ("'bad name', '{}'::json", "22023"),
    ("NULL::text, '{}'::json", "22004"),
    ("'echo', NULL::json", "22004"),
    ("'echo', '{}'::json, invocation_type => 'event'", "22023"),
    ("'echo', '{}'::json, log_type => NULL", "22004"),
    ("'echo', '{}'::json, region => 'moon-1'", "22023"),
    ("'echo', '{}'::json, context => '[1]'::json", "22023"),
    ("'echo:1', '{}'::json, qualifier => '2'", "22023"),
    ("repeat('x', 65), '{}'::json", "22023"),
    ("'arn:aws:lambda:us-east-1:123456789012:function:echo', '{}'::json, 'us-west-2'", "22023"),
    ("'echo', json_build_object('k', repeat('x', 1048576))", "54000"),
    ("'echo', json_build_object('k', repeat('x', 6291456)), invocation_type => 'RequestResponse'", "54000"),
    # fits invoke's limit, but not with the delivery id that a queued RequestResponse carries
    ("'echo', '{}'::json, invocation_type => 'RequestResponse', "
     "context => json_build_object('k', repeat('v', 2660))", "54000"),
    ("aws_commons.create_lambda_function_arn('echo', 'moon-1'), '{}'::json", "22023"),
])
def test_bad_arguments_are_an_error_at_the_call_and_queue_nothing(queue, emulator, call, sqlstate):
    with pytest.raises(psycopg.Error) as caught:
        queue.execute(f"SELECT aws_lambda.invoke_on_commit({call})")
    assert caught.value.diag.sqlstate == sqlstate
    assert "Traceback" not in str(caught.value)
    assert queue.execute("SELECT count(*) FROM aws_lambda.deliveries").fetchone() == (0,)
    assert queue.execute("SELECT 1").fetchone() == (1,)
    assert emulator.requests == []


def test_the_quick_check_accepts_only_names_the_full_check_accepts(queue):
    """invoke_on_commit skips the Python check for names its SQL test passes; every such
    name is valid (the test is read from the installed function, run on the server)."""
    body = queue.execute("""SELECT prosrc FROM pg_proc WHERE oid = 'aws_lambda.invoke_on_commit(
        text, json, text, text, text, json, varchar, text, text, text)'::regprocedure""").fetchone()[0]
    quick = re.search(r"IF \((\$1 .*?) AND \$3 IS NULL", body, re.S).group(1).replace("$1", "%(name)s::text")
    samples = ["a", "A-b_9", "x" * 64, "x" * 65, "ä", "a.b", "a b", "-", "_", "1" * 12, "a:1",
               "٣", "ａ", "a\n", "", "é" * 32] + [chr(c) for c in range(1, 0x3000, 7)]
    accepted = [text for text in samples
                if queue.execute(f"SELECT {quick}", {"name": text}).fetchone()[0]]
    assert accepted == [text for text in samples if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", text, re.ASCII)]
    for text in accepted:
        assert names.parse_function_name(text).name == text


def test_deliveries_go_out_in_parallel(queue, emulator):
    queue.execute("""SELECT aws_lambda.invoke_on_commit('sleep', json_build_object('seconds', 0.3, 'i', g))
                     FROM generate_series(1, 20) g""")
    started = time.monotonic()
    deliver(queue, "CALL aws_lambda.deliver(max_concurrency => 20)")
    assert time.monotonic() - started < 2.0  # one at a time would take 6 s
    assert queue.execute("SELECT status, count(*) FROM aws_lambda.deliveries GROUP BY 1").fetchall() == [
        ("succeeded", 20)]


def test_request_response_keeps_the_answer_and_tells_the_function_its_delivery_id(queue):
    (delivery_id,) = queue.execute("""SELECT aws_lambda.invoke_on_commit('echo', '{"n": 7}'::json,
        invocation_type => 'RequestResponse', context => '{"custom": {"tenant": "t1"}}'::json)""").fetchone()
    deliver(queue)
    status, response, custom, delivered = queue.execute("""
        SELECT status, response -> 'event' ->> 'n', response -> 'client_context' -> 'custom',
               delivered_at IS NOT NULL
        FROM aws_lambda.deliveries WHERE id = %s""", [delivery_id]).fetchone()
    assert (status, response, delivered) == ("succeeded", "7", True)
    assert custom == {"tenant": "t1", "delivery_id": delivery_id}


def test_a_function_error_is_failed_and_not_retried(queue, emulator):
    (delivery_id,) = queue.execute("""SELECT aws_lambda.invoke_on_commit('fail', '{}'::json,
        invocation_type => 'RequestResponse')""").fetchone()
    deliver(queue)
    deliver(queue)
    status, attempts, error_type, last_error = row(
        queue, delivery_id, "status, attempts, response ->> 'errorType', last_error")
    assert (status, attempts, error_type) == ("failed", 1, "RuntimeError")
    assert last_error.startswith("LM010: lambda invocation failed\nDETAIL: ")
    assert f"not retried. SELECT aws_lambda.redeliver({delivery_id}) sends it again." in last_error
    assert emulator.invocations("fail") == 1


def test_an_error_that_cannot_succeed_later_is_dead_at_once(queue, emulator):
    (delivery_id,) = queue.execute(
        "SELECT aws_lambda.invoke_on_commit('no-such-function', '{}'::json)").fetchone()
    deliver(queue)
    status, attempts, code, last_error = row(queue, delivery_id, "status, attempts, status_code, last_error")
    assert (status, attempts, code) == ("dead", 1, 404)
    assert last_error.startswith("LM004: invoke API failed\nDETAIL: AWS Lambda client returned "
                                 "'ResourceNotFoundException")
    assert "Not retried: a later attempt cannot succeed." in last_error


def test_service_errors_are_retried_with_backoff_until_they_succeed(queue, emulator):
    emulator.set_fault("echo", "status", count=2, status=503)
    (delivery_id,) = queue.execute("SELECT aws_lambda.invoke_on_commit('echo', '{}'::json)").fetchone()
    deliver(queue)
    status, attempts, waits, last_error = row(
        queue, delivery_id, "status, attempts, next_attempt_at > now(), last_error")
    assert (status, attempts, waits) == ("pending", 1, True)
    assert last_error.startswith("LM005: invoke API failed\n")
    assert "Attempt 1 of at most 10 failed; the next is due in " in last_error
    deliver(queue)  # not due yet: nothing is sent
    assert len(emulator.requests) == 1
    deliver(queue, "CALL aws_lambda.deliver(run_for => interval '3 seconds')")
    assert row(queue, delivery_id) == ("succeeded", 3, 202)
    assert [r.status for r in emulator.requests] == [503, 503, 202]


def test_a_timeout_is_retried_and_says_the_function_may_run_twice(queue, emulator):
    queue.execute("SET aws_lambda.request_timeout_ms = 200")
    (delivery_id,) = queue.execute("""SELECT aws_lambda.invoke_on_commit('sleep', '{"seconds": 0.5}'::json,
        invocation_type => 'RequestResponse')""").fetchone()
    deliver(queue)
    status, last_error = row(queue, delivery_id, "status, last_error")
    assert status == "pending"
    assert last_error.startswith("LM002: invoke API failed\n")
    assert "the delivery is retried, so it may run more than once" in last_error
    queue.execute("RESET aws_lambda.request_timeout_ms")


def test_delivery_gives_up_after_the_operators_limit_of_attempts(queue, emulator):
    operator_sets(queue, delivery_max_attempts=2)
    emulator.set_fault("echo", "status", status=503)
    (delivery_id,) = queue.execute("SELECT aws_lambda.invoke_on_commit('echo', '{}'::json)").fetchone()
    deliver(queue, "CALL aws_lambda.deliver(run_for => interval '2 seconds')")
    status, attempts, last_error = row(queue, delivery_id, "status, attempts, last_error")
    assert (status, attempts) == ("dead", 2)
    assert "Gave up after 2 attempts (aws_lambda.delivery_max_attempts = 2)." in last_error
    assert len(emulator.requests) == 2


def test_delivery_gives_up_past_the_operators_maximum_age(queue, emulator):
    operator_sets(queue, delivery_max_age="1 second")
    emulator.set_fault("echo", "status", status=503)
    (delivery_id,) = queue.execute("SELECT aws_lambda.invoke_on_commit('echo', '{}'::json)").fetchone()
    queue.execute("UPDATE aws_lambda.deliveries SET created_at = now() - interval '1 minute'")
    deliver(queue)
    status, last_error = row(queue, delivery_id, "status, last_error")
    assert status == "dead"
    assert "past aws_lambda.delivery_max_age (1 s)" in last_error


def test_a_bad_retry_setting_is_a_configuration_error(queue, cluster):
    operator_sets(queue, delivery_max_age="forever")
    queue.execute("SELECT aws_lambda.invoke_on_commit('echo', '{}'::json)")
    with psycopg.connect(cluster.dsn(), autocommit=True) as fresh:
        with pytest.raises(psycopg.Error) as caught:
            deliver(fresh)
    assert caught.value.diag.sqlstate == "LM020"
    assert "aws_lambda.delivery_max_age" in caught.value.diag.message_primary


def test_redeliver_puts_a_failed_delivery_back_in_the_queue(queue, emulator):
    (delivery_id,) = queue.execute("""SELECT aws_lambda.invoke_on_commit('fail', '{}'::json,
        invocation_type => 'RequestResponse')""").fetchone()
    deliver(queue)
    assert row(queue, delivery_id)[0] == "failed"
    queue.execute("SELECT aws_lambda.redeliver(%s)", [delivery_id])
    assert row(queue, delivery_id, "status, attempts, redelivered_at IS NOT NULL") == ("pending", 0, True)
    deliver(queue)
    assert row(queue, delivery_id)[:2] == ("failed", 1)
    emulator.wait_idle()
    assert emulator.invocations("fail") == 2
    for target, sqlstate in [(delivery_id + 1000, "P0002")]:
        with pytest.raises(psycopg.Error) as caught:
            queue.execute("SELECT aws_lambda.redeliver(%s)", [target])
        assert caught.value.diag.sqlstate == sqlstate
    (pending_id,) = queue.execute("SELECT aws_lambda.invoke_on_commit('echo', '{}'::json)").fetchone()
    with pytest.raises(psycopg.Error) as caught:
        queue.execute("SELECT aws_lambda.redeliver(%s)", [pending_id])
    assert caught.value.diag.sqlstate == "55000"
    assert caught.value.diag.message_primary == f"delivery {pending_id} is pending"


def test_deliveries_with_one_ordering_key_go_out_one_at_a_time_in_order(queue, emulator):
    emulator.set_fault("sleep", "status", count=1, status=503)  # the first one is retried
    queue.execute("""SELECT aws_lambda.invoke_on_commit('sleep', json_build_object('seconds', 0.05, 'i', g),
                        ordering_key => 'order-42') FROM generate_series(1, 6) g""")
    queue.execute("""SELECT aws_lambda.invoke_on_commit('echo', json_build_object('i', 100 + g))
                     FROM generate_series(1, 4) g""")
    deliver(queue, "CALL aws_lambda.deliver(run_for => interval '3 seconds', max_concurrency => 16)")
    emulator.wait_idle()
    keyed = [b["i"] for b in bodies(emulator, "sleep")]
    assert keyed == [1, 1, 2, 3, 4, 5, 6]  # the first went out twice (503, then its retry)
    assert queue.execute("SELECT count(*) FROM aws_lambda.deliveries WHERE status = 'succeeded'"
                         ).fetchone() == (10,)


def test_the_row_trigger_queues_supabase_webhook_payloads(queue, emulator):
    queue.execute("DROP TABLE IF EXISTS orders")
    queue.execute("CREATE TABLE orders (id int PRIMARY KEY, state text)")
    queue.execute("""CREATE TRIGGER orders_to_lambda AFTER INSERT OR UPDATE OR DELETE ON orders
                     FOR EACH ROW EXECUTE FUNCTION aws_lambda.invoke_on_commit_trigger('echo')""")
    queue.execute("INSERT INTO orders VALUES (1, 'new')")
    queue.execute("UPDATE orders SET state = 'paid' WHERE id = 1")
    queue.execute("DELETE FROM orders WHERE id = 1")
    payloads = [p for (p,) in queue.execute("SELECT payload FROM aws_lambda.deliveries ORDER BY id")]
    assert payloads == [
        {"type": "INSERT", "table": "orders", "schema": "public",
         "record": {"id": 1, "state": "new"}, "old_record": None},
        {"type": "UPDATE", "table": "orders", "schema": "public",
         "record": {"id": 1, "state": "paid"}, "old_record": {"id": 1, "state": "new"}},
        {"type": "DELETE", "table": "orders", "schema": "public",
         "record": None, "old_record": {"id": 1, "state": "paid"}},
    ]
    deliver(queue)
    emulator.wait_idle()
    assert sorted(b["type"] for b in bodies(emulator, "echo")) == ["DELETE", "INSERT", "UPDATE"]
    queue.execute("DROP TABLE orders")


def test_the_ordered_trigger_keys_deliveries_by_table_and_primary_key(queue):
    queue.execute("DROP TABLE IF EXISTS accounts, logbook")
    queue.execute("CREATE TABLE accounts (region text, id int, balance int, PRIMARY KEY (region, id))")
    queue.execute("""CREATE TRIGGER accounts_to_lambda AFTER INSERT OR UPDATE ON accounts FOR EACH ROW
                     EXECUTE FUNCTION aws_lambda.invoke_on_commit_trigger('echo', 'Event', 'ordered')""")
    queue.execute("INSERT INTO accounts VALUES ('eu', 7, 0)")
    queue.execute("UPDATE accounts SET balance = 5")
    assert queue.execute("SELECT DISTINCT ordering_key FROM aws_lambda.deliveries").fetchall() == [
        ('public.accounts["eu", 7]',)]
    queue.execute("CREATE TABLE logbook (line text)")
    queue.execute("""CREATE TRIGGER logbook_to_lambda AFTER INSERT ON logbook FOR EACH ROW
                     EXECUTE FUNCTION aws_lambda.invoke_on_commit_trigger('echo', 'Event', 'ordered')""")
    with pytest.raises(psycopg.Error) as caught:
        queue.execute("INSERT INTO logbook VALUES ('x')")
    assert (caught.value.diag.sqlstate, caught.value.diag.message_primary) == (
        "22023", "table public.logbook has no primary key")
    queue.execute("DROP TABLE accounts, logbook")


def test_a_row_too_big_for_lambda_goes_as_its_key_and_never_fails_the_write(queue, emulator):
    queue.execute("DROP TABLE IF EXISTS documents")
    queue.execute("CREATE TABLE documents (tenant text, id int, title text, body text, PRIMARY KEY (tenant, id))")
    queue.execute("""CREATE TRIGGER documents_to_lambda AFTER INSERT OR UPDATE OR DELETE ON documents
                     FOR EACH ROW EXECUTE FUNCTION aws_lambda.invoke_on_commit_trigger('echo')""")
    queue.execute("INSERT INTO documents VALUES ('acme', 1, 'big', repeat('x', 3000000))")  # 3 MB: over 1 MB
    queue.execute("UPDATE documents SET title = 'still big'")
    queue.execute("INSERT INTO documents VALUES ('acme', 2, 'small', 'text')")
    payloads = [p for (p,) in queue.execute("SELECT payload FROM aws_lambda.deliveries ORDER BY id")]
    assert payloads == [
        {"type": "INSERT", "table": "documents", "schema": "public", "record": {"tenant": "acme", "id": 1},
         "old_record": None, "truncated": True, "columns_left_out": ["title", "body"]},
        {"type": "UPDATE", "table": "documents", "schema": "public", "record": {"tenant": "acme", "id": 1},
         "old_record": {"tenant": "acme", "id": 1}, "truncated": True, "columns_left_out": ["title", "body"]},
        {"type": "INSERT", "table": "documents", "schema": "public",
         "record": {"tenant": "acme", "id": 2, "title": "small", "body": "text"}, "old_record": None},
    ]
    deliver(queue)
    assert queue.execute("SELECT count(*) FROM aws_lambda.deliveries WHERE status = 'succeeded'").fetchone() == (3,)
    queue.execute("DROP TABLE documents")


def test_the_trigger_sends_only_the_columns_it_lists(queue, emulator):
    queue.execute("DROP TABLE IF EXISTS customers")
    queue.execute("CREATE TABLE customers (id int PRIMARY KEY, email text, password_hash text, plan text)")
    queue.execute("""CREATE TRIGGER customers_to_lambda AFTER INSERT OR UPDATE ON customers FOR EACH ROW
                     EXECUTE FUNCTION aws_lambda.invoke_on_commit_trigger('echo', 'Event', 'columns=id, plan',
                                                                         'ordered')""")
    queue.execute("INSERT INTO customers VALUES (7, 'a@example.com', 'secret-hash', 'free')")
    queue.execute("UPDATE customers SET plan = 'pro'")
    rows = queue.execute("SELECT payload, ordering_key FROM aws_lambda.deliveries ORDER BY id").fetchall()
    assert [payload["record"] for payload, _ in rows] == [{"id": 7, "plan": "free"}, {"id": 7, "plan": "pro"}]
    assert rows[1][0]["old_record"] == {"id": 7, "plan": "free"}
    assert {key for _, key in rows} == {"public.customers[7]"}
    deliver(queue)
    emulator.wait_idle()
    assert all("secret-hash" not in record.body.decode() for record in emulator.requests)
    assert len(bodies(emulator, "echo")) == 2
    queue.execute("DROP TABLE customers")


def test_a_truncated_event_keeps_to_the_listed_columns(queue):
    queue.execute("DROP TABLE IF EXISTS pages")
    queue.execute("CREATE TABLE pages (id int PRIMARY KEY, title text, body text, views int)")
    queue.execute("""CREATE TRIGGER pages_to_lambda AFTER INSERT ON pages FOR EACH ROW
                     EXECUTE FUNCTION aws_lambda.invoke_on_commit_trigger('echo', 'Event', 'columns=id,body')""")
    queue.execute("INSERT INTO pages VALUES (1, 'title', repeat('x', 2000000), 0)")
    (payload,) = queue.execute("SELECT payload FROM aws_lambda.deliveries").fetchone()
    assert payload["record"] == {"id": 1} and payload["columns_left_out"] == ["body"]
    queue.execute("DROP TABLE pages")


@pytest.mark.parametrize("trigger, message", [
    ("AFTER INSERT ON notes FOR EACH ROW EXECUTE FUNCTION "
     "aws_lambda.invoke_on_commit_trigger('echo', 'Event', 'columns=id,colour')",
     'invalid arguments for aws_lambda.invoke_on_commit_trigger(): table public.notes has no column "colour"'),
    ("AFTER INSERT ON notes FOR EACH ROW EXECUTE FUNCTION "
     "aws_lambda.invoke_on_commit_trigger('echo', 'Event', 'columns=id', 'columns=id')",
     "invalid arguments for aws_lambda.invoke_on_commit_trigger(): more than one columns= option"),
    ("BEFORE INSERT ON notes FOR EACH ROW EXECUTE FUNCTION aws_lambda.invoke_on_commit_trigger('echo')",
     "aws_lambda.invoke_on_commit_trigger() must be an AFTER ... FOR EACH ROW trigger"),
    ("AFTER INSERT ON notes FOR EACH STATEMENT EXECUTE FUNCTION aws_lambda.invoke_on_commit_trigger('echo')",
     "aws_lambda.invoke_on_commit_trigger() must be an AFTER ... FOR EACH ROW trigger"),
    ("AFTER INSERT ON notes FOR EACH ROW EXECUTE FUNCTION "
     "aws_lambda.invoke_on_commit_trigger('echo', 'Event', 'sorted')",
     "invalid arguments for aws_lambda.invoke_on_commit_trigger()"),
])
def test_a_wrongly_set_up_row_trigger_is_an_error_and_queues_nothing(queue, trigger, message):
    queue.execute("DROP TABLE IF EXISTS notes")
    queue.execute("CREATE TABLE notes (id int PRIMARY KEY)")
    queue.execute(f"CREATE TRIGGER notes_to_lambda {trigger}")
    with pytest.raises(psycopg.Error) as caught:
        queue.execute("INSERT INTO notes VALUES (1)")
    assert (caught.value.diag.sqlstate, caught.value.diag.message_primary) == ("22023", message)
    assert queue.execute("SELECT count(*) FROM aws_lambda.deliveries").fetchone() == (0,)
    queue.execute("DROP TABLE notes")


def test_events_after_commit_makes_rds_code_transactional(queue, emulator):
    queue.execute("SET aws_lambda.events_after_commit = on")
    queue.execute("BEGIN")
    assert queue.execute("""SELECT * FROM aws_lambda.invoke('echo', '{"rolled": "back"}'::json,
                            invocation_type => 'Event')""").fetchone() == (202, None, None, None)
    queue.execute("ROLLBACK")
    assert queue.execute("""SELECT * FROM aws_lambda.invoke(aws_commons.create_lambda_function_arn('echo'),
                            '{"kept": true}'::jsonb, 'Event')""").fetchone() == (202, None, None, None)
    assert emulator.requests == []
    assert queue.execute("SELECT status, payload FROM aws_lambda.deliveries").fetchall() == [
        ("pending", {"kept": True})]
    # a synchronous call is still made at once
    assert queue.execute("SELECT status_code FROM aws_lambda.invoke('echo', '{}'::json)").fetchone() == (200,)
    deliver(queue)
    emulator.wait_idle()
    assert {json.dumps(b) for b in bodies(emulator, "echo")} == {"{}", '{"kept": true}'}
    queue.execute("SET aws_lambda.events_after_commit = maybe")
    with pytest.raises(psycopg.Error) as caught:
        queue.execute("SELECT * FROM aws_lambda.invoke('echo', '{}'::json, invocation_type => 'Event')")
    assert caught.value.diag.sqlstate == "22023"
    queue.execute("RESET aws_lambda.events_after_commit")
    queue.execute("SELECT * FROM aws_lambda.invoke('echo', '{}'::json, invocation_type => 'Event')")
    assert queue.execute("SELECT count(*) FROM aws_lambda.deliveries").fetchone() == (1,)


def test_deliver_inside_a_transaction_block_is_a_clear_error(queue, cluster):
    with psycopg.connect(cluster.dsn()) as conn:
        with pytest.raises(psycopg.Error) as caught:
            conn.execute("CALL aws_lambda.deliver()")
    assert caught.value.diag.sqlstate == "2D000"


@pytest.mark.parametrize("arguments, sqlstate", [
    ("batch_size => 0", "22023"), ("batch_size => 1001", "22023"), ("batch_size => NULL", "22004"),
    ("max_concurrency => 0", "22023"), ("max_concurrency => 65", "22023"),
])
def test_deliver_refuses_bad_batch_settings_and_claims_nothing(queue, emulator, arguments, sqlstate):
    queue.execute("SELECT aws_lambda.invoke_on_commit('echo', '{}'::json)")
    with pytest.raises(psycopg.Error) as caught:
        deliver(queue, f"CALL aws_lambda.deliver({arguments})")
    assert caught.value.diag.sqlstate == sqlstate
    assert queue.execute("SELECT status, attempts FROM aws_lambda.deliveries").fetchall() == [("pending", 0)]
    assert emulator.requests == []


def test_deliver_with_run_for_picks_up_new_commits_within_a_second(queue, cluster, emulator):
    import threading

    def late_commit():
        time.sleep(0.7)
        with psycopg.connect(cluster.dsn(), autocommit=True) as app:
            app.execute("""SELECT aws_lambda.invoke_on_commit('echo', '{"late": 1}'::json)""")
        committed.append(time.monotonic())

    committed = []
    thread = threading.Thread(target=late_commit)
    thread.start()
    started = time.monotonic()
    deliver(queue, "CALL aws_lambda.deliver(run_for => interval '2 seconds')")
    thread.join()
    assert 1.9 < time.monotonic() - started < 3.0
    (delivered_at, created_at) = queue.execute(
        "SELECT delivered_at, created_at FROM aws_lambda.deliveries").fetchone()
    assert (delivered_at - created_at).total_seconds() < 1.0


def test_the_status_summary_is_one_select_away(queue):
    queue.execute("SELECT aws_lambda.invoke_on_commit('echo', '{}'::json) FROM generate_series(1, 3)")
    queue.execute("SELECT aws_lambda.invoke_on_commit('no-such-function', '{}'::json)")
    deliver(queue)
    queue.execute("SELECT aws_lambda.invoke_on_commit('echo', '{}'::json)")
    rows = queue.execute("SELECT status, deliveries, oldest_age IS NOT NULL FROM aws_lambda.delivery_status()"
                         ).fetchall()
    assert rows == [("pending", 1, True), ("succeeded", 3, True), ("failed", 0, False), ("dead", 1, True)]


def test_succeeded_deliveries_are_removed_after_the_retention_age(queue, cluster):
    operator_sets(queue, delivery_retention="1 hour")
    queue.execute("SELECT aws_lambda.invoke_on_commit('echo', '{}'::json) FROM generate_series(1, 2)")
    queue.execute("SELECT aws_lambda.invoke_on_commit('fail', '{}'::json, invocation_type => 'RequestResponse')")
    deliver(queue)
    two_hours_ago = ("SET created_at = now() - interval '2 hours 1 second', "
                     "delivered_at = now() - interval '2 hours'")
    queue.execute(f"UPDATE aws_lambda.deliveries {two_hours_ago} "
                  "WHERE id = (SELECT min(id) FROM aws_lambda.deliveries)")
    queue.execute(f"UPDATE aws_lambda.deliveries {two_hours_ago} WHERE status = 'failed'")
    with psycopg.connect(cluster.dsn(), autocommit=True) as fresh:  # prunes on its first batch
        deliver(fresh)
    assert queue.execute("SELECT status, count(*) FROM aws_lambda.deliveries GROUP BY 1 ORDER BY 1"
                         ).fetchall() == [("failed", 1), ("succeeded", 1)]


def test_each_role_reads_only_the_deliveries_it_queued_and_writes_none(queue, cluster):
    with app_roles(queue, "shop", "billing", "auditor"):
        queue.execute("GRANT pg_read_all_data TO auditor")
        seen = {}
        for role in ("shop", "billing", "auditor"):
            with psycopg.connect(cluster.dsn(user=role), autocommit=True) as conn:
                conn.execute(f"""SELECT aws_lambda.invoke_on_commit('echo', '{{"by": "{role}"}}'::json)""")
                seen[role] = sorted(r for (r,) in conn.execute(
                    "SELECT payload ->> 'by' FROM aws_lambda.deliveries WHERE payload ->> 'by' IS NOT NULL"))
                for sql in ["INSERT INTO aws_lambda.deliveries (function_name, invocation_type, log_type, "
                            "payload, queued_by) VALUES ('echo', 'Event', 'None', '{}', 'x')",
                            "UPDATE aws_lambda.deliveries SET status = 'succeeded'",
                            "DELETE FROM aws_lambda.deliveries"]:
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        conn.execute(sql)
        assert seen == {"shop": ["shop"], "billing": ["billing"],
                        "auditor": ["auditor", "billing", "shop"]}
        assert queue.execute("SELECT count(*) FROM aws_lambda.deliveries WHERE queued_by = 'postgres'"
                             ).fetchone() == (0,)
        with psycopg.connect(cluster.dsn(user="shop"), autocommit=True) as conn:
            (billing_id,) = queue.execute(
                "SELECT id FROM aws_lambda.deliveries WHERE queued_by = 'billing'").fetchone()
            queue.execute("UPDATE aws_lambda.deliveries SET status = 'dead' WHERE id = %s", [billing_id])
            with pytest.raises(psycopg.Error) as caught:
                conn.execute("SELECT aws_lambda.redeliver(%s)", [billing_id])
            assert caught.value.diag.sqlstate == "P0002"


def test_queued_by_is_the_role_the_session_acts_as(queue, cluster):
    queue.execute("DROP ROLE IF EXISTS gateway")
    queue.execute("DROP ROLE IF EXISTS shop")
    queue.execute("CREATE ROLE shop")
    queue.execute("CREATE ROLE gateway LOGIN IN ROLE shop")
    queue.execute("GRANT USAGE ON SCHEMA aws_lambda TO shop")
    queue.execute("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA aws_lambda TO shop")
    try:
        with psycopg.connect(cluster.dsn(user="gateway"), autocommit=True) as conn:
            conn.execute("SET ROLE shop")  # as a connection pool does
            conn.execute("SELECT aws_lambda.invoke_on_commit('echo', '{}'::json)")
            assert conn.execute("SELECT queued_by FROM aws_lambda.deliveries").fetchall() == [("shop",)]
    finally:
        drop_roles(queue, "gateway", "shop")


def test_pg_dump_keeps_the_deliveries_log_and_drop_extension_removes_it(queue, cluster):
    for dbname in ("dump_source", "dump_target"):
        queue.execute(f"DROP DATABASE IF EXISTS {dbname} (FORCE)")
        queue.execute(f"CREATE DATABASE {dbname}")
    with psycopg.connect(cluster.dsn(dbname="dump_source"), autocommit=True) as source:
        source.execute("CREATE EXTENSION aws_lambda CASCADE")
        source.execute("""SELECT aws_lambda.invoke_on_commit('echo', json_build_object('i', g))
                          FROM generate_series(1, 3) g""")
    bindir = cluster.bindir
    dump = os.path.join(cluster.root, "deliveries.dump")
    common = ["-h", cluster.socket_dir, "-p", str(cluster.port), "-U", "postgres"]
    subprocess.run([os.path.join(bindir, "pg_dump"), *common, "-Fc", "-f", dump, "dump_source"], check=True)
    subprocess.run([os.path.join(bindir, "pg_restore"), *common, "-d", "dump_target", dump], check=True,
                   capture_output=True)
    with psycopg.connect(cluster.dsn(dbname="dump_target"), autocommit=True) as target:
        assert target.execute("SELECT id, payload ->> 'i', status FROM aws_lambda.deliveries ORDER BY id"
                              ).fetchall() == [(1, "1", "pending"), (2, "2", "pending"), (3, "3", "pending")]
        assert target.execute("SELECT aws_lambda.invoke_on_commit('echo', '{}'::json)").fetchone() == (4,)
        target.execute("DROP EXTENSION aws_lambda")
        assert target.execute("SELECT to_regclass('aws_lambda.deliveries')").fetchone() == (None,)
    for dbname in ("dump_source", "dump_target"):
        queue.execute(f"DROP DATABASE {dbname} (FORCE)")


def test_statement_timeout_stops_a_delivery_batch_of_fast_calls(queue, emulator):
    queue.execute("""SELECT aws_lambda.invoke_on_commit('noop', json_build_object('i', g),
                     invocation_type => 'RequestResponse') FROM generate_series(1, 1000) g""")
    queue.execute("SET statement_timeout = '300ms'")
    started = time.monotonic()
    with pytest.raises(psycopg.errors.QueryCanceled) as caught:
        deliver(queue, "CALL aws_lambda.deliver(batch_size => 1000)")
    assert time.monotonic() - started < 0.6
    assert "Traceback" not in str(caught.value) and "spiexceptions" not in str(caught.value)
    queue.execute("RESET statement_timeout")
    assert len(emulator.requests) < 1000  # the rest of the batch was never sent
    assert queue.execute("SELECT status, attempts, count(*) FROM aws_lambda.deliveries GROUP BY 1, 2"
                         ).fetchall() == [("pending", 0, 1000)]  # sent again later: at least once
