"""Payload size: time per call from 100 B to 1 MB, aws_lambda.invoke against the floor."""

from .common import expect_count, median, ms, ratio, section, table, timed

SIZES = [  # (label, padding bytes, calls full, calls quick)
    ("100 B", 80, 500, 30),
    ("10 KB", 10 * 1024, 300, 20),
    ("100 KB", 100 * 1024, 100, 10),
    ("1 MB", 1024 * 1024, 20, 3),
]
PAYLOAD = "json_build_object('i', g, 'pad', repeat('x', %s))"
INVOKE = (f"SELECT count(*) FROM generate_series(1, %s) g, LATERAL aws_lambda.invoke('noop', {PAYLOAD}) r "
          "WHERE r.status_code = 200")
FLOOR = f"SELECT count(*) FROM generate_series(1, %s) g, LATERAL public.bench_floor({PAYLOAD}) r WHERE r = 200"

def run(bench):
    section("Payload size: time per call, one call at a time, against nginx (function noop)")
    rows, figures = [], []
    with bench.connect() as conn:
        conn.execute(INVOKE, (10, 10))
        conn.execute(FLOOR, (10, 10))
        for label, pad, full, quick in SIZES:
            calls = quick if bench.quick else full
            (size,) = conn.execute(f"SELECT octet_length(({PAYLOAD})::text) FROM (SELECT 1 AS g) one",
                                   (pad,)).fetchone()
            invoke, floor = (median(times) / calls for times in timed(
                lambda: expect_count(conn, INVOKE, (calls, pad), calls),
                lambda: expect_count(conn, FLOOR, (calls, pad), calls), rounds=3))
            rows.append([f"{label} ({size:,} bytes)", ms(invoke), ms(floor), ratio(invoke, floor)])
            figures.append((size, invoke, floor))
    table(["payload", "invoke/call", "floor/call", "vs floor"], rows)
    (size0, *small), (size1, *large) = figures[-2:]
    slope = [f"{(b - a) * 1e6 / ((size1 - size0) / 1024):.1f} us" for a, b in zip(small, large)]
    print("  Server-side loops of each size, run alternately (3 rounds, median), each payload built in SQL "
          f"(json_build_object(.., repeat())). Per extra KB from {SIZES[-2][0]} to {SIZES[-1][0]}: "
          f"invoke {slope[0]}, floor {slope[1]}.")
