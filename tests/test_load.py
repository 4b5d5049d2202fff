"""Load: concurrent sessions invoking thousands of times. Every invocation lands once,
no backend dies, and a session holds no more threads, sockets or memory after
thousands of calls than after its first few hundred."""

import json
import threading
from collections import Counter

import psycopg
import pytest

from conftest import backend_resources

SESSIONS = 4
CALLS = 2000  # per session


def invoke_echo(conn, session, first, last):
    """Invoke echo once per i in first..last, each with its own event; returns how many
    calls came back 200 with their own event."""
    return conn.execute("""
        SELECT count(*) FILTER (WHERE r.status_code = 200
                                  AND (r.payload -> 'event' ->> 'i')::int = g
                                  AND (r.payload -> 'event' ->> 's')::int = %s)
        FROM generate_series(%s::int, %s::int) AS g,
             LATERAL aws_lambda.invoke('echo', jsonb_build_object('s', %s::int, 'i', g)) AS r""",
                        (session, first, last, session)).fetchone()[0]


def test_concurrent_sessions_every_invocation_lands_once(cluster, db, emulator):
    conns = [psycopg.connect(cluster.dsn(), autocommit=True) for _ in range(SESSIONS)]
    pids = [conn.info.backend_pid for conn in conns]
    results, failures = {}, []

    def session(s):
        try:
            results[s] = invoke_echo(conns[s], s, 1, CALLS)
        except Exception as error:  # reported below
            failures.append(error)

    threads = [threading.Thread(target=session, args=(s,)) for s in range(SESSIONS)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert failures == []
        assert results == {s: CALLS for s in range(SESSIONS)}  # each got its own answers
        events = Counter(tuple(json.loads(r.body).values()) for r in emulator.requests
                         if r.function == "echo")
        assert len(events) == SESSIONS * CALLS  # none lost
        assert set(events.values()) == {1}  # none twice
        assert emulator.invocations("echo") == SESSIONS * CALLS
        alive = db.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)).fetchone()
        assert alive == (SESSIONS,)
        for conn, pid in zip(conns, pids):
            assert conn.execute("SELECT pg_backend_pid()").fetchone() == (pid,)
        assert "terminated by signal" not in cluster.server_log()
    finally:
        for conn in conns:
            conn.close()


FAILING = [  # (setting, call, fault)
    (None, "SELECT aws_lambda.invoke('fail', '{}'::json)", None),
    (None, "SELECT aws_lambda.invoke('no-such-function', '{}'::json)", None),
    (None, "SELECT aws_lambda.invoke('simple', '{}'::json)", "close_before_response"),
    (None, "SELECT aws_lambda.invoke('simple', '{}'::json)", "drop_mid_response"),
    ("aws_lambda.request_timeout_ms = 100", """SELECT aws_lambda.invoke('sleep', '{"seconds": 5}'::json)""", None),
    ("statement_timeout = '50ms'", """SELECT aws_lambda.invoke('sleep', '{"seconds": 5}'::json)""", None),
]


def test_a_session_stays_flat_over_thousands_of_calls(db, emulator):
    pid = db.info.backend_pid
    invoke_echo(db, 0, 1, 300)  # warm-up: imports, connection, caches
    before = backend_resources(pid)
    for first in range(301, 3301, 500):
        assert invoke_echo(db, 0, first, first + 499) == 500
        # some calls fail on the way: function errors, lost connections, timeouts, cancels
        for setting, sql, fault in FAILING:
            if fault:
                emulator.set_fault("simple", fault, count=1)
            if setting:
                db.execute(f"SET {setting}")
            with pytest.raises(psycopg.Error):
                db.execute(sql)
            db.execute("RESET ALL")
    assert invoke_echo(db, 0, 3301, 3400) == 100  # the abandoned calls are done with by now
    after = backend_resources(pid)
    assert emulator.invocations("echo") == 3400
    assert after["threads"] <= before["threads"] + 2
    assert after["sockets"] <= before["sockets"] + 2
    assert after["rss_kb"] - before["rss_kb"] < 8 * 1024
    assert after["anon_kb"] - before["anon_kb"] < 4 * 1024
