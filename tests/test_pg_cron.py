"""The pg_cron recipe for commit-time delivery, on a real pg_cron.

A cluster of its own, configured as an operator would for pg_cron (preloaded,
background workers, its database), with a login role `relay` that may only run
aws_lambda.deliver(). That role schedules exactly the recipe:

    SELECT cron.schedule('aws_lambda deliveries', '* * * * *',
                         $$CALL aws_lambda.deliver(run_for => interval '55 seconds')$$);

pg_cron before 1.5 schedules by the minute only, so the test waits for the next
minute boundary (up to about a minute). Skipped when pg_cron is not installed.
"""

import json
import os
import subprocess
import time

import psycopg
import pytest

import fixture

RECIPE = "CALL aws_lambda.deliver(run_for => interval '55 seconds')"
ONCE = "CALL aws_lambda.deliver()"


def pg_cron_installed():
    libdir = subprocess.run(["pg_config", "--pkglibdir"], capture_output=True, text=True,
                            check=True).stdout.strip()
    return os.path.exists(os.path.join(libdir, "pg_cron.so"))


pytestmark = pytest.mark.skipif(not pg_cron_installed(),
                                reason="pg_cron is not installed (postgresql-<major>-cron)")


@pytest.fixture(scope="module")
def cron_cluster(emulator):
    pg = fixture.cluster(emulator.url, conf={
        "shared_preload_libraries": "'pg_cron'",
        "cron.database_name": "'postgres'",
        "cron.use_background_workers": "on",
        "max_worker_processes": "20",
    })
    try:
        pg.psql("""
            CREATE EXTENSION pg_cron;
            CREATE ROLE relay LOGIN;
            GRANT USAGE ON SCHEMA aws_lambda TO relay;
            GRANT EXECUTE ON PROCEDURE aws_lambda.deliver TO relay;
            GRANT USAGE ON SCHEMA cron TO relay;
        """, check=True)
        yield pg
    finally:
        pg.stop()


def queue(conn, marker, count):
    """Queue `count` Event invocations of echo in one transaction; returns their ids."""
    with conn.transaction():
        return [conn.execute("SELECT aws_lambda.invoke_on_commit('echo', %s::json)",
                             (json.dumps({"marker": marker, "i": i}),)).fetchone()[0]
                for i in range(count)]


def wait_delivered(conn, ids, deadline):
    """Poll until every delivery in ids succeeded; returns when (time.monotonic())."""
    while True:
        statuses = dict(conn.execute("SELECT id, status FROM aws_lambda.deliveries WHERE id = ANY(%s)",
                                     (ids,)).fetchall())
        if all(statuses.get(i) == "succeeded" for i in ids):
            return time.monotonic()
        if time.monotonic() > deadline:
            runs = conn.execute("SELECT jobid, status, return_message FROM cron.job_run_details "
                                "ORDER BY runid").fetchall()
            pytest.fail(f"not delivered in time: {statuses}; pg_cron's runs: {runs}")
        time.sleep(0.05)


def received(emulator, marker):
    return sorted(json.loads(r.body)["i"] for r in emulator.requests
                  if r.function == "echo" and json.loads(r.body or b"{}").get("marker") == marker)


def test_pg_cron_runs_the_delivery_recipe(cron_cluster, emulator):
    emulator.reset()
    with psycopg.connect(cron_cluster.dsn(), autocommit=True) as db, \
            psycopg.connect(cron_cluster.dsn(user="relay"), autocommit=True) as relay:
        # Not within a breath of a minute boundary, so that pg_cron has loaded the job by then.
        if time.time() % 60 > 57:
            time.sleep(60 - time.time() % 60 + 0.5)
        # The recipe, scheduled by the role that delivers: the job runs as that role.
        (job,) = relay.execute("SELECT cron.schedule('aws_lambda deliveries', '* * * * *', "
                               "$$" + RECIPE + "$$)").fetchone()
        # A second job that delivers once and ends, to see a finished run.
        (once,) = relay.execute("SELECT cron.schedule('aws_lambda deliveries, once', '* * * * *', "
                                "$$" + ONCE + "$$)").fetchone()
        assert db.execute("SELECT username, database FROM cron.job WHERE jobid = %s",
                          (job,)).fetchone() == ("relay", "postgres")

        # Queued before the job's first run: sent at the next minute boundary.
        first = queue(db, "before", 3)
        next_minute = time.monotonic() + 60 - time.time() % 60
        wait_delivered(db, first, next_minute + 15)
        assert received(emulator, "before") == [0, 1, 2]

        # The one-shot run ends; the recipe's run goes on looking for work.
        deadline = time.monotonic() + 10
        while db.execute("SELECT status FROM cron.job_run_details WHERE jobid = %s",
                         (once,)).fetchone() not in [("succeeded",), ("failed",)]:
            assert time.monotonic() < deadline, "the one-shot run did not end"
            time.sleep(0.1)

        # Queued while the recipe's run is polling: sent within a couple of seconds.
        second = queue(db, "during", 3)
        committed = time.monotonic()
        delay = wait_delivered(db, second, committed + 5) - committed
        assert delay < 2.5, f"delivered {delay:.2f} s after commit"
        assert received(emulator, "during") == [0, 1, 2]

        runs = db.execute("SELECT jobid, status, coalesce(return_message, '') FROM cron.job_run_details "
                          "ORDER BY runid").fetchall()
        assert (job, "running", "") in runs, runs
        assert (once, "succeeded", "CALL") in runs, runs
        assert not [r for r in runs if r[1] == "failed"], runs
    log = cron_cluster.server_log()
    assert "invalid transaction termination" not in log, log
    assert "permission denied" not in log, log
