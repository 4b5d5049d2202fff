"""Replicas, failover and logical replication: real clusters, each started here.

- A streaming hot standby (pg_basebackup of the primary): invoke and invoke_many work there;
  everything that queues fails with SQLSTATE 25006 and our own message.
- Failover: a relay given both hosts (target_session_attrs=read-write) follows the standby
  that is promoted after the primary is killed mid-delivery; with synchronous replication
  nothing committed is lost, and only what was in flight is sent again.
- Logical replication: a publication FOR ALL TABLES copies aws_lambda.deliveries to a
  subscriber that has the extension too; the subscriber's relay sends only its own.
"""

import collections
import json
import time

import psycopg
import pytest

import fixture
from cluster import Cluster
from conftest import wait_until
from test_relay import relays  # noqa: F401 (a fixture)

QUEUE = """
SELECT aws_lambda.invoke_on_commit('echo', json_build_object('i', i, 'on', %s::text),
                                   invocation_type => 'RequestResponse')
FROM generate_series(%s::int, %s::int) AS i
"""


@pytest.fixture(scope="module")
def endpoint():
    with fixture.endpoint() as emu:
        yield emu


def server_conf(emu, **more):
    return {"aws_lambda.endpoint_override": f"'{emu.url}'", **more}


@pytest.fixture
def servers():
    """servers(cluster) registers a cluster to stop after the test; returns it."""
    started = []

    def register(cluster):
        started.append(cluster)
        return cluster

    yield register
    for cluster in reversed(started):
        cluster.stop()


def standby_of(primary, emu, servers, **conf):
    standby = servers(Cluster(env=fixture.SERVER_ENV))
    return standby.start_standby(primary, conf=server_conf(emu, **conf))


def wait_for_replay(primary, standby):
    """Until the standby has replayed everything the primary wrote so far."""
    with psycopg.connect(primary.dsn(), autocommit=True) as conn:
        lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    with psycopg.connect(standby.dsn(), autocommit=True) as conn:
        wait_until(lambda: conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                                        (lsn,)).fetchone()[0], 20, "the standby replays")


def sent(emu, function, server):
    """How many requests the endpoint received for each payload "i" queued on server."""
    return collections.Counter(
        body["i"] for body in (json.loads(r.body) for r in emu.requests if r.function == function)
        if body.get("on") == server)


def statuses(conn, where="true"):
    return dict(conn.execute(
        f"SELECT status, count(*) FROM aws_lambda.deliveries WHERE {where} GROUP BY status"
    ).fetchall())


# Hot standby

@pytest.fixture(scope="module")
def hot_standby(endpoint):
    primary = fixture.cluster(endpoint.url)
    standby = Cluster(env=fixture.SERVER_ENV)
    try:
        with psycopg.connect(primary.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE orders (id int PRIMARY KEY, state text)")
            conn.execute("CREATE TRIGGER orders_to_lambda AFTER INSERT OR UPDATE ON orders "
                         "FOR EACH ROW EXECUTE FUNCTION aws_lambda.invoke_on_commit_trigger('echo')")
            conn.execute("SELECT aws_lambda.invoke_on_commit('fail', '{}'::json, "
                         "invocation_type => 'RequestResponse')")
            conn.execute("CALL aws_lambda.deliver()")  # delivery 1 fails: redeliver() takes it
        standby.start_standby(primary, conf=server_conf(endpoint))
        wait_for_replay(primary, standby)
        yield standby
    finally:
        standby.stop()
        primary.stop()


def test_invoke_and_invoke_many_work_on_a_hot_standby(hot_standby, endpoint):
    endpoint.reset()
    with psycopg.connect(hot_standby.dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        assert conn.execute(
            "SELECT status_code, payload -> 'event' ->> 'n' "
            "FROM aws_lambda.invoke('echo', '{\"n\": 1}'::json)").fetchone() == (200, "1")
        assert conn.execute(
            "SELECT ordinality, status_code, payload -> 'event' ->> 'n' FROM aws_lambda.invoke_many("
            "'echo', ARRAY['{\"n\": 2}', '{\"n\": 3}']::jsonb[])").fetchall() == [
            (1, 200, "2"), (2, 200, "3")]
    assert len(endpoint.requests) == 3


STANDBY_HINT = "Run it on the primary. aws_lambda.invoke and aws_lambda.invoke_many work on a standby."


@pytest.mark.parametrize("statement, detail_names, hint", [
    ("SELECT aws_lambda.invoke_on_commit('echo', '{}'::json)", "invoke_on_commit", STANDBY_HINT),
    ("SELECT aws_lambda.invoke_on_commit('echo', '{}'::jsonb, region => 'us-east-1', "
     "ordering_key => 'k')", "invoke_on_commit", STANDBY_HINT),
    ("SET aws_lambda.events_after_commit = on; "
     "SELECT * FROM aws_lambda.invoke('echo', '{}'::json, invocation_type => 'Event')",
     "invoke_on_commit", "aws_lambda.events_after_commit is on, so invoke(..., invocation_type "
     "=> 'Event') queues. SET aws_lambda.events_after_commit = off to invoke at once on a standby."),
    ("CALL aws_lambda.deliver()", "deliver",
     "Run the relay or pg_cron job against the primary: a relay given every host with "
     "target_session_attrs=read-write finds it. aws_lambda.invoke and aws_lambda.invoke_many "
     "work on a standby."),
    ("SELECT aws_lambda.redeliver(1)", "redeliver", STANDBY_HINT),
])
def test_what_queues_fails_on_a_hot_standby_with_25006(hot_standby, endpoint, statement,
                                                       detail_names, hint):
    endpoint.reset()
    with psycopg.connect(hot_standby.dsn(), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction) as caught:
            for part in statement.split("; "):
                conn.execute(part)
        diag = caught.value.diag
        assert diag.sqlstate == "25006"
        assert diag.message_primary == "aws_lambda: queueing needs the primary"
        assert diag.message_detail == (f"aws_lambda.{detail_names} writes aws_lambda.deliveries, "
                                       "and this server is a hot standby (read-only).")
        assert diag.message_hint == hint
        assert "Traceback" not in str(caught.value) and "spiexceptions" not in str(caught.value)
        # The session goes on.
        assert conn.execute("SELECT status_code FROM aws_lambda.invoke('echo', '{}'::json)"
                            ).fetchone() == (200,)
    assert [r.function for r in endpoint.requests] == ["echo"]  # only the last invoke was sent


def test_the_trigger_cannot_fire_on_a_hot_standby_whose_tables_are_read_only(hot_standby):
    """A row trigger fires only on a write, and a standby refuses every write first:
    PostgreSQL's own 25006, before aws_lambda is reached."""
    with psycopg.connect(hot_standby.dsn(), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction) as caught:
            conn.execute("INSERT INTO orders VALUES (1, 'new')")
        assert caught.value.diag.message_primary == "cannot execute INSERT in a read-only transaction"


# Failover

def test_a_relay_given_both_hosts_follows_the_promoted_standby_and_loses_nothing(
        endpoint, servers, relays):
    """Synchronous replication; the primary is killed while a batch is in flight and the
    standby promoted. Everything committed is sent; what the old primary had recorded as
    sent is not sent again; only the batch in flight may be."""
    endpoint.reset()
    primary = servers(fixture.cluster(endpoint.url))
    standby = standby_of(primary, endpoint, servers)
    with psycopg.connect(primary.dsn(), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
        conn.execute("SELECT pg_reload_conf()")
        wait_until(lambda: conn.execute("SELECT sync_state FROM pg_stat_replication"
                                        ).fetchall() == [("sync",)], 10, "the standby is synchronous")
    both = (f"host={primary.socket_dir},{standby.socket_dir} port={primary.port},{standby.port} "
            "dbname=postgres user=postgres target_session_attrs=read-write connect_timeout=2")
    relay = relays(both, "--max-concurrency", "10")
    with psycopg.connect(primary.dsn(), autocommit=True) as conn:
        conn.execute(
            "SELECT aws_lambda.invoke_on_commit('sleep', json_build_object('seconds', 0.05, "
            "'i', i, 'on', 'failover'), invocation_type => 'RequestResponse') "
            "FROM generate_series(1, 300) AS i")
    wait_until(lambda: len(endpoint.requests) >= 120, 30, "more than a batch was sent")
    primary.crash()
    relay.wait_for_log("connection failed", timeout=10)
    with psycopg.connect(standby.dsn(), autocommit=True) as conn:
        # synchronous_commit = on waits for the standby's flush; let it replay what it has
        # (its replay position stops moving).
        replayed = []

        def replay_settled():
            replayed.append(conn.execute("SELECT pg_last_wal_replay_lsn()").fetchone()[0])
            time.sleep(0.2)
            return len(replayed) > 1 and replayed[-1] == replayed[-2]
        wait_until(replay_settled, 10, "the standby replays what it received")
        recorded = {int(i) for (i,) in conn.execute(
            "SELECT payload->>'i' FROM aws_lambda.deliveries WHERE status = 'succeeded'")}
    assert len(recorded) >= 100  # at least one batch was recorded before the crash
    standby.promote()
    relay.wait_for_log("listening on aws_lambda_deliveries", timeout=30, count=2)
    with psycopg.connect(standby.dsn(), autocommit=True) as conn:
        wait_until(lambda: statuses(conn) == {"succeeded": 300}, 60, "every delivery succeeded")
    assert relay.process.poll() is None  # the same relay process throughout
    counts = sent(endpoint, "sleep", "failover")
    twice = sorted(i for i, n in counts.items() if n > 1)
    print(f"\nfailover: 0 of 300 lost, {len(twice)} sent again (in flight at the crash)")
    assert sorted(counts) == list(range(1, 301))  # nothing lost
    assert not set(twice) & recorded  # nothing the old primary recorded is sent again
    assert max(counts.values()) <= 2 and len(twice) <= 100  # at most the batch in flight


# Logical replication

def test_a_subscriber_keeps_the_publishers_deliveries_and_sends_only_its_own(
        endpoint, servers, relays):
    endpoint.reset()
    publisher = servers(fixture.cluster(endpoint.url, conf={"wal_level": "logical"}))
    subscriber = servers(fixture.cluster(endpoint.url))
    with psycopg.connect(publisher.dsn(), autocommit=True) as pub, \
            psycopg.connect(subscriber.dsn(), autocommit=True) as sub:
        # The subscriber queued before it subscribed: its ids start at 1, as the publisher's.
        sub.execute(QUEUE, ("subscriber", 1, 5))
        pub.execute(QUEUE, ("publisher", 1, 20))
        pub.execute("CREATE PUBLICATION everything FOR ALL TABLES")
        sub.execute(f"CREATE SUBSCRIPTION from_publisher CONNECTION '{publisher.dsn()}' "
                    "PUBLICATION everything")
        relays(publisher.dsn())
        relays(subscriber.dsn())
        pub.execute(QUEUE, ("publisher", 21, 40))
        sub.execute(QUEUE, ("subscriber", 6, 10))

        def settled():
            return (statuses(pub) == {"succeeded": 40}
                    and statuses(sub, "replicated") == {"succeeded": 40}
                    and statuses(sub, "NOT replicated") == {"succeeded": 10})
        wait_until(settled, 30, "both sides delivered, and the publisher's outcomes reached "
                                "the subscriber")
        # Both sides hand out the same ids; (id, origin) tells the rows apart.
        origins = dict(sub.execute(
            "SELECT replicated, array_agg(DISTINCT origin) FROM aws_lambda.deliveries "
            "GROUP BY replicated").fetchall())
        publisher_id = pub.execute("SELECT aws_lambda_internal._system_identifier()").fetchone()[0]
        subscriber_id = sub.execute("SELECT aws_lambda_internal._system_identifier()").fetchone()[0]
        assert origins == {True: [publisher_id], False: [subscriber_id]}
        assert sub.execute("SELECT count(*) FROM aws_lambda.deliveries AS a "
                           "JOIN aws_lambda.deliveries AS b USING (id) "
                           "WHERE a.replicated AND NOT b.replicated").fetchone()[0] >= 5
        # Each side counts its own: the counts the publisher keeps came along, marked replicated.
        counted = dict(sub.execute("SELECT status, deliveries FROM aws_lambda.delivery_status()").fetchall())
        assert counted["succeeded"] == 10
        assert sub.execute("SELECT count(*) FROM aws_lambda_internal.delivery_counts WHERE replicated"
                           ).fetchone()[0] >= 1
        assert dict(pub.execute("SELECT status, deliveries FROM aws_lambda.delivery_status()").fetchall()
                    )["succeeded"] == 40
        # A replicated delivery is the publisher's: not redelivered here.
        with pytest.raises(psycopg.errors.NoDataFound):
            sub.execute("SELECT aws_lambda.redeliver(id) FROM aws_lambda.deliveries "
                        "WHERE replicated AND id > 10 LIMIT 1")
        # The subscription kept applying: a new delivery on the publisher still arrives.
        pub.execute("SELECT aws_lambda.invoke_on_commit('echo', '{\"i\": 99, \"on\": \"late\"}'::json)")
        wait_until(lambda: sub.execute("SELECT count(*) FROM aws_lambda.deliveries "
                                       "WHERE payload->>'on' = 'late'").fetchone()[0] == 1,
                   20, "the publisher's new delivery reaches the subscriber")
        assert sub.execute("SELECT count(*) FROM pg_stat_subscription "
                           "WHERE subname = 'from_publisher' AND pid IS NOT NULL").fetchone()[0] >= 1
        sub.execute("DROP SUBSCRIPTION from_publisher")
    assert sent(endpoint, "echo", "publisher") == {i: 1 for i in range(1, 41)}
    assert sent(endpoint, "echo", "subscriber") == {i: 1 for i in range(1, 11)}
    log = subscriber.server_log()
    assert "duplicate key" not in log and "conflict" not in log


def test_a_pending_delivery_of_a_retired_publisher_is_handed_over_by_queueing_it_anew(
        endpoint, servers):
    """docs/operating.md's blue/green hand-over: what the old server left pending is queued on the
    new one, which sends it once."""
    endpoint.reset()
    publisher = servers(fixture.cluster(endpoint.url, conf={"wal_level": "logical"}))
    subscriber = servers(fixture.cluster(endpoint.url))
    with psycopg.connect(publisher.dsn(), autocommit=True) as pub, \
            psycopg.connect(subscriber.dsn(), autocommit=True) as sub:
        pub.execute("CREATE PUBLICATION everything FOR ALL TABLES")
        sub.execute(f"CREATE SUBSCRIPTION from_publisher CONNECTION '{publisher.dsn()}' "
                    "PUBLICATION everything")
        pub.execute(QUEUE, ("retired", 1, 3))  # no deliverer on the old server
        wait_until(lambda: statuses(sub, "replicated") == {"pending": 3}, 20,
                   "the pending deliveries reach the new server")
        sub.execute("CALL aws_lambda.deliver()")
        assert sent(endpoint, "echo", "retired") == {}  # the new server does not send them
        sub.execute("DROP SUBSCRIPTION from_publisher")
        sub.execute("""
            SELECT aws_lambda.invoke_on_commit(function_name, payload, region, invocation_type,
                                               log_type, context, qualifier, ordering_key)
            FROM aws_lambda.deliveries WHERE replicated AND status = 'pending' ORDER BY id""")
        sub.execute("CALL aws_lambda.deliver()")
        assert statuses(sub, "NOT replicated") == {"succeeded": 3}
    assert sent(endpoint, "echo", "retired") == {1: 1, 2: 1, 3: 1}


def test_a_row_trigger_on_a_replicated_table_queues_on_the_publisher_only(endpoint, servers):
    """The application's tables replicate too. The apply worker fires no ordinary trigger,
    so the subscriber's invoke_on_commit_trigger does not queue the publisher's changes a
    second time: the one delivery is the publisher's, copied as replicated."""
    endpoint.reset()
    publisher = servers(fixture.cluster(endpoint.url, conf={"wal_level": "logical"}))
    subscriber = servers(fixture.cluster(endpoint.url))
    orders = ("CREATE TABLE orders (id int PRIMARY KEY, state text); "
              "CREATE TRIGGER orders_to_lambda AFTER INSERT OR UPDATE ON orders FOR EACH ROW "
              "EXECUTE FUNCTION aws_lambda.invoke_on_commit_trigger('echo')")
    with psycopg.connect(publisher.dsn(), autocommit=True) as pub, \
            psycopg.connect(subscriber.dsn(), autocommit=True) as sub:
        for conn in (pub, sub):
            for statement in orders.split("; "):
                conn.execute(statement)
        pub.execute("CREATE PUBLICATION everything FOR ALL TABLES")
        sub.execute(f"CREATE SUBSCRIPTION from_publisher CONNECTION '{publisher.dsn()}' "
                    "PUBLICATION everything")
        pub.execute("INSERT INTO orders VALUES (42, 'paid')")
        wait_until(lambda: sub.execute("SELECT count(*) FROM orders").fetchone() == (1,)
                   and statuses(sub, "replicated") == {"pending": 1}, 20,
                   "the order and its delivery reach the subscriber")
        assert statuses(sub, "NOT replicated") == {}
        sub.execute("CALL aws_lambda.deliver()")
        pub.execute("CALL aws_lambda.deliver()")
        sub.execute("DROP SUBSCRIPTION from_publisher")
    assert [json.loads(r.body)["record"] for r in endpoint.requests] == [{"id": 42, "state": "paid"}]
