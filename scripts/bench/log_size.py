"""The delivery log as it grows: what the operations that touch aws_lambda.deliveries cost
with 10,000 rows of history and with millions, the same backlog in each.

Each log: N rows of history (1% dead, the rest succeeded, queued over the last 30 days, one
role) and a backlog of 10,000 pending deliveries that are due; the table vacuumed and
analyzed, as autovacuum leaves it. Each operation runs in a transaction that is rolled back,
so every round sees the same log.
"""

import os
import sys
import time

from .common import median, ms, ratio, section, table, timed

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from plpy_lambda.delivery import CLAIM  # noqa: E402  the relay's claim, as deliver() runs it

BACKLOG = 10_000
DESIGN_ROWS = 1_000_000  # the log in which pruning and a partition's drop are compared
ROUNDS = 15
HISTORY = """
INSERT INTO aws_lambda.deliveries (function_name, invocation_type, log_type, payload, queued_by,
                                   status, attempts, created_at, delivered_at, status_code, request_id)
SELECT 'echo', 'Event', 'None', json_build_object('i', g), current_user,
       CASE WHEN g %% 100 = 0 THEN 'dead' ELSE 'succeeded' END, 1,
       now() - interval '30 days' + (g - 1) * (interval '30 days' / %(n)s),
       now() - interval '30 days' + (g - 1) * (interval '30 days' / %(n)s) + interval '20 ms',
       CASE WHEN g %% 100 = 0 THEN NULL ELSE 202 END, 'r-' || g
FROM generate_series(1, %(n)s) AS g
"""
# What the statement triggers would have counted, had the history been delivered.
COUNTS = """
INSERT INTO aws_lambda_internal.delivery_counts (queued_by, status, deliveries)
SELECT queued_by, status, count(*) FROM aws_lambda.deliveries WHERE status <> 'pending'
GROUP BY queued_by, status
"""
BACKLOG_ROWS = """
INSERT INTO aws_lambda.deliveries (function_name, invocation_type, log_type, payload, queued_by)
SELECT 'noop', 'Event', 'None', json_build_object('i', g), current_user
FROM generate_series(1, %(n)s) AS g
"""
PRUNE_NOW = "SELECT (aws_lambda_internal._prune_deliveries(pg_conf_load_time(), 0)).pruned"
OPERATIONS = {
    "queue one delivery (invoke_on_commit)":
        "SELECT aws_lambda.invoke_on_commit('echo', '{\"i\": 1}'::json)",
    "claim a batch of 100 (deliver()'s claim)": CLAIM.replace("$1", "100").replace("%", "%%"),
    "deliver one batch of 100 (nginx)":
        "SELECT aws_lambda_internal._deliver_batch(100, 32, NULL, NULL, pg_conf_load_time(), NULL)",
    "delivery_status()": "SELECT * FROM aws_lambda.delivery_status()",
    "prune one chunk (retention below every row's age)":
        PRUNE_NOW,
    "redeliver one dead delivery": "SELECT aws_lambda.redeliver(%(dead)s)",
}


def run(bench):
    sizes = (10_000, 100_000) if bench.quick else (10_000, 1_000_000, 10_000_000)
    section("The delivery log as it grows: each operation with N rows of history and 10,000 pending")
    with bench.connect() as conn:
        conn.add_notice_handler(lambda diagnostic: None)
        figures = {size: measure(conn, size) for size in sizes}
        designs = retention_designs(bench, conn, min(sizes[-1], DESIGN_ROWS))
        conn.execute("TRUNCATE aws_lambda.deliveries")
    smallest, largest = sizes[0], sizes[-1]
    table(["operation"] + [f"{size:,} rows" for size in sizes] + [f"{largest:,} vs {smallest:,}"],
          [[name] + [ms(figures[size][name]) for size in sizes]
           + [ratio(figures[largest][name], figures[smallest][name])] for name in OPERATIONS])
    print(f"  Median of {ROUNDS} runs of each operation, in turn, each in a transaction rolled back (the log "
          f"is the same for every run). History: 1% dead, the rest succeeded; plus {BACKLOG:,} pending and due. "
          "Pruning: with aws_lambda.delivery_retention below every history row's age. On disk, table and "
          f"indexes: {figures[largest]['bytes per row']:,} bytes per row (events of some 10 bytes).")
    print()
    table(["retention: a plain table or time partitions", "time", ""], designs)
    print("  Chunks: what deliver() runs between its batches until none is left (each commits; a claim never "
          "waits for one). DROP TABLE of a partition is all but free, but it waits for, and then blocks, every "
          "statement on the table, and drops the pending, failed and dead rows that the partition holds too.")
    for name in OPERATIONS:
        bench.target(f"delivery log: {name}, {largest:,} rows <= 2 x {smallest:,}",
                     ratio(figures[largest][name], figures[smallest][name]),
                     figures[largest][name] <= 2 * figures[smallest][name])


def retention_designs(bench, conn, size):
    """Removing the expired tenth of a log of `size` rows, the two ways: chunked deletes (what
    deliver() does) against dropping a time partition that holds the same rows; and what
    partitioning costs each queued row. Returns table rows."""
    expired = size // 10
    conn.execute("TRUNCATE aws_lambda.deliveries")
    conn.execute(HISTORY, {"n": size})
    conn.execute(COUNTS)
    conn.execute("VACUUM ANALYZE aws_lambda.deliveries")
    # a copy partitioned by day: the key must be in the primary key
    conn.execute("CREATE TABLE bench_partitioned (LIKE aws_lambda.deliveries INCLUDING DEFAULTS "
                 "INCLUDING IDENTITY) PARTITION BY RANGE (created_at)")
    conn.execute("ALTER TABLE bench_partitioned ADD PRIMARY KEY (id, origin, created_at)")
    for index in ("(id) WHERE status = 'pending' AND NOT replicated",
                  "(status, queued_by, created_at) WHERE status <> 'pending' AND NOT replicated"):
        conn.execute(f"CREATE INDEX ON bench_partitioned {index}")
    conn.execute("CREATE TABLE bench_old PARTITION OF bench_partitioned FOR VALUES FROM ('-infinity') TO "
                 "(now() - interval '27 days')")
    conn.execute("CREATE TABLE bench_new PARTITION OF bench_partitioned FOR VALUES FROM "
                 "(now() - interval '27 days') TO ('infinity')")
    conn.execute("INSERT INTO bench_partitioned SELECT * FROM aws_lambda.deliveries")
    conn.execute("CREATE TABLE bench_plain (LIKE aws_lambda.deliveries INCLUDING ALL)")
    conn.execute("VACUUM ANALYZE bench_partitioned, bench_plain")
    conn.execute("SET aws_lambda.delivery_retention = '27 days'")
    conn.execute("ALTER SYSTEM SET aws_lambda.delivery_retention = '27 days'")
    conn.execute("RESET aws_lambda.delivery_retention")
    conn.execute("SELECT pg_reload_conf()")
    chunks = []
    try:
        start = time.perf_counter()
        while True:
            chunk_start = time.perf_counter()
            (pruned,) = conn.execute(PRUNE_NOW).fetchone()
            chunks.append(time.perf_counter() - chunk_start)
            if pruned == 0:
                break
        chunked = time.perf_counter() - start
    finally:
        conn.execute("ALTER SYSTEM RESET aws_lambda.delivery_retention")
        conn.execute("SELECT pg_reload_conf()")
    (dropped,) = timed(lambda: conn.execute("DROP TABLE bench_old"))
    insert = "INSERT INTO {} (function_name, invocation_type, log_type, payload, queued_by) " \
             "VALUES ('echo', 'Event', 'None', '{{}}', current_user)"

    def rolled_back(table):
        def run():
            with conn.transaction(force_rollback=True):
                for _ in range(100):
                    conn.execute(insert.format(table), prepare=True)
        return run

    plain, partitioned = (median(times) / 100 for times in timed(
        rolled_back("bench_plain"), rolled_back("bench_partitioned"), rounds=ROUNDS))
    conn.execute("DROP TABLE bench_partitioned, bench_plain")
    return [
        [f"remove the expired {expired:,} of {size:,} rows: deliver()'s chunks of 5,000", ms(chunked),
         f"{len(chunks) - 1} transactions, the longest {ms(max(chunks))}"],
        ["  the same rows as one daily partition: DROP TABLE", ms(dropped[0]), "1 transaction, ACCESS EXCLUSIVE"],
        ["queue one row (INSERT): a copy of the log, plain", ms(plain), "1.00 x"],
        ["  the same, partitioned by created_at (2 partitions)", ms(partitioned), ratio(partitioned, plain)],
    ]


def measure(conn, size):
    """Fill the log with size rows of history and the backlog; time each operation."""
    conn.execute("TRUNCATE aws_lambda.deliveries")
    conn.execute(HISTORY, {"n": size})
    conn.execute(COUNTS)
    conn.execute(BACKLOG_ROWS, {"n": BACKLOG})
    conn.execute("VACUUM ANALYZE aws_lambda.deliveries")
    conn.execute("CHECKPOINT")  # the load's writes done before anything is timed
    (dead,) = conn.execute("SELECT max(id) FROM aws_lambda.deliveries WHERE status = 'dead'").fetchone()
    conn.execute("SET aws_lambda.delivery_retention = '1d'")  # ALTER SYSTEM needs a setting the session knows
    conn.execute("ALTER SYSTEM SET aws_lambda.delivery_retention = '1d'")
    conn.execute("RESET aws_lambda.delivery_retention")
    conn.execute("SELECT pg_reload_conf()")
    try:
        def rolled_back(sql):
            def run():
                with conn.transaction(force_rollback=True):
                    conn.execute(sql, {"dead": dead}).fetchall()
            return run

        runs = [rolled_back(sql) for sql in OPERATIONS.values()]
        timed(*runs, rounds=2)  # warm-up: plans, caches
        times = timed(*runs, rounds=ROUNDS)
    finally:
        conn.execute("ALTER SYSTEM RESET aws_lambda.delivery_retention")
        conn.execute("SELECT pg_reload_conf()")
    figures = {name: median(samples) for name, samples in zip(OPERATIONS, times)}
    (figures["bytes per row"],) = conn.execute(
        "SELECT pg_total_relation_size('aws_lambda.deliveries') / count(*) FROM aws_lambda.deliveries").fetchone()
    return figures
