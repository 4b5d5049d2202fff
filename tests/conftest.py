"""Fixtures: one real cluster and one local Lambda endpoint for the session.

The cluster is configured the way an operator would do it: endpoint_override in
postgresql.conf, credentials and region in the server's environment. The
endpoint verifies every request's SigV4 signature against those credentials.
"""

import os

import psycopg
import pytest

from cluster import Cluster
from lambda_emulator import Emulator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUNCTIONS = os.path.join(ROOT, "examples", "functions")
ACCESS_KEY = "AKIATESTKEY000000000"
SECRET_KEY = "test-secret-never-printed-0123456789"
REGION = "us-east-1"
ACCOUNT = "123456789012"
SERVER_ENV = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="session")
def emulator():
    with Emulator(FUNCTIONS, region=REGION, account_id=ACCOUNT,
                  credentials={ACCESS_KEY: SECRET_KEY}) as emu:
        yield emu


@pytest.fixture(scope="session")
def cluster(emulator):
    pg = Cluster(conf={"aws_lambda.endpoint_override": f"'{emulator.url}'"}, env=SERVER_ENV)
    pg.start()
    pg.psql("CREATE EXTENSION aws_lambda CASCADE;", check=True)
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
def warm(db):
    """db after one successful call: the connection to the endpoint is open and reused."""
    assert db.execute("SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)").fetchone() == (200,)
    return db


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
