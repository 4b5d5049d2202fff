"""Faults between the database and Lambda: each ends in a clear error (or the right
result), the function never runs twice because of us, and the session goes on.

The session's endpoint breaks on request (emulator.set_fault); an unreachable or
black-holed endpoint needs a second cluster, whose postgresql.conf points there.
"""

import contextlib
import os
import signal
import socket
import threading
import time

import psycopg
import pytest

from cluster import Cluster
from conftest import ACCESS_KEY, SECRET_KEY, SERVER_ENV, all_answered, wait_until

SIMPLE = "SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)"
SLACK = 0.25  # seconds allowed on top of a deadline, for a busy 2-core CI machine


@pytest.fixture(autouse=True)
def no_faults_left(emulator):
    yield
    emulator.clear_faults()


def failing(conn, sql="SELECT aws_lambda.invoke('simple', '{}'::json)"):
    """Run sql, expecting an error: (its diagnostics, seconds it took)."""
    start = time.monotonic()
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(sql)
    elapsed = time.monotonic() - start
    diag = caught.value.diag
    said = " ".join(str(x) for x in (diag.message_primary, diag.message_detail, diag.message_hint))
    assert SECRET_KEY not in said and ACCESS_KEY not in said
    return diag, elapsed


def sent(emulator, function="simple"):
    """How many requests for function reached the endpoint."""
    return sum(1 for r in emulator.requests if r.function == function)


def goes_on(conn, emulator=None):
    """The same backend still works, and invokes normally once the endpoint is healthy."""
    if emulator is not None:
        emulator.clear_faults()
    pid = conn.info.backend_pid
    assert conn.execute("SELECT pg_backend_pid()").fetchone() == (pid,)
    assert conn.execute(SIMPLE).fetchone() == (200,)


@contextlib.contextmanager
def held_up(conn, after, seconds):
    """The backend of conn stopped (SIGSTOP) after `after` seconds, for `seconds`, as a
    busy machine may leave a process unscheduled: its timers come late."""
    pid = conn.info.backend_pid

    def hold():
        time.sleep(after)
        os.kill(pid, signal.SIGSTOP)
        time.sleep(seconds)
        os.kill(pid, signal.SIGCONT)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        yield
    finally:
        holder.join()


# -- the connection breaks after the request was sent: never retried ----------------

@pytest.mark.parametrize("kind", ["close_before_response", "drop_mid_response"])
def test_connection_lost_after_sending_is_reported_and_not_retried(warm, emulator, kind):
    emulator.reset()
    emulator.set_fault("simple", kind, count=1)
    diag, _ = failing(warm)
    assert diag.sqlstate == "LM005"
    assert diag.message_primary == "invoke API failed"
    assert diag.message_detail == "AWS Lambda client returned 'Connection lost before the response was complete'."
    assert "not retried" in diag.message_hint
    assert sent(emulator) == 1
    goes_on(warm)


def test_a_slow_answer_within_the_request_timeout_is_a_result(warm, emulator):
    emulator.set_fault("simple", "delay", count=1, seconds=0.5)
    warm.execute("SET aws_lambda.request_timeout_ms = 1000")
    start = time.monotonic()
    assert warm.execute(SIMPLE).fetchone() == (200,)
    assert time.monotonic() - start >= 0.5


def test_an_answer_slower_than_the_request_timeout_is_lm002_and_not_retried(warm, emulator):
    emulator.reset()
    emulator.set_fault("simple", "delay", count=1, seconds=1.0)
    warm.execute("SET aws_lambda.request_timeout_ms = 300")
    diag, elapsed = failing(warm)
    assert diag.sqlstate == "LM002"
    assert diag.message_detail == "AWS Lambda client returned 'Request timeout'."
    assert elapsed < 0.3 + SLACK
    wait_until(all_answered(emulator), 5, "the delayed call is served: the function runs, once")
    assert emulator.invocations("simple") == 1
    assert sent(emulator) == 1
    goes_on(warm)


# -- throttling: retried, with backoff, inside the request timeout -------------------

def test_throttling_that_passes_is_retried_until_the_call_gets_through(warm, emulator):
    emulator.reset()
    emulator.set_fault("simple", "status", count=2, status=429, retry_after=0)
    assert warm.execute(SIMPLE).fetchone() == (200,)
    assert sent(emulator) == 3
    assert emulator.invocations("simple") == 1


def test_retries_honour_retry_after(warm, emulator):
    emulator.reset()
    emulator.set_fault("simple", "status", count=1, status=429)  # Retry-After: 1
    start = time.monotonic()
    assert warm.execute(SIMPLE).fetchone() == (200,)
    assert time.monotonic() - start >= 1
    assert sent(emulator) == 2


@pytest.mark.parametrize("retry_after", [None, 0])
def test_throttling_that_outlasts_the_retries_is_lm003_too_many_requests(warm, emulator, retry_after):
    emulator.reset()
    warm.execute("SET aws_lambda.connect_timeout_ms = 100")
    warm.execute("SET aws_lambda.request_timeout_ms = 1000")
    emulator.set_fault("simple", "status", status=429, retry_after=retry_after)
    diag, elapsed = failing(warm)
    assert diag.sqlstate == "LM003"
    assert diag.message_primary == "invoke API failed"
    assert diag.message_detail.startswith("AWS Lambda client returned 'TooManyRequestsException")
    assert elapsed < 1.1 + SLACK  # the backoff stays inside connect + request timeouts
    assert 2 <= sent(emulator) <= 5  # retried, a bounded number of times
    assert emulator.invocations("simple") == 0
    goes_on(warm, emulator)


def test_a_retry_that_comes_after_the_deadline_leaves_the_throttling_as_the_outcome(warm, emulator):
    emulator.reset()
    warm.execute("SET aws_lambda.connect_timeout_ms = 100")
    warm.execute("SET aws_lambda.request_timeout_ms = 1500")
    emulator.set_fault("simple", "status", count=1, status=429)  # Retry-After: 1, inside 1.6 s
    with held_up(warm, after=0.3, seconds=2):  # the backend wakes up past the call's deadline
        diag, elapsed = failing(warm)
    assert diag.sqlstate == "LM003"
    assert diag.message_detail.startswith("AWS Lambda client returned 'TooManyRequestsException")
    assert elapsed >= 2
    assert sent(emulator) == 1  # no attempt after the deadline
    goes_on(warm, emulator)


# -- the service answers with an error: final --------------------------------------

@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_service_error_is_lm005_and_not_retried(warm, emulator, status):
    emulator.reset()
    emulator.set_fault("simple", "status", count=1, status=status)
    diag, _ = failing(warm)
    assert diag.sqlstate == "LM005"
    assert diag.message_detail == (
        "AWS Lambda client returned 'ServiceException: An error occurred and the request cannot be processed.'.")
    assert f"HTTP {status}" in diag.message_hint
    assert sent(emulator) == 1
    goes_on(warm)


def test_request_too_large_from_the_service_is_lm004(warm, emulator):
    emulator.set_fault("simple", "status", count=1, status=413)
    diag, _ = failing(warm)
    assert diag.sqlstate == "LM004"
    assert diag.message_detail.startswith("AWS Lambda client returned 'RequestTooLargeException: ")
    assert "HTTP 413" in diag.message_hint
    goes_on(warm)


@pytest.mark.parametrize("status, body", [(200, "this is not JSON"), (200, '{"cut": '),
                                          (502, "<html><body>Bad Gateway</body></html>")])
def test_an_answer_that_is_not_json_is_lm005(warm, emulator, status, body):
    emulator.set_fault("simple", "not_json", count=1, status=status, body=body)
    diag, _ = failing(warm)
    assert diag.sqlstate == "LM005"
    assert diag.message_primary == "invoke API failed"
    if status == 200:
        assert diag.message_detail == (
            "AWS Lambda client returned 'Invalid response: the function's payload is not JSON'.")
    else:
        assert "Bad Gateway" in diag.message_detail
    goes_on(warm)


def test_a_huge_answer_arrives_whole(warm, emulator):
    size = 5 * 1024 * 1024
    emulator.set_fault("simple", "huge", count=1, size=size)
    row = warm.execute("""SELECT status_code, octet_length(payload::text), left(payload::text, 3)
                          FROM aws_lambda.invoke('simple', '{}'::json)""").fetchone()
    assert row == (200, size, '"xx')
    goes_on(warm)


def test_faults_on_the_jsonb_and_composite_overloads_too(warm, emulator):
    emulator.set_fault("simple", "not_json", count=1)
    diag, _ = failing(warm, "SELECT aws_lambda.invoke('simple', '{}'::jsonb)")
    assert diag.sqlstate == "LM005"
    emulator.set_fault("simple", "close_before_response", count=1)
    diag, _ = failing(warm, """SELECT aws_lambda.invoke(
        aws_commons.create_lambda_function_arn('simple'), '{}'::jsonb, invocation_type => 'Event')""")
    assert diag.sqlstate == "LM005"
    goes_on(warm)


# -- the endpoint cannot be reached: nothing was sent, so retrying is safe -----------

@pytest.fixture(scope="module")
def elsewhere():
    """A second cluster; point_at(url) moves its endpoint_override (postgresql.conf, reload)."""
    pg = Cluster(env=SERVER_ENV)
    pg.start()
    pg.psql("CREATE EXTENSION aws_lambda CASCADE;", check=True)

    def point_at(url):
        pg.write_conf({"aws_lambda.endpoint_override": f"'{url}'"})
        pg.reload()
        return psycopg.connect(pg.dsn(), autocommit=True)

    yield point_at
    pg.stop()


@pytest.fixture
def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BlackHole:
    """A port where connecting hangs: a listener whose queue (backlog 0) is full and that
    does not accept, so the kernel drops further SYNs. open() makes room for one more."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.settimeout(0.2)
            try:
                filler.connect(("127.0.0.1", self.port))
            except TimeoutError:
                filler.close()  # a SYN it sent again later must not take a free place
                return  # the queue is full: connects now hang
            self.fillers.append(filler)
        self.close()
        pytest.skip("this kernel completes connections past a full listen queue")

    def connecting(self):
        """Whether some socket is waiting for its SYN to be answered (SYN_SENT) here."""
        with open("/proc/net/tcp") as table:
            rows = [line.split() for line in table.readlines()[1:]]
        return any(r[2].endswith(f":{self.port:04X}") and r[3] == "02" for r in rows)

    def open(self):
        accepted, _ = self.listener.accept()
        accepted.close()

    def close(self):
        for s in self.fillers + [self.listener]:
            s.close()


@pytest.fixture
def black_hole():
    hole = BlackHole()
    yield hole
    hole.close()


def test_connection_refused_is_lm001_unable_to_connect(elsewhere, closed_port):
    with elsewhere(f"http://127.0.0.1:{closed_port}") as conn:
        diag, elapsed = failing(conn)
        assert diag.sqlstate == "LM001"
        assert diag.message_primary == "invoke API failed"
        assert diag.message_detail == "AWS Lambda client returned 'Unable to connect to endpoint'."
        assert f"http://127.0.0.1:{closed_port}: " in diag.message_hint
        assert "Connection refused" in diag.message_hint
        assert elapsed < 1 + 3 + SLACK  # retries (nothing was sent) stay inside the timeouts
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_connect_timeout_bounds_a_connect_that_hangs(elsewhere, black_hole):
    with elsewhere(f"http://127.0.0.1:{black_hole.port}") as conn:
        conn.execute("SET aws_lambda.connect_timeout_ms = 200")
        conn.execute("SET aws_lambda.request_timeout_ms = 300")
        diag, elapsed = failing(conn)
        assert diag.sqlstate == "LM001"
        assert diag.message_detail == "AWS Lambda client returned 'Unable to connect to endpoint'."
        assert "timed out" in diag.message_hint
        assert elapsed < 0.5 + SLACK
        # Without a request timeout to stop it, each attempt still gives up after 100 ms:
        # the retries (safe, nothing was sent) end well before request_timeout_ms.
        conn.execute("SET aws_lambda.connect_timeout_ms = 100")
        conn.execute("SET aws_lambda.request_timeout_ms = 5000")
        diag, elapsed = failing(conn)
        assert diag.sqlstate == "LM001"
        assert elapsed < 2.5
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_connect_held_up_past_the_deadline_is_lm001_unable_to_connect(elsewhere, black_hole):
    with elsewhere(f"http://127.0.0.1:{black_hole.port}") as conn:
        conn.execute("SET aws_lambda.connect_timeout_ms = 200")
        conn.execute("SET aws_lambda.request_timeout_ms = 300")
        with held_up(conn, after=0.1, seconds=1):  # it wakes up past the deadline, connecting
            diag, elapsed = failing(conn)
        assert diag.sqlstate == "LM001"
        assert diag.message_detail == "AWS Lambda client returned 'Unable to connect to endpoint'."
        assert "timed out" in diag.message_hint
        assert elapsed >= 1
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_hanging_connect_can_be_canceled(elsewhere, black_hole):
    with elsewhere(f"http://127.0.0.1:{black_hole.port}") as conn:
        conn.execute("SET aws_lambda.connect_timeout_ms = 60000")
        conn.execute("SET statement_timeout = '300ms'")
        diag, elapsed = failing(conn)
        assert (diag.sqlstate, diag.message_primary) == ("57014", "canceling statement due to statement timeout")
        assert elapsed < 0.3 + SLACK
        conn.execute("RESET statement_timeout")
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_connect_that_timed_out_is_retried_and_the_request_sent_once(elsewhere, black_hole):
    with elsewhere(f"http://127.0.0.1:{black_hole.port}") as conn:
        conn.execute("SET aws_lambda.connect_timeout_ms = 300")
        result = {}

        def invoke():
            try:
                result["row"] = conn.execute(
                    "SELECT status_code, payload FROM aws_lambda.invoke('simple', '{}'::json)").fetchone()
            except psycopg.Error as error:
                result["row"] = error

        call = threading.Thread(target=invoke)
        call.start()
        deadline = time.monotonic() + 5
        while not black_hole.connecting():  # the first attempt hangs: its SYN was dropped
            assert time.monotonic() < deadline
            time.sleep(0.005)
        black_hole.open()  # the next attempt gets through
        black_hole.listener.settimeout(5)
        server, _ = black_hole.listener.accept()
        with server:
            requests = read_requests(server, answer=b'{"ok": true}')
        call.join(5)
        assert result["row"] == (200, {"ok": True})
        assert requests == 1


def read_requests(server, answer):
    """Answer each HTTP request on server with 200 and answer; how many came."""
    server.settimeout(2)
    reader = server.makefile("rb")
    count = 0
    while True:
        head = {}
        line = reader.readline()
        if not line:
            return count
        while (line := reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            head[name.strip().lower()] = value.strip()
        reader.read(int(head.get("content-length", 0)))
        count += 1
        server.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                       % (len(answer), answer))
