"""Fixtures: one real cluster and one local Lambda endpoint for the session (scripts/fixture.py).

The cluster is configured the way an operator would do it: endpoint_override in
postgresql.conf, credentials and region in the server's environment. The
endpoint verifies every request's SigV4 signature against those credentials.
"""

import contextlib
import fcntl
import os
import tempfile
import threading
import time

import psycopg
import pytest

import fixture
# The tests import these from here.
from fixture import ACCESS_KEY, ACCOUNT, FUNCTIONS, REGION, ROOT, SECRET_KEY, SERVER_ENV  # noqa: F401


@pytest.fixture(scope="session")
def emulator():
    with fixture.endpoint() as emu:
        yield emu


@pytest.fixture(scope="session")
def cluster(emulator):
    pg = fixture.cluster(emulator.url)
    yield pg
    pg.stop()


@pytest.fixture
def db(cluster, emulator):
    """A superuser connection in autocommit mode, with the endpoint's records cleared."""
    emulator.reset()
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        yield conn


@pytest.fixture
def psql(cluster, emulator):
    """Run SQL through the real psql; returns what psql prints."""
    emulator.reset()
    return cluster.psql


@pytest.fixture
def queue(db):
    """db, with aws_lambda.deliveries emptied before and after."""
    db.execute("DELETE FROM aws_lambda.deliveries")
    yield db
    db.execute("DELETE FROM aws_lambda.deliveries")


@pytest.fixture
def warm(db):
    """db after one successful call: the connection to the endpoint is open and reused."""
    assert db.execute("SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)").fetchone() == (200,)
    return db


@contextlib.contextmanager
def installing():
    """One "make install" or scripts/postgres build at a time, across the pytest-xdist
    workers that scripts/test runs (they share the installs and the built majors)."""
    with open(os.path.join(tempfile.gettempdir(), "aws_lambda-tests-install.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def reload_configuration(db):
    """pg_reload_conf(), then wait until db's session has read the files again. The
    postmaster reads them before it tells the backends, so a new connection sees them too."""
    (loaded,) = db.execute("SELECT pg_conf_load_time()").fetchone()
    db.execute("SELECT pg_reload_conf()")
    wait_until(lambda: db.execute("SELECT pg_conf_load_time()").fetchone()[0] != loaded, 10,
               "the server has read its configuration again")


def operator_sets(db, **settings):
    """As docs/reference.md says: SET first (ALTER SYSTEM refuses a setting the session does not
    know); then reload, and wait until this session has read the files again."""
    for name, value in settings.items():
        db.execute(f"SET aws_lambda.{name} = '{value}'")
        db.execute(f"ALTER SYSTEM SET aws_lambda.{name} = '{value}'")
        db.execute(f"RESET aws_lambda.{name}")
    reload_configuration(db)


def wait_until(condition, timeout, what):
    """Wait until condition() is true, looking every 10 ms; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


class Running:
    """A statement running on conn in a background thread."""

    def __init__(self, conn, sql):
        self.error = None
        self.ended = None
        self.thread = threading.Thread(target=self._run, args=(conn, sql), daemon=True)
        self.thread.start()

    def _run(self, conn, sql):
        try:
            conn.execute(sql)
        except psycopg.Error as error:
            self.error = error
        self.ended = time.monotonic()

    def wait(self, timeout=10):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the statement is still running"
        return self.error


def all_answered(emulator):
    """Whether the endpoint has answered every request it received (a function that ran has
    returned): for wait_until."""
    return lambda: all(record.status is not None for record in emulator.requests)


def request_id_line(emulator):
    """The last line of the HINT of an error that came from the endpoint's last answer."""
    return f"Lambda request id: {emulator.requests[-1].request_id}"


def backend_resources(pid):
    """Threads, open sockets and resident memory (kB) of a backend, from /proc."""
    sockets = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            sockets += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except FileNotFoundError:
            pass
    status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
    return {
        "threads": len(os.listdir(f"/proc/{pid}/task")),
        "sockets": sockets,
        "rss_kb": int(status["VmRSS"].split()[0]),
        "anon_kb": int(status["RssAnon"].split()[0]),
    }


def threads_and_sockets(pid):
    """How many threads and open sockets a backend has."""
    found = backend_resources(pid)
    return found["threads"], found["sockets"]
