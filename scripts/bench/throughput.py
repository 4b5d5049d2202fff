"""Throughput by concurrency N, against nginx: aws_lambda.invoke and the floor under pgbench
-c N, invoke_many (max_concurrency N) and CALL deliver(max_concurrency N); and invoke_many
running a 50 ms function 20 at a time (local emulator)."""

from .common import expect_count, median, ratio, rate, section, table, timed

INVOKE = "SELECT status_code FROM aws_lambda.invoke('noop', '{}'::json)"
FLOOR = "SELECT public.bench_floor('{}'::json)"
TODAY = 2047  # pgbench -c 8 -j 2 -T 10 calls/s of invoke when issue 10 was written
MANY = ("SELECT count(*) FROM aws_lambda.invoke_many('noop', (SELECT array_agg(json_build_object('i', g)) "
        "FROM generate_series(1, %s) g), max_concurrency => %s) WHERE status_code = 200")
QUEUE = ("SELECT count(aws_lambda.invoke_on_commit('noop', json_build_object('i', g))) "
         "FROM generate_series(1, %s) g")
SLEEPS = ("SELECT count(*) FROM aws_lambda.invoke_many('sleep', (SELECT array_agg(json_build_object("
          "'seconds', 0.05, 'i', g)) FROM generate_series(1, 200) g), max_concurrency => 20) WHERE status_code = 200")


def run(bench):
    section("Throughput by concurrency, against nginx: pgbench, invoke_many, deliver()")
    seconds = bench.count("pgbench_seconds")
    invoke8, floor8 = bench.pgbench(INVOKE, 8), bench.pgbench(FLOOR, 8)
    table([f"pgbench -c 8 -j 2 -T {seconds}, one statement per transaction", "calls/s", "pgbench tps",
           "vs floor", f"vs {TODAY:,}/s"],
          [["SELECT public.bench_floor('{}') (the floor)", f"{floor8[0]:,.0f}", f"{floor8[1]:,.0f}", "1.00 x", ""],
           ["SELECT status_code FROM aws_lambda.invoke('noop', '{}')", f"{invoke8[0]:,.0f}", f"{invoke8[1]:,.0f}",
            ratio(invoke8[0], floor8[0]), ratio(invoke8[0], TODAY)]])
    print(f"  calls/s: pgbench's per-second progress over the run's second half, when every connection has "
          f"made its first call (pgbench tps: the whole run, first calls included). {TODAY:,}/s: invoke "
          "under the same pgbench when issue 10 was written, for context.")
    bench.target("pgbench -c 8: invoke calls/s >= 0.8 x the floor", ratio(invoke8[0], floor8[0]),
                 invoke8[0] >= 0.8 * floor8[0])

    n, repeats = bench.count("batch_payloads"), bench.count("batch_repeats")
    sweep = {}
    with bench.connect() as conn:
        conn.add_notice_handler(lambda diagnostic: None)
        conn.execute(MANY, (50, 4))
        deliver_rate(conn, 50, 4, 1)  # warm-up
        for c in bench.concurrencies:
            invoke, floor = (invoke8, floor8) if c == 8 else (bench.pgbench(INVOKE, c), bench.pgbench(FLOOR, c))
            (many,) = timed(lambda: expect_count(conn, MANY, (n, c), n), rounds=repeats)
            sweep[c] = [invoke[0], floor[0], n / median(many), deliver_rate(conn, n, c, repeats)]
    print()
    table(["N", "invoke, pgbench -c N", "floor, pgbench -c N", "invoke_many", "deliver()", "invoke vs floor",
           "invoke_many vs floor", "deliver vs invoke_many"],
          [[f"{c}", *(f"{value:,.0f}" for value in rates), ratio(rates[0], rates[1]), ratio(rates[2], rates[1]),
            ratio(rates[3], rates[2])] for c, rates in sweep.items()])
    print(f"  calls/s. invoke_many: {n:,} payloads {{\"i\": n}} in one statement, max_concurrency N; deliver(): "
          f"{n:,} rows queued by one committed statement, then CALL aws_lambda.deliver(max_concurrency => N) "
          f"(batches of 100, a COMMIT after each) until all succeeded; median of {repeats}. pgbench: -j "
          "min(2, N), calls/s as above. nginx: 200 '{}' to every POST, X-Amz-Executed-Version: $LATEST.")
    best_many = max(rates[2] for rates in sweep.values())
    best_deliver = max(rates[3] for rates in sweep.values())
    bench.target(f"invoke_many: {n:,} payloads against nginx >= 3,000/s (best N)", rate(best_many),
                 best_many >= 3000)
    bench.target("deliver: one deliverer >= 2,500/s against nginx (best N)", rate(best_deliver),
                 best_deliver >= 2500)
    bench.figures.update(sweep=sweep)

    with bench.pointed_at(bench.emulator.url), bench.connect() as conn:
        conn.execute(MANY, (20, 4))
        (sleeps,) = timed(lambda: expect_count(conn, SLEEPS, None, 200), rounds=repeats)
        bench.emulator.reset()
    print()
    print(f"  200 payloads to sleep (50 ms each, local emulator), max_concurrency 20: {median(sleeps):.2f} s "
          f"(median of {repeats}; ideal 0.50 s)")
    bench.target("invoke_many: 200 x 50 ms at max_concurrency 20 < 1 s", f"{median(sleeps):.2f} s",
                 median(sleeps) < 1.0)


def deliver_rate(conn, n, concurrency, repeats):
    """Deliveries/s of one CALL aws_lambda.deliver(max_concurrency => concurrency) sending n
    queued rows, median of repeats; the server's endpoint as it is."""
    samples = []
    for _ in range(repeats):
        conn.execute("TRUNCATE aws_lambda.deliveries")
        conn.execute(QUEUE, (n,))
        (elapsed,) = timed(lambda: conn.execute("CALL aws_lambda.deliver(max_concurrency => %s)", (concurrency,)))
        statuses = dict(conn.execute("SELECT status, count(*) FROM aws_lambda.deliveries GROUP BY status").fetchall())
        assert statuses == {"succeeded": n}, statuses
        samples.append(n / elapsed[0])
    conn.execute("TRUNCATE aws_lambda.deliveries")
    return median(samples)
