"""Cancellation and timeouts: a running invoke stops when PostgreSQL or a timeout says so.

The `sleep` function would run for 30 seconds; none of these tests waits for it.
"""

import time

import psycopg
import pytest

from conftest import Running, all_answered, threads_and_sockets, wait_until

SLEEP_30 = """SELECT aws_lambda.invoke('sleep', '{"seconds": 30}'::json)"""
SLACK = 0.25  # seconds allowed on top of the deadline, for a busy 2-core CI machine


@pytest.fixture
def session(cluster, db):
    """A second connection: the one whose invoke gets canceled (db is the one that cancels)."""
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("SET aws_lambda.request_timeout_ms = 60000")
        conn.execute("SELECT aws_lambda.invoke('simple', '{}'::json)")  # set up and connected
        yield conn


def wait_until_received(emulator, function, timeout=5):
    """Wait until the endpoint has the request: the invoke is then in flight."""
    wait_until(lambda: any(r.function == function for r in emulator.requests), timeout,
               f"{function} is invoked")


def timed(conn, sql):
    start = time.monotonic()
    row = conn.execute(sql).fetchone()
    return row, time.monotonic() - start


def failing(conn, sql):
    """Run sql, expecting an error: (the error, seconds it took)."""
    start = time.monotonic()
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(sql)
    return caught.value, time.monotonic() - start


def test_statement_timeout_stops_a_long_invoke(session, emulator):
    session.execute("SET statement_timeout = '300ms'")
    error, elapsed = failing(session, SLEEP_30)
    assert error.diag.sqlstate == "57014"
    assert error.diag.message_primary == "canceling statement due to statement timeout"
    assert elapsed < 0.3 + SLACK
    assert emulator.invocations("sleep") == 1


def test_pg_cancel_backend_stops_a_long_invoke(db, session, emulator):
    running = Running(session, SLEEP_30)
    wait_until_received(emulator, "sleep")
    canceled_at = time.monotonic()
    assert db.execute("SELECT pg_cancel_backend(%s)", (session.info.backend_pid,)).fetchone() == (True,)
    error = running.wait()
    assert error.diag.sqlstate == "57014"
    assert error.diag.message_primary == "canceling statement due to user request"
    assert running.ended - canceled_at < SLACK


def test_pg_terminate_backend_ends_the_backend_promptly(db, session, emulator, cluster):
    pid = session.info.backend_pid
    running = Running(session, SLEEP_30)
    wait_until_received(emulator, "sleep")
    terminated_at = time.monotonic()
    db.execute("SELECT pg_terminate_backend(%s)", (pid,))
    error = running.wait()
    assert isinstance(error, psycopg.OperationalError)
    assert running.ended - terminated_at < SLACK
    wait_until(lambda: db.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                                  (pid,)).fetchone() == (0,), 1, "the terminated backend is gone")
    # The backend ended cleanly: no crash, so the other sessions were not reset.
    assert db.execute("SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)").fetchone() == (200,)
    assert "terminated by signal" not in cluster.server_log()


def test_after_a_cancel_the_session_goes_on_at_full_speed(session, emulator):
    session.execute("SET statement_timeout = '200ms'")
    for _ in range(3):  # three abandoned 30-second calls, still running on the endpoint
        error, _ = failing(session, SLEEP_30)
        assert error.diag.sqlstate == "57014"
    session.execute("RESET statement_timeout")
    assert session.execute("SELECT 1").fetchone() == (1,)
    row, elapsed = timed(session, "SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)")
    assert row == (200,)
    assert elapsed < 0.5
    row, elapsed = timed(session, """SELECT payload FROM aws_lambda.invoke('sleep', '{"seconds": 0.2}'::json)""")
    assert row == ({"slept": 0.2},)
    assert 0.2 <= elapsed < 0.2 + SLACK
    assert emulator.invocations("sleep") == 4


def test_a_cancel_inside_a_transaction_rolls_it_back(session, emulator):
    session.execute("CREATE TEMP TABLE calls (n int)")
    session.execute("SET statement_timeout = '200ms'")
    with pytest.raises(psycopg.errors.QueryCanceled):
        with session.transaction():
            session.execute("INSERT INTO calls VALUES (1)")
            session.execute(SLEEP_30)
    session.execute("RESET statement_timeout")
    assert session.execute("SELECT count(*) FROM calls").fetchone() == (0,)
    assert session.execute("SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)").fetchone() == (200,)


def test_request_timeout_ends_the_call_and_does_not_send_it_again(db, emulator):
    db.execute("SET aws_lambda.request_timeout_ms = 200")
    db.execute("SELECT aws_lambda.invoke('simple', '{}'::json)")  # the connection is made
    error, elapsed = failing(db, """SELECT aws_lambda.invoke('sleep', '{"seconds": 2}'::json)""")
    assert error.diag.sqlstate == "LM002"
    assert error.diag.message_primary == "invoke API failed"
    assert error.diag.message_detail == "AWS Lambda client returned 'Request timeout'."
    assert "(200 ms)" in error.diag.message_hint
    assert "not retried" in error.diag.message_hint
    assert elapsed < 0.2 + SLACK
    wait_until(all_answered(emulator), 5, "the abandoned call has finished on the endpoint")
    assert emulator.invocations("sleep") == 1
    assert [r.function for r in emulator.requests] == ["simple", "sleep"]
    assert db.execute("SELECT 1").fetchone() == (1,)


def test_a_call_within_the_request_timeout_succeeds(db):
    db.execute("SET aws_lambda.request_timeout_ms = 1500")
    db.execute("SELECT aws_lambda.invoke('simple', '{}'::json)")  # the first call sets things up
    row, elapsed = timed(db, """SELECT payload FROM aws_lambda.invoke('sleep', '{"seconds": 1}'::json)""")
    assert row == ({"slept": 1},)
    assert 1 <= elapsed < 1 + SLACK


@pytest.mark.parametrize("setting", ["aws_lambda.connect_timeout_ms", "aws_lambda.request_timeout_ms"])
@pytest.mark.parametrize("value", ["0", "900001", "-1", "1.5", "1e3", "10ms", "abc", "99999999999999999999"])
def test_timeout_settings_outside_the_range_or_not_integers_are_refused(db, emulator, setting, value):
    db.execute(f"SET {setting} = '{value}'")
    error, _ = failing(db, "SELECT aws_lambda.invoke('simple', '{}'::json)")
    assert error.diag.sqlstate == "22023"
    assert error.diag.message_primary.startswith(f'invalid value for setting "{setting}": ')
    assert emulator.requests == []
    db.execute(f"RESET {setting}")
    assert db.execute("SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)").fetchone() == (200,)


@pytest.mark.parametrize("setting", ["aws_lambda.connect_timeout_ms", "aws_lambda.request_timeout_ms"])
def test_timeout_settings_accept_the_whole_range(db, setting):
    db.execute(f"SET {setting} = 900000")
    assert db.execute("SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)").fetchone() == (200,)
    db.execute(f"SET {setting} = 1")
    try:
        db.execute("SELECT aws_lambda.invoke('simple', '{}'::json)")
    except psycopg.Error as error:  # 1 ms may well be too short; it is not refused, though
        assert error.diag.sqlstate in ("LM001", "LM002")


def test_a_canceled_call_is_never_sent_afterwards(session, emulator):
    # Throttled once (Retry-After: 1): the call is canceled while it waits to retry.
    emulator.set_fault("echo", "status", count=1, status=429)
    session.execute("SET statement_timeout = '300ms'")
    error, _ = failing(session, """SELECT aws_lambda.invoke('echo', '{"call": "canceled"}'::json)""")
    assert error.diag.sqlstate == "57014"
    session.execute("RESET statement_timeout")
    # The session goes on for longer than the retry would have waited.
    row = session.execute("""SELECT payload FROM aws_lambda.invoke('sleep', '{"seconds": 1.5}'::json)""").fetchone()
    assert row == ({"slept": 1.5},)
    bodies = [r.body for r in emulator.requests if r.function == "echo"]
    assert bodies == [b'{"call": "canceled"}']  # the throttled attempt only: never retried
    assert emulator.invocations("echo") == 0


def test_many_canceled_calls_leave_no_threads_or_sockets_behind(session, emulator):
    pid = session.info.backend_pid
    before = threads_and_sockets(pid)
    session.execute("SET statement_timeout = '50ms'")
    for _ in range(70):
        error, _ = failing(session, SLEEP_30)
        assert error.diag.sqlstate == "57014"
    session.execute("RESET statement_timeout")
    row, elapsed = timed(session, "SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)")
    assert row == (200,)
    assert elapsed < 0.5
    threads, sockets = threads_and_sockets(pid)
    assert threads <= before[0] + 2
    assert sockets <= before[1] + 2


def test_a_canceled_batch_sends_nothing_afterwards(session, emulator):
    emulator.set_fault("echo", "status", count=3, status=429)  # each waits 1 s to retry
    session.execute("SET statement_timeout = '300ms'")
    error, elapsed = failing(session, """SELECT * FROM aws_lambda.invoke_many('echo',
        ARRAY['{"i": 1}', '{"i": 2}', '{"i": 3}', '{"i": 4}', '{"i": 5}']::jsonb[], max_concurrency => 3)""")
    assert error.diag.sqlstate == "57014"
    assert elapsed < 0.3 + SLACK
    session.execute("RESET statement_timeout")
    row = session.execute("""SELECT payload FROM aws_lambda.invoke('sleep', '{"seconds": 1.5}'::json)""").fetchone()
    assert row == ({"slept": 1.5},)
    assert sorted(r.body for r in emulator.requests if r.function == "echo") == [
        b'{"i": 1}', b'{"i": 2}', b'{"i": 3}']  # the throttled attempts only
    assert emulator.invocations("echo") == 0
