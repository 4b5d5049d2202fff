"""Commit-time delivery: what queueing with invoke_on_commit adds to a transaction, how fast one
CALL aws_lambda.deliver() sends to the local emulator, and commit-to-endpoint latency with one
relay. (deliver()'s rates against nginx are in the throughput section.)"""

import json
import time

from .common import expect_count, median, ms, ratio, rate, section, table, timed
from .endpoints import RelayProcess
from .throughput import deliver_rate

LATENCY_RATE = 100  # commits per second in the commit-to-endpoint measurement
PLAIN_ONE = "INSERT INTO bench_plain (payload) VALUES (%s::json)"
QUEUED_ONE = "INSERT INTO bench_queued (payload) VALUES (%s::json)"
BULK = {  # one statement of n rows
    "plain": "INSERT INTO bench_plain (payload) SELECT json_build_object('i', g) FROM generate_series(1, %s) g",
    "rows": "INSERT INTO bench_rows (function_name, invocation_type, log_type, payload, queued_by) "
            "SELECT 'echo', 'Event', 'None', json_build_object('i', g), current_user FROM generate_series(1, %s) g",
    "queue": "SELECT count(aws_lambda.invoke_on_commit('echo', json_build_object('i', g))) "
             "FROM generate_series(1, %s) g",
    "trigger": "INSERT INTO bench_queued (payload) SELECT json_build_object('i', g) FROM generate_series(1, %s) g",
}
MANY_EVENTS = ("SELECT count(*) FROM aws_lambda.invoke_many('noop', (SELECT array_agg(json_build_object('i', g)) "
               "FROM generate_series(1, %s) g), invocation_type => 'Event', max_concurrency => 32) "
               "WHERE status_code BETWEEN 200 AND 299")


def run(bench):
    section("Commit-time delivery: queueing with invoke_on_commit, and sending with deliver()")
    queueing_cost(bench)
    print()
    with bench.pointed_at(bench.emulator.url):
        emulator_rate(bench)
    print()
    commit_latency(bench)


def queueing_cost(bench):
    n, rows = bench.count("queue_statements"), bench.count("queue_bulk_rows")
    repeats = bench.count("queue_bulk_repeats")
    one = [[], [], []]  # plain, queued, SELECT 1
    with bench.connect() as conn:
        # Ordinary (logged) tables, as aws_lambda.deliveries is: a temporary table writes no WAL.
        for name in ("bench_plain", "bench_queued"):
            conn.execute(f"CREATE TABLE {name} (id bigserial PRIMARY KEY, payload json)")
        conn.execute("CREATE TABLE bench_rows (LIKE aws_lambda.deliveries INCLUDING ALL)")
        conn.execute("CREATE TRIGGER bench_queue AFTER INSERT ON bench_queued FOR EACH ROW "
                     "EXECUTE FUNCTION aws_lambda.invoke_on_commit_trigger('echo')")
        with conn.transaction(force_rollback=True):  # warm-up: plans, caches
            for i in range(50):
                conn.execute(PLAIN_ONE, ('{"i": %d}' % i,), prepare=True)
                conn.execute(QUEUED_ONE, ('{"i": %d}' % i,), prepare=True)
            for sql in BULK.values():
                conn.execute(sql, (100,))
        # One row per statement, alternately, in rolled-back transactions of 500 statements.
        for start in range(0, n, 500):
            with conn.transaction(force_rollback=True):
                for times, more in zip(one, timed(
                        lambda: conn.execute(PLAIN_ONE, ('{"i": 1}',), prepare=True),
                        lambda: conn.execute(QUEUED_ONE, ('{"i": 1}',), prepare=True),
                        lambda: conn.execute("SELECT 1", prepare=True), rounds=min(500, n - start))):
                    times += more

        def rolled_back(sql):
            def run():
                with conn.transaction(force_rollback=True):
                    conn.execute(sql, (rows,))
            return run

        bulk = dict(zip(BULK, timed(*(rolled_back(sql) for sql in BULK.values()), rounds=repeats)))
        conn.execute("DROP TABLE bench_plain, bench_queued, bench_rows")
        (left,) = conn.execute("SELECT count(*) FROM aws_lambda.deliveries").fetchone()
        assert left == 0, f"{left} deliveries left behind by rolled-back transactions"
    plain, queued, select = (median(times) for times in one)
    many = {name: median(values) for name, values in bulk.items()}
    best = {name: min(values) for name, values in bulk.items()}
    table(["queueing inside a transaction (rolled back)", "median", "best", "vs baseline"], [
        ["one-row INSERT, plain table (no trigger)", ms(plain), ms(min(one[0])), "1.00 x"],
        ["one-row INSERT, table with invoke_on_commit_trigger('echo')", ms(queued), ms(min(one[1])),
         ratio(queued, plain)],
        ["  (SELECT 1 round trip, for reference)", ms(select), ms(min(one[2])), ""],
        [f"INSERT ... SELECT of the same {rows:,} rows, table like aws_lambda.deliveries", ms(many["rows"]),
         ms(best["rows"]), "1.00 x"],
        [f"SELECT count(invoke_on_commit('echo', ...)) over {rows:,} rows", ms(many["queue"]), ms(best["queue"]),
         ratio(many["queue"], many["rows"])],
        [f"  (INSERT ... SELECT of {rows:,} payloads, plain table)", ms(many["plain"]), ms(best["plain"]),
         ratio(many["queue"], many["plain"])],
        [f"INSERT ... SELECT of {rows:,} rows, table with the trigger", ms(many["trigger"]), ms(best["trigger"]),
         ratio(many["trigger"], many["plain"])],
    ])
    print(f"  One row per statement: {n:,} statements of each kind from one psycopg connection, run alternately, "
          f"each timed; median. {rows:,} rows in one statement: {repeats} runs of each, alternately, each in a "
          "transaction rolled back; median (best beside it). Plain tables: (id bigserial primary key, payload "
          "json); the trigger: AFTER INSERT ... FOR EACH ROW; the baseline of invoke_on_commit inserts the rows it "
          "stores into a copy of the log (same columns, defaults and indexes); all ordinary tables, as the log is.")
    bench.target("invoke_on_commit: one-row INSERT with the trigger <= 2 x without", ratio(queued, plain),
                 queued <= 2 * plain)
    bench.target(f"invoke_on_commit: {rows:,} in one statement <= 5 x an INSERT of the same rows",
                 ratio(many["queue"], many["rows"]), many["queue"] <= 5 * many["rows"])


def emulator_rate(bench):
    n, repeats = bench.count("delivery_calls"), bench.count("batch_repeats")
    with bench.connect() as conn:
        conn.add_notice_handler(lambda diagnostic: None)
        deliver_rate(conn, 50, 32, 1)  # warm-up
        delivered = deliver_rate(conn, n, 32, repeats)
        bench.emulator.reset()
        conn.execute(MANY_EVENTS, (50,))
        (sent,) = timed(lambda: expect_count(conn, MANY_EVENTS, (n,), n), rounds=repeats)
        sent = n / median(sent)
        bench.emulator.reset()
    table([f"{n:,} Event invocations of noop, local emulator (SigV4 checked)", "deliveries/s", "vs invoke_many"],
          [["CALL aws_lambda.deliver() (max_concurrency 32)", f"{delivered:,.0f}", ratio(delivered, sent)],
           ["invoke_many(..., invocation_type => 'Event', max_concurrency => 32)", f"{sent:,.0f}", "1.00 x"]])
    bench.target("deliver: one deliverer >= 1,000/s against the local emulator", rate(delivered), delivered >= 1000)


def commit_latency(bench):
    n = bench.count("latency_seconds") * LATENCY_RATE
    queue_sql = "SELECT aws_lambda.invoke_on_commit('noop', %s::json)"
    emulator = bench.emulator  # in this process: its records keep each request's body and arrival time
    with bench.pointed_at(emulator.url), bench.connect() as conn:
        conn.execute("TRUNCATE aws_lambda.deliveries")

        def sent(count, seconds):
            deadline = time.monotonic() + seconds
            while len(emulator.requests) < count:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.01)
            return True

        relay = RelayProcess(bench.cluster.dsn())
        try:
            time.sleep(0.5)
            for i in range(20):
                conn.execute(queue_sql, (json.dumps({"warm-up": i}),), prepare=True)
                time.sleep(0.01)
            assert sent(20, 15), f"the relay did not deliver; its output: {relay.output()!r}"
            time.sleep(0.2)
            emulator.reset()
            start = time.perf_counter()
            for i in range(n):
                wait = start + i / LATENCY_RATE - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                conn.execute(queue_sql, (json.dumps({"i": i, "committed": time.time()}),), prepare=True)
            elapsed = time.perf_counter() - start
            complete = sent(n, 30)
            records = emulator.requests
        finally:
            relay.stop()
        conn.execute("TRUNCATE aws_lambda.deliveries")
    latencies = sorted(record.received - json.loads(record.body)["committed"] for record in records
                       if record.function == "noop" and b"committed" in record.body)
    assert complete and len(latencies) == n, f"{len(latencies)} of {n} arrived"

    def percentile(p):
        return latencies[min(len(latencies) - 1, int(round(p / 100 * (len(latencies) - 1))))]

    p50, p99 = percentile(50), percentile(99)
    table([f"commit to endpoint, {n:,} commits at {n / elapsed:.0f}/s", "p50", "p90", "p99", "max"],
          [["one invoke_on_commit per committed statement", ms(p50), ms(percentile(90)), ms(p99), ms(latencies[-1])]])
    print(f"  Relay: {RelayProcess.label}. Each commit (autocommit, one statement) queues one Event invocation of "
          "noop whose payload carries time.time() just before it is sent; the endpoint (a local emulator in this "
          "process, SigV4 checked) records each request's arrival time. Latency = arrival - that.")
    bench.target("commit to endpoint, one relay: p50 <= 5 ms", ms(p50), p50 <= 0.005)
    bench.target("commit to endpoint, one relay: p99 <= 50 ms", ms(p99), p99 <= 0.050)
