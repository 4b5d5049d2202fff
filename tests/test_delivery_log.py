"""The delivery log as it grows: delivery_status() counts settled deliveries without reading
them, retention prunes in bounded chunks outside any claim, and deliver() reports each
batch to the relay when aws_lambda.report_deliveries asks it to."""

import json
import time

import psycopg
import pytest

from conftest import Running, operator_sets, wait_until
from test_deliveries import app_roles, deliver, queue  # noqa: F401  (the fixture)

CHUNK = 5000  # plpy_lambda.delivery.PRUNE_CHUNK
PRUNE = "SELECT (aws_lambda_internal._prune_deliveries(pg_conf_load_time(), 0)).pruned"
STATUS = "SELECT status, deliveries FROM aws_lambda.delivery_status()"
TRUE_COUNTS = """
SELECT s, count(d.id) FROM unnest(ARRAY['pending', 'succeeded', 'failed', 'dead']) WITH ORDINALITY AS u(s, n)
LEFT JOIN aws_lambda.deliveries AS d ON d.status = u.s GROUP BY s, n ORDER BY n
"""


def status(conn):
    return dict(conn.execute(STATUS).fetchall())


def assert_status_is_the_truth(conn):
    """delivery_status() (kept counts) equals counting the table itself."""
    assert list(status(conn).items()) == conn.execute(TRUE_COUNTS).fetchall()


def expired_succeeded(conn, n):
    """n succeeded deliveries that retention (1 hour) let expire, settled as deliver() settles them."""
    conn.execute("""INSERT INTO aws_lambda.deliveries (function_name, invocation_type, log_type, payload, queued_by,
                                                       created_at)
                    SELECT 'echo', 'Event', 'None', '{}', current_user, now() - interval '3 hours'
                    FROM generate_series(1, %s)""", [n])
    conn.execute("""UPDATE aws_lambda.deliveries SET status = 'succeeded', delivered_at = now() - interval '2 hours'
                    WHERE status = 'pending'""")


def collected_reports(conn):
    """The DETAILs, as JSON, of deliver()'s reports to conn: a list that grows as they come.
    (A psycopg Diagnostic is valid only during its handler: the detail is read there.)"""
    reports = []
    conn.add_notice_handler(lambda d: reports.append(json.loads(d.message_detail))
                            if d.message_primary == "aws_lambda: delivery report" else None)
    return reports


def test_delivery_status_keeps_count_through_every_change_of_status(queue):
    queue.execute("SELECT aws_lambda.invoke_on_commit('echo', '{}'::json) FROM generate_series(1, 3)")
    queue.execute("SELECT aws_lambda.invoke_on_commit('fail', '{}'::json, invocation_type => 'RequestResponse')")
    (dead_id,) = queue.execute("SELECT aws_lambda.invoke_on_commit('no-such-function', '{}'::json)").fetchone()
    assert status(queue) == {"pending": 5, "succeeded": 0, "failed": 0, "dead": 0}
    deliver(queue)
    assert status(queue) == {"pending": 0, "succeeded": 3, "failed": 1, "dead": 1}
    queue.execute("SELECT aws_lambda.redeliver(%s)", [dead_id])
    assert status(queue) == {"pending": 1, "succeeded": 3, "failed": 1, "dead": 0}
    deliver(queue)
    assert_status_is_the_truth(queue)
    queue.execute("DELETE FROM aws_lambda.deliveries WHERE id = (SELECT min(id) FROM aws_lambda.deliveries)")
    assert status(queue)["succeeded"] == 2
    assert_status_is_the_truth(queue)
    queue.execute("TRUNCATE aws_lambda.deliveries")
    assert status(queue) == {"pending": 0, "succeeded": 0, "failed": 0, "dead": 0}


def test_delivery_status_shows_a_role_its_own_and_pg_read_all_data_everything(queue, cluster):
    with app_roles(queue, "shop", "auditor"):
        queue.execute("GRANT pg_read_all_data, shop TO auditor")
        with psycopg.connect(cluster.dsn(user="shop"), autocommit=True) as shop:
            shop.execute("SELECT aws_lambda.invoke_on_commit('echo', '{}'::json) FROM generate_series(1, 2)")
            shop.execute("SELECT aws_lambda.invoke_on_commit('no-such-function', '{}'::json)")
        queue.execute("SELECT aws_lambda.invoke_on_commit('echo', '{}'::json)")  # the superuser's own
        deliver(queue)
        queue.execute("SELECT aws_lambda.invoke_on_commit('echo', '{}'::json)")  # pending
        with psycopg.connect(cluster.dsn(user="shop"), autocommit=True) as shop:
            assert status(shop) == {"pending": 0, "succeeded": 2, "failed": 0, "dead": 1}
        with psycopg.connect(cluster.dsn(user="auditor"), autocommit=True) as auditor:
            assert status(auditor) == {"pending": 1, "succeeded": 3, "failed": 0, "dead": 1}
            auditor.execute("SET ROLE shop")  # a role acts as the role it SETs
            assert status(auditor)["succeeded"] == 2


def test_retention_prunes_in_chunks_and_deliver_goes_on_until_none_is_left(queue, cluster):
    operator_sets(queue, delivery_retention="1 hour")
    expired_succeeded(queue, 2 * CHUNK + 100)
    queue.execute("SELECT aws_lambda.invoke_on_commit('echo', '{}'::json)")  # recent: kept
    with queue.transaction(force_rollback=True):
        assert [queue.execute(PRUNE).fetchone()[0] for _ in range(4)] == [CHUNK, CHUNK, 100, 0]
    with psycopg.connect(cluster.dsn(), autocommit=True) as relay:  # one that has not pruned yet
        deliver(relay)  # one chunk per transaction, between batches, until none is left
    assert status(queue) == {"pending": 0, "succeeded": 1, "failed": 0, "dead": 0}
    assert_status_is_the_truth(queue)


def test_deliver_for_a_while_prunes_chunk_after_chunk_without_pausing(queue, cluster):
    """As pg_cron's recipe runs it (run_for): a chunk that removed rows is followed at once
    by the next; only a round that found nothing to send or remove waits 0.2 s (pg_sleep,
    which pg_stat_activity shows as the wait event PgSleep)."""
    operator_sets(queue, delivery_retention="1 hour")
    expired_succeeded(queue, 10 * CHUNK)
    with psycopg.connect(cluster.dsn(), autocommit=True) as relay:
        relay_pid = relay.info.backend_pid
        relay_runs = Running(relay, "CALL aws_lambda.deliver(run_for => interval '5 minutes')")
        seen = []  # (the relay's wait event, expired rows it has not removed yet)

        def waits_with_nothing_left():
            seen.append(queue.execute(
                """SELECT (SELECT wait_event FROM pg_stat_activity WHERE pid = %s),
                          (SELECT deliveries FROM aws_lambda.delivery_status() WHERE status = 'succeeded')""",
                [relay_pid]).fetchone())
            return seen[-1] == ("PgSleep", 0)

        wait_until(waits_with_nothing_left, 120, "the relay has pruned every chunk and waits")
        queue.execute("SELECT pg_cancel_backend(%s)", [relay_pid])
        assert isinstance(relay_runs.wait(), psycopg.errors.QueryCanceled)
    assert any(0 < left < 10 * CHUNK for _, left in seen)  # looked at it while it pruned
    assert not [left for event, left in seen if event == "PgSleep" and left > 0]  # never paused
    assert status(queue) == {"pending": 0, "succeeded": 0, "failed": 0, "dead": 0}
    assert_status_is_the_truth(queue)


def test_pruning_never_holds_up_a_claim_and_one_pruner_is_enough(queue, cluster, emulator):
    operator_sets(queue, delivery_retention="1 hour")
    expired_succeeded(queue, 100)
    with psycopg.connect(cluster.dsn()) as pruner:  # a chunk removed, not yet committed
        assert pruner.execute(PRUNE).fetchone() == (100,)
        with psycopg.connect(cluster.dsn(), autocommit=True, options="-c lock_timeout=2s") as relay:
            relay.execute("SELECT aws_lambda.invoke_on_commit('echo', '{\"late\": true}'::json)")
            start = time.monotonic()
            relay.execute("CALL aws_lambda.deliver()")  # claims, sends, records and prunes
            assert time.monotonic() - start < 1.5
            assert relay.execute(PRUNE).fetchone() == (0,)  # the other pruner is at it: left to it
        assert emulator.invocations("echo") == 1
        pruner.rollback()
    assert status(queue)["succeeded"] == 101


def test_deliver_reports_each_batch_to_a_session_that_asks(queue, emulator):
    emulator.set_fault("echo", "status", count=1, status=503)  # one attempt is retried
    queue.execute("SELECT aws_lambda.invoke_on_commit('echo', '{}'::json) FROM generate_series(1, 3)")
    queue.execute("SELECT aws_lambda.invoke_on_commit('fail', '{}'::json, invocation_type => 'RequestResponse')")
    queue.execute("SELECT aws_lambda.invoke_on_commit('no-such-function', '{}'::json)")
    reports = collected_reports(queue)
    deliver(queue)
    assert reports == []  # only a session that asks
    queue.execute("SET aws_lambda.report_deliveries = on")
    queue.execute("UPDATE aws_lambda.deliveries SET next_attempt_at = NULL WHERE status = 'pending'")
    deliver(queue)
    (report,) = [report for report in reports if report["deliveries"]]
    ((function, outcome, seconds, lag),) = report["deliveries"]  # the retried one
    assert (function, outcome) == ("echo", "succeeded") and 0 < seconds < 5 and seconds < lag < 60
    assert report["pending"] == 0 and report["oldest_pending_seconds"] == 0


def test_a_report_lists_every_outcome_with_its_call_and_its_lag(queue, emulator):
    emulator.set_fault("echo", "status", count=1, status=503)
    queue.execute("SET aws_lambda.report_deliveries = on")
    queue.execute("SELECT aws_lambda.invoke_on_commit('echo', '{}'::json)")
    queue.execute("SELECT aws_lambda.invoke_on_commit('fail', '{}'::json, invocation_type => 'RequestResponse')")
    queue.execute("SELECT aws_lambda.invoke_on_commit('no-such-function', '{}'::json)")
    reports = collected_reports(queue)
    deliver(queue, "CALL aws_lambda.deliver(batch_size => 10)")
    first = reports[0]
    outcomes = {(function, outcome): (seconds, lag) for function, outcome, seconds, lag in first["deliveries"]}
    assert sorted(outcomes) == [("echo", "retried"), ("fail", "failed"), ("no-such-function", "dead")]
    assert outcomes[("echo", "retried")][1] is None  # not settled: no lag yet
    assert all(seconds > 0 for seconds, lag in outcomes.values())
    assert first["pending"] == 1 and first["oldest_pending_seconds"] > 0  # the retried one


def test_a_report_setting_that_is_not_a_boolean_is_refused(queue):
    queue.execute("SET aws_lambda.report_deliveries = 'sometimes'")
    with pytest.raises(psycopg.Error) as caught:
        deliver(queue)
    assert caught.value.diag.sqlstate == "22023"
    assert caught.value.diag.message_primary == \
        'invalid value for setting "aws_lambda.report_deliveries": "sometimes" is not a boolean (on or off)'
    queue.execute("RESET aws_lambda.report_deliveries")
    deliver(queue)  # the session goes on


def test_autovacuum_keeps_up_with_a_log_of_millions(db):
    """The extension sets the table's autovacuum: after 1% of the rows changed, not 20%."""
    (options,) = db.execute("SELECT reloptions FROM pg_class WHERE oid = 'aws_lambda.deliveries'::regclass"
                            ).fetchone()
    assert sorted(options) == ["autovacuum_analyze_scale_factor=0.01",
                               "autovacuum_vacuum_insert_scale_factor=0.01",
                               "autovacuum_vacuum_scale_factor=0.01"]
