"""Memory: the backend's resident set over many single calls, and its peak with a batch of
10,000 payloads, against a PL/Python function given the same payloads."""

import time

from .common import backend_pid, expect_count, memory_kb, section, table

LOOP = ("SELECT count(*) FROM generate_series(1, %s) g, "
        "LATERAL aws_lambda.invoke('noop', json_build_object('i', g)) r WHERE r.status_code = 200")


def run(bench):
    calls, batch = bench.count("memory_calls"), bench.count("memory_batch")
    section("Memory: the backend's resident set (VmRSS, and its peak VmHWM, from /proc), against nginx")
    rows = []
    with bench.connect() as conn:
        pid = backend_pid(conn)
        rows.append(("new connection, before any call", memory_kb(pid)[0]))
        conn.execute(LOOP, (200,))
        rows.append(("after a warm-up of 200 calls", memory_kb(pid)[0]))
        for label in ("after", "after another"):
            for done in range(0, calls, 1000):
                expect_count(conn, LOOP, (min(1000, calls - done),), min(1000, calls - done))
            rows.append((f"{label} {calls:,} calls", memory_kb(pid)[0]))
    warm = rows[1][1]
    table(["one connection, single calls", "VmRSS", "vs after warm-up"],
          [[label, f"{rss / 1024:.1f} MB", f"{(rss - warm) / 1024:+.1f} MB"] for label, rss in rows])
    per_call = (rows[3][1] - rows[2][1]) * 1024 / calls

    # Each case on a new connection (a peak only ever grows), warmed up alike.
    payloads = (f"(SELECT array_agg(json_build_object('i', g, 'pad', repeat('x', 1000))) "
                f"FROM generate_series(1, {batch}) g)")
    cases = [
        ("the payload array alone, in SQL (unnest)", f"SELECT count(*) FROM unnest({payloads})"),
        ("a PL/Python function that takes it as text[] (the floor)",
         f"SELECT pg_temp.bench_length({payloads}::text[])"),
        ("invoke_many, max_concurrency 16", f"SELECT count(*) FROM aws_lambda.invoke_many('noop', {payloads}, "
                                            "max_concurrency => 16) WHERE status_code = 200"),
    ]
    rows, peaks = [], []
    for label, sql in cases:
        with bench.connect() as conn:
            pid = backend_pid(conn)
            conn.execute("CREATE FUNCTION pg_temp.bench_length(payloads text[]) RETURNS int "
                         "LANGUAGE plpython3u AS $$return len(payloads)$$")
            conn.execute(LOOP, (20,))
            conn.execute("SELECT pg_temp.bench_length(ARRAY['{}'])")
            rss0, hwm0 = memory_kb(pid)
            for again in (False, True):
                expect_count(conn, sql, None, batch)
                rss, hwm = memory_kb(pid)
                rows.append(["  the same again, same connection" if again else label, f"{(hwm - hwm0) / 1024:+.1f} MB",
                             f"{(rss - rss0) / 1024:+.1f} MB", f"{hwm / 1024:.1f} MB"])
                peaks.append(hwm)
        time.sleep(0.1)
    print()
    table([f"{batch:,} payloads of ~1 KB, each case on a new connection", "peak over warm-up", "held after",
           "peak VmHWM"], rows)
    floor, many = peaks[2], peaks[4]
    print(f"  Single calls: {per_call:,.0f} bytes per call over the last {calls:,}. Memory a statement freed mostly "
          "stays with the process's allocator (hence \"held after\"); a second run reuses most of it.")
    bench.target(f"memory: invoke_many's peak at {batch:,} payloads <= 1.25 x the floor's",
                 f"{many / 1024:.0f} MB, {many / floor:.2f} x", many <= 1.25 * floor)
    bench.target("memory: growth over many single calls <= 100 bytes per call", f"{per_call:,.0f} B", per_call <= 100)
