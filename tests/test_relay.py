"""The relay (python -m plpy_lambda.relay): what invoke_on_commit queues is sent after COMMIT.

Each test starts real relay processes against the real cluster and the local endpoint,
and looks at what the endpoint received and at aws_lambda.deliveries. A batch is "in
flight" when its deliveries call the `sleep` function synchronously (RequestResponse), so
the server is still waiting on them when something breaks. The duplicate counts the
crash tests measure are printed (pytest -s shows them).
"""

import collections
import json
import re
import signal
import subprocess
import sys
import time

import psycopg
import pytest

import fixture
from cluster import free_port
from conftest import ROOT, wait_until

BATCH = 100  # deliver()'s default batch size: the most a crash may send twice
QUEUE_SLEEPS = """
SELECT aws_lambda.invoke_on_commit(
    'sleep', json_build_object('seconds', %s::float8, 'i', i), invocation_type => 'RequestResponse')
FROM generate_series(1, %s) AS i
"""


class Relay:
    """One relay process, started and done with its first CALL; its log goes to a file."""

    def __init__(self, dsn, log_path, *options):
        self.log_path = log_path
        with open(log_path, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "plpy_lambda.relay", "--dsn", dsn, *options],
                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.wait_for_log("listening on aws_lambda_deliveries")
        backend = int(re.search(r"\(backend (\d+)\)", self.log()).group(1))
        with psycopg.connect(dsn, autocommit=True) as conn:
            wait_until(lambda: conn.execute(
                "SELECT state = 'idle' AND query LIKE 'CALL%%' FROM pg_stat_activity "
                "WHERE pid = %s", (backend,)).fetchone()[0], 10, "the relay's first CALL ends")

    def log(self):
        with open(self.log_path) as log:
            return log.read()

    def wait_for_log(self, text, timeout=10, count=1):
        end = time.monotonic() + timeout
        while self.log().count(text) < count:
            assert self.process.poll() is None, f"the relay exited:\n{self.log()}"
            assert time.monotonic() < end, f"no {text!r} in the relay's log:\n{self.log()}"
            time.sleep(0.05)

    def signal(self, signum):
        self.process.send_signal(signum)

    def wait(self, timeout):
        return self.process.wait(timeout)


@pytest.fixture
def relays(tmp_path):
    """relays(dsn, *options) starts a relay and waits until it listens; all are killed after."""
    started = []

    def start(dsn, *options):
        relay = Relay(dsn, str(tmp_path / f"relay{len(started) + 1}.log"), *options)
        started.append(relay)
        return relay

    yield start
    for relay in started:
        if relay.process.poll() is None:
            relay.process.kill()
            relay.process.wait(10)


@pytest.fixture(scope="module")
def own_server():
    """A cluster and an endpoint of this module's own, to crash and to stop.

    The endpoint keeps its port across stop() and start(), as a real one would."""
    emu = fixture.endpoint(port=free_port()).start()
    try:
        pg = fixture.cluster(emu.url)
        try:
            yield pg, emu
        finally:
            pg.stop()
    finally:
        emu.stop()


def statuses(conn):
    return dict(conn.execute(
        "SELECT status, count(*) FROM aws_lambda.deliveries GROUP BY status").fetchall())


def unclaimed(conn):
    """Deliveries that no deliverer holds (locks) right now."""
    return conn.execute("SELECT count(*) FROM (SELECT FROM aws_lambda.deliveries "
                        "FOR UPDATE SKIP LOCKED) AS d").fetchone()[0]


def all_succeeded(conn, total):
    return lambda: statuses(conn) == {"succeeded": total}


def sent_per_i(emu):
    """How many requests the endpoint received for each payload "i"."""
    return collections.Counter(json.loads(r.body)["i"] for r in emu.requests
                               if r.function == "sleep")


def test_a_committed_invoke_on_commit_is_sent_at_once_and_a_rolled_back_one_never(
        cluster, emulator, queue, relays):
    relays(cluster.dsn(), "--poll", "60")  # so only the notification can bring it so soon
    with psycopg.connect(cluster.dsn()) as app:
        app.execute("SELECT aws_lambda.invoke_on_commit('echo', '{\"order\": 1}'::jsonb)")
        app.rollback()
        app.execute("SELECT aws_lambda.invoke_on_commit('echo', '{\"order\": 2}'::jsonb)")
        app.commit()
        committed = time.monotonic()
    wait_until(lambda: emulator.requests, 1.0, "the committed invocation arrives")
    print(f"\nsent {time.monotonic() - committed:.3f} s after COMMIT")
    wait_until(all_succeeded(queue, 1), 2, "it is recorded as succeeded")
    time.sleep(0.5)
    assert [json.loads(r.body) for r in emulator.requests] == [{"order": 2}]


def test_a_relay_killed_mid_batch_loses_nothing(cluster, emulator, queue, relays):
    first = relays(cluster.dsn(), "--max-concurrency", "5")  # 50 x 0.5 s: a 5 s batch
    queue.execute(QUEUE_SLEEPS, (0.5, 50))
    wait_until(lambda: len(emulator.requests) >= 10, 5, "the batch is in flight")
    first.process.kill()
    relays(cluster.dsn())
    wait_until(all_succeeded(queue, 50), 20, "every delivery succeeded")
    sent = sent_per_i(emulator)
    duplicates = sum(sent.values()) - 50
    print(f"\nrelay killed mid-batch: {duplicates} duplicates of 50")
    assert sorted(sent) == list(range(1, 51))
    assert duplicates <= BATCH


def test_the_relay_reconnects_by_itself_after_a_server_crash(own_server, relays):
    pg, emu = own_server
    emu.reset()
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute("DELETE FROM aws_lambda.deliveries")
        relay = relays(pg.dsn(), "--max-concurrency", "5")
        conn.execute(QUEUE_SLEEPS, (0.5, 50))
    wait_until(lambda: len(emu.requests) >= 10, 5, "the batch is in flight")
    pg.crash()
    relay.wait_for_log("connection failed")
    time.sleep(1)
    pg.restart()
    relay.wait_for_log("listening on aws_lambda_deliveries", timeout=15, count=2)
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        wait_until(all_succeeded(conn, 50), 20, "every delivery succeeded")
    assert relay.process.poll() is None  # the same process throughout
    sent = sent_per_i(emu)
    duplicates = sum(sent.values()) - 50
    print(f"\nserver crashed mid-batch: {duplicates} duplicates of 50")
    assert sorted(sent) == list(range(1, 51))
    assert duplicates <= BATCH


def test_deliveries_wait_out_an_endpoint_that_is_down(own_server, relays):
    pg, emu = own_server
    emu.stop()
    try:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute("DELETE FROM aws_lambda.deliveries")
            relays(pg.dsn())
            conn.execute("SELECT aws_lambda.invoke_on_commit('simple', json_build_object('i', i)) "
                         "FROM generate_series(1, 5) AS i")
            wait_until(lambda: conn.execute(
                "SELECT min(attempts) >= 2 FROM aws_lambda.deliveries").fetchone()[0],
                10, "every delivery failed twice")
            assert statuses(conn) == {"pending": 5}
    finally:
        emu.reset()
        emu.start()
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        wait_until(all_succeeded(conn, 5), 20, "every delivery succeeded")
        rows = conn.execute("SELECT attempts, last_error FROM aws_lambda.deliveries").fetchall()
    assert all(attempts > 1 for attempts, _ in rows)
    assert all(error and "connect" in error.lower() for _, error in rows), rows
    assert sorted(json.loads(r.body)["i"] for r in emu.requests) == [1, 2, 3, 4, 5]


def test_three_relays_share_the_work_and_send_each_delivery_once(
        cluster, emulator, queue, relays):
    started = [relays(cluster.dsn()) for _ in range(3)]
    queue.execute(QUEUE_SLEEPS, (0.05, 300))
    wait_until(all_succeeded(queue, 300), 30, "every delivery succeeded")
    sent = sent_per_i(emulator)
    assert sorted(sent) == list(range(1, 301))
    assert set(sent.values()) == {1}  # nothing crashed: nothing sent twice
    worked = [relay for relay in started if "succeeded," in relay.log()]
    assert len(worked) >= 2, [relay.log() for relay in started]


def test_sigterm_stops_an_idle_relay_at_once(cluster, queue, relays):
    relay = relays(cluster.dsn(), "--poll", "60")
    started = time.monotonic()
    relay.signal(signal.SIGTERM)
    assert relay.wait(5) == 0
    assert time.monotonic() - started < 1.0
    assert "stopped" in relay.log()


def test_sigterm_lets_the_batch_in_flight_finish(cluster, emulator, queue, relays):
    relay = relays(cluster.dsn(), "--max-concurrency", "5")  # 20 x 0.5 s: a 2 s batch
    queue.execute(QUEUE_SLEEPS, (0.5, 20))
    wait_until(lambda: len(emulator.requests) >= 3, 5, "the batch is in flight")
    relay.signal(signal.SIGTERM)
    assert relay.wait(10) == 0
    assert statuses(queue) == {"succeeded": 20}
    assert sent_per_i(emulator) == {i: 1 for i in range(1, 21)}


def test_sigterm_cancels_a_batch_that_outlasts_the_grace(cluster, emulator, queue, relays):
    relay = relays(cluster.dsn(), "--max-concurrency", "2", "--grace", "1")  # a 20 s batch
    queue.execute(QUEUE_SLEEPS, (2, 20))
    wait_until(lambda: len(emulator.requests) >= 2, 5, "the batch is in flight")
    started = time.monotonic()
    relay.signal(signal.SIGTERM)
    assert relay.wait(5) == 0
    assert time.monotonic() - started < 3
    assert "canceling" in relay.log()
    # The canceled batch is queued again, claimed by no one.
    assert statuses(queue) == {"pending": 20}
    assert unclaimed(queue) == 20


def test_the_backend_of_a_dead_relay_stops_within_seconds(cluster, emulator, queue, relays):
    relay = relays(cluster.dsn(), "--max-concurrency", "2")  # 20 x 1 s: a 10 s batch
    queue.execute(QUEUE_SLEEPS, (1, 20))
    wait_until(lambda: len(emulator.requests) >= 2, 5, "the batch is in flight")
    backends = ("SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = 'aws_lambda relay'")
    assert queue.execute(backends).fetchone()[0] == 1
    relay.process.kill()
    killed = time.monotonic()
    wait_until(lambda: queue.execute(backends).fetchone()[0] == 0, 4,
               "the relay's backend is gone")
    print(f"\nthe dead relay's backend stopped {time.monotonic() - killed:.2f} s later")
    assert statuses(queue) == {"pending": 20}
    assert unclaimed(queue) == 20
    sent = len(emulator.requests)
    time.sleep(1.5)
    assert len(emulator.requests) == sent < 20  # it sent no more once it stopped
