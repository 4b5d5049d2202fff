"""Upgrading PostgreSQL with deliveries still queued: pg_dump and restore, and pg_upgrade.

The old server is PostgreSQL 15 and the new one 18, both built from source by
scripts/postgres (pg_upgrade pairs two builds of one origin; the first run builds a
major in a few minutes, later runs return at once; a major it cannot build fails the test).
The extensions are installed for each major with `make install PG_CONFIG=<its
pg_config>`, the new major's before anything is restored or upgraded into it, as
docs/operating.md's "Upgrading PostgreSQL" says.

On the old server some deliveries are done (succeeded, failed, dead) and some are still
pending, among them an ordering_key chain whose first delivery went out before the
upgrade. The new server sends each pending delivery exactly once, the chain in id order,
and none of the done ones again; its id sequence goes on after the ids it took over.
The endpoint counts what it receives per payload "i". Timings are printed (pytest -s).
"""

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from cluster import Cluster, free_port
from conftest import ROOT, SERVER_ENV, installing, wait_until

OLD, NEW = 15, 18
DONE = {1: "succeeded", 2: "succeeded", 3: "dead", 4: "failed", 5: "succeeded"}
PENDING = [6, 7, 8, 9, 10, 11, 12, 13]
CHAIN = [5, 11, 12, 13]  # ordering_key 'order-42': 5 was sent by the old server
QUEUE = """
SELECT aws_lambda.invoke_on_commit(%(function)s, json_build_object('i', %(i)s::int),
                                   invocation_type => %(type)s, ordering_key => %(key)s)
"""


def built_and_installed(major, tmp_path_factory):
    """The bin directory of scripts/postgres MAJOR, with aws_lambda installed into it by
    make install PG_CONFIG=<bindir>/pg_config."""
    with installing():
        return _built_and_installed(major, tmp_path_factory)


def _built_and_installed(major, tmp_path_factory):
    started = time.monotonic()
    built = subprocess.run([os.path.join(ROOT, "scripts", "postgres"), str(major)],
                           capture_output=True, text=True)
    if built.returncode != 0:
        said = [line for line in built.stderr.splitlines() if line.startswith("postgres: ")]
        why = (said or built.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.fail(f"needs PostgreSQL {major} built from source, and scripts/postgres {major} "
                    f"could not build it: {why}")
    bindir = built.stdout.strip().splitlines()[-1]
    pg_config = os.path.join(bindir, "pg_config")
    # make install from a copy of the tree: build/ is then made for this pg_config alone.
    source = tmp_path_factory.mktemp(f"aws_lambda_for_{major}")
    shutil.copytree(ROOT, source, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "wheelhouse", "__pycache__", ".pytest_cache"))
    installed = subprocess.run(["make", "install", f"PG_CONFIG={pg_config}"], cwd=source,
                               capture_output=True, text=True)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    sharedir = subprocess.run([pg_config, "--sharedir"], capture_output=True, text=True,
                              check=True).stdout.strip()
    with open(os.path.join(sharedir, "extension", "aws_lambda--1.0.sql")) as script:
        python_directory = os.path.join(sharedir, "aws_lambda", "python")
        assert f'sys.path.insert(0, "{python_directory}")' in script.read()
    print(f"\nPostgreSQL {major}: built and aws_lambda installed in "
          f"{time.monotonic() - started:.1f} s")
    return bindir


@pytest.fixture(scope="session")
def old_bindir(tmp_path_factory):
    return built_and_installed(OLD, tmp_path_factory)


@pytest.fixture(scope="session")
def new_bindir(tmp_path_factory):
    return built_and_installed(NEW, tmp_path_factory)


@pytest.fixture
def servers(emulator):
    """servers(bindir): a cluster of that PostgreSQL (not yet initdb'd) configured as
    fixture.cluster configures one; all are stopped and removed after the test."""
    made = []

    def make(bindir):
        pg = Cluster(conf={"aws_lambda.endpoint_override": f"'{emulator.url}'"},
                     env=SERVER_ENV, bin_directory=bindir)
        made.append(pg)
        return pg

    emulator.reset()
    yield make
    for pg in made:
        pg.stop()


def queue(conn, i, function="echo", invocation_type="Event", ordering_key=None):
    return conn.execute(QUEUE, {"function": function, "i": i, "type": invocation_type,
                                "key": ordering_key}).fetchone()[0]


def deliveries(conn):
    return conn.execute("SELECT * FROM aws_lambda.deliveries ORDER BY id").fetchall()


def status_per_i(conn):
    return dict(conn.execute("SELECT (payload ->> 'i')::int, status FROM aws_lambda.deliveries"))


def sent_per_i(emulator):
    """How many requests the endpoint received for each payload "i"."""
    return collections.Counter(json.loads(r.body)["i"] for r in emulator.requests)


def sent_in_order(emulator, wanted):
    return [i for i in (json.loads(r.body)["i"] for r in emulator.requests) if i in wanted]


def old_server_with_a_queue(pg, emulator):
    """Database shop on the old server: deliveries 1 to 5 done (see DONE), 6 to 13 pending.
    Returns aws_lambda.deliveries as it then is, row by row."""
    pg.start()
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE shop")
    with psycopg.connect(pg.dsn("shop"), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION aws_lambda CASCADE")
        queue(conn, 1)
        queue(conn, 2)
        queue(conn, 3, function="no-such-function")  # 404: dead at once
        queue(conn, 4, function="fail", invocation_type="RequestResponse")  # raises: failed
        queue(conn, 5, ordering_key="order-42")
        conn.execute("CALL aws_lambda.deliver()")
        for i in PENDING:
            queue(conn, i, ordering_key="order-42" if i in CHAIN else None)
        assert status_per_i(conn) == {**DONE, **{i: "pending" for i in PENDING}}
        rows = deliveries(conn)
    assert sent_per_i(emulator) == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
    emulator.reset()  # from here on the endpoint counts what the new server sends
    return rows


def assert_each_pending_one_sent_once(conn, emulator):
    assert sent_per_i(emulator) == {i: 1 for i in PENDING}
    assert sent_in_order(emulator, CHAIN) == [11, 12, 13]
    assert status_per_i(conn) == {**DONE, **{i: "succeeded" for i in PENDING}}


def test_pg_dump_of_the_old_server_restores_and_the_new_one_sends_what_was_pending(
        old_bindir, new_bindir, servers, emulator, tmp_path):
    old = servers(old_bindir)
    before = old_server_with_a_queue(old, emulator)

    # Dump with the NEW major's pg_dump (stop relays first: nothing sends from here on).
    dump = str(tmp_path / "shop.dump")
    started = time.monotonic()
    subprocess.run([os.path.join(new_bindir, "pg_dump"), "-h", old.socket_dir,
                    "-p", str(old.port), "-U", "postgres", "-Fc", "-f", dump, "shop"],
                   check=True, capture_output=True, text=True)
    old.shutdown()

    new = servers(new_bindir).start()
    restored = subprocess.run(
        [os.path.join(new_bindir, "pg_restore"), "-h", new.socket_dir, "-p", str(new.port),
         "-U", "postgres", "--create", "--exit-on-error", "-d", "postgres", dump],
        capture_output=True, text=True)
    assert restored.returncode == 0, restored.stderr
    print(f"\npg_dump {OLD} and pg_restore into {NEW}: {time.monotonic() - started:.1f} s")

    with psycopg.connect(new.dsn("shop"), autocommit=True) as conn:
        assert deliveries(conn) == before  # the whole log, row by row
        conn.execute("CALL aws_lambda.deliver()")
        assert_each_pending_one_sent_once(conn, emulator)

        # The id sequence goes on after the restored ids.
        new_id = queue(conn, 14)
        assert new_id > max(row[0] for row in before)
        conn.execute("CALL aws_lambda.deliver()")
        assert sent_per_i(emulator)[14] == 1
        assert status_per_i(conn)[14] == "succeeded"
    assert set(sent_per_i(emulator).values()) == {1}


def test_pg_upgrade_keeps_the_queue_and_the_new_server_sends_what_was_pending(
        old_bindir, new_bindir, servers, emulator, tmp_path):
    old = servers(old_bindir)
    before = old_server_with_a_queue(old, emulator)
    old.shutdown()  # cleanly: pg_upgrade needs both clusters stopped

    # 18 turns data checksums on by default; 15 did not: pg_upgrade needs both alike.
    new = servers(new_bindir).start(initdb_options=["--no-data-checksums"])
    new.shutdown()
    started = time.monotonic()
    upgraded = subprocess.run(
        [os.path.join(new_bindir, "pg_upgrade"), "-b", old.bindir, "-B", new.bindir,
         "-d", old.data, "-D", new.data, "-U", "postgres", "--socketdir", new.socket_dir,
         "-p", str(free_port()), "-P", str(free_port()), "--no-sync"],
        user=new.os_user, cwd=new.root,  # as the clusters' OS user, in a directory it can write
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
        capture_output=True, text=True)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr + upgrade_logs(new)
    print(f"\npg_upgrade {OLD} to {NEW}: {time.monotonic() - started:.1f} s")
    new.restart()  # the upgraded cluster, started for the first time

    with psycopg.connect(new.dsn("shop"), autocommit=True) as conn:
        assert deliveries(conn) == before  # the whole log, row by row
        with open(tmp_path / "relay.log", "w") as log:
            relay = subprocess.Popen(
                [sys.executable, "-m", "plpy_lambda.relay", "--dsn", new.dsn("shop")],
                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: "pending" not in status_per_i(conn).values(), 30,
                       "the relay sent every pending delivery")
            assert_each_pending_one_sent_once(conn, emulator)

            # The id sequence goes on after the ids the old server handed out.
            new_id = queue(conn, 14)
            assert new_id > max(row[0] for row in before)
            wait_until(lambda: status_per_i(conn)[14] == "succeeded", 10, "14 is sent")
        finally:
            relay.send_signal(signal.SIGTERM)
            assert relay.wait(15) == 0, (tmp_path / "relay.log").read_text()
        assert sent_per_i(emulator) == {**{i: 1 for i in PENDING}, 14: 1}

        # pg_upgrade carried the extensions over at their versions: nothing to update.
        notices = []
        conn.add_notice_handler(lambda notice: notices.append(notice.message_primary))
        conn.execute("ALTER EXTENSION aws_lambda UPDATE")
        assert notices == ['version "1.0" of extension "aws_lambda" is already installed']
        assert dict(conn.execute("SELECT extname, extversion FROM pg_extension "
                                 "WHERE extname LIKE 'aws%'")) == {
            "aws_commons": "1.2", "aws_lambda": "1.0"}
        answer = conn.execute("SELECT status_code, payload FROM aws_lambda.invoke("
                              "'echo', '{\"i\": 15}'::json)").fetchone()
        assert answer[0] == 200 and answer[1]["event"] == {"i": 15}


def upgrade_logs(new):
    """What pg_upgrade left in the new data directory when it failed."""
    logs = []
    for directory, _, files in os.walk(os.path.join(new.data, "pg_upgrade_output.d")):
        for name in files:
            with open(os.path.join(directory, name), errors="replace") as f:
                logs.append(f"--- {name}\n{f.read()[-3000:]}")
    return "\n".join(logs)
