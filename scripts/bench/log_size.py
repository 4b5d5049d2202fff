"""The delivery log as it grows: what the operations that touch aws_lambda.deliveries cost
with 10,000 rows of history and with millions, the same backlog in each.

Each log: N rows of history (1% dead, the rest succeeded, queued over the last 30 days, one
role) and a backlog of 10,000 pending deliveries that are due; the table vacuumed and
analyzed, as autovacuum leaves it. Each operation runs in a transaction that is rolled back,
so every round sees the same log.
"""

import os
import sys

from .common import median, ms, ratio, section, table, timed

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from plpy_lambda.delivery import CLAIM  # noqa: E402  the relay's claim, as deliver() runs it

BACKLOG = 10_000
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
OPERATIONS = {
    "queue one delivery (invoke_on_commit)":
        "SELECT aws_lambda.invoke_on_commit('echo', '{\"i\": 1}'::json)",
    "claim a batch of 100 (deliver()'s claim)": CLAIM.replace("$1", "100").replace("%", "%%"),
    "deliver one batch of 100 (nginx)":
        "SELECT aws_lambda_internal._deliver_batch(100, 32, NULL, NULL, pg_conf_load_time(), NULL)",
    "delivery_status()": "SELECT * FROM aws_lambda.delivery_status()",
    "prune one chunk (retention below every row's age)":
        "SELECT aws_lambda_internal._prune_deliveries(pg_conf_load_time(), 0)",
    "redeliver one dead delivery": "SELECT aws_lambda.redeliver(%(dead)s)",
}


def run(bench):
    sizes = (10_000, 100_000) if bench.quick else (10_000, 1_000_000, 10_000_000)
    section("The delivery log as it grows: each operation with N rows of history and 10,000 pending")
    with bench.connect() as conn:
        conn.add_notice_handler(lambda diagnostic: None)
        figures = {size: measure(conn, size) for size in sizes}
        conn.execute("TRUNCATE aws_lambda.deliveries")
    smallest, largest = sizes[0], sizes[-1]
    table(["operation"] + [f"{size:,} rows" for size in sizes] + [f"{largest:,} vs {smallest:,}"],
          [[name] + [ms(figures[size][name]) for size in sizes]
           + [ratio(figures[largest][name], figures[smallest][name])] for name in OPERATIONS])
    print(f"  Median of {ROUNDS} runs of each operation, in turn, each in a transaction rolled back (the log "
          f"is the same for every run). History: 1% dead, the rest succeeded; plus {BACKLOG:,} pending and due. "
          "Pruning: with aws_lambda.delivery_retention below every history row's age.")
    for name in OPERATIONS:
        bench.target(f"delivery log: {name}, {largest:,} rows <= 2 x {smallest:,}",
                     ratio(figures[largest][name], figures[smallest][name]),
                     figures[largest][name] <= 2 * figures[smallest][name])


def measure(conn, size):
    """Fill the log with size rows of history and the backlog; time each operation."""
    conn.execute("TRUNCATE aws_lambda.deliveries")
    conn.execute(HISTORY, {"n": size})
    conn.execute(COUNTS)
    conn.execute(BACKLOG_ROWS, {"n": BACKLOG})
    conn.execute("VACUUM ANALYZE aws_lambda.deliveries")
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
    return {name: median(samples) for name, samples in zip(OPERATIONS, times)}
