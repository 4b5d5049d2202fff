"""Cold start: a new connection's first invoke, side by side with a new connection's first call
of a one-line plpython3u function (and connect + SELECT 1), where its time goes, and the
import profile of plpy_lambda under the server's Python."""

import collections
import os
import re
import subprocess
import time

import psycopg

from fixture import ROOT

from .common import median, ms, section, table, timed

INVOKE = "SELECT status_code FROM aws_lambda.invoke('noop', '{}'::json)"
ONE_LINE = "SELECT public.bench_one_line()"  # a one-line plpython3u function, created here
STEPS = [  # in order, on one new connection
    ("SELECT 1", "SELECT 1"),
    ("PL/Python: load it, start the interpreter", "DO $$pass$$ LANGUAGE plpython3u"),
    ("aws_lambda_internal._load(): import plpy_lambda", "SELECT aws_lambda_internal._load()"),
    ("first invoke, plpy_lambda imported", INVOKE),
    ("second invoke (warm)", INVOKE),
]


def run(bench):
    k = bench.count("cold_connections")
    section(f"Cold start: a new connection's first invoke, against nginx ({k} connections each)")

    def connect_and(sql):
        def run():
            with bench.connect() as conn:
                conn.execute(sql).fetchone()
        return run

    def pause():  # the closed backend exits before the next connection starts
        time.sleep(0.1)

    with bench.connect() as conn:
        conn.execute("CREATE OR REPLACE FUNCTION public.bench_one_line() RETURNS int "
                     "LANGUAGE plpython3u AS $$return 1$$")
    plain, _, one_line, _, first, _ = timed(connect_and("SELECT 1"), pause, connect_and(ONE_LINE), pause,
                                            connect_and(INVOKE), pause, rounds=k)
    overhead = median(first) - median(plain)
    ratio = median(first) / median(one_line)
    ratio_over_plain = overhead / (median(one_line) - median(plain))
    steps, failed = {label: [] for label, _ in STEPS}, set()
    for _ in range(k):
        with bench.connect() as conn:
            for label, sql in STEPS:
                def step(label=label, sql=sql):
                    try:
                        conn.execute(sql)
                    except psycopg.Error:  # an internal function that changed
                        failed.add(label)
                steps[label] += timed(step)[0]
        pause()
    table(["a new connection and its first statement", "median", "min", "max"],
          [["connect + SELECT 1", ms(median(plain)), ms(min(plain)), ms(max(plain))],
           ["connect + a one-line plpython3u function", ms(median(one_line)), ms(min(one_line)),
            ms(max(one_line))],
           ["connect + SELECT aws_lambda.invoke('noop', '{}')", ms(median(first)), ms(min(first)), ms(max(first))],
           ["  the first invoke's cost (over connect + SELECT 1)", ms(overhead), "", ""]])
    print(f"  over connect + SELECT 1, the first invoke costs {ratio_over_plain:.2f}x what the one-line "
          "function's first call does (PL/Python's own start is in both)")
    print()
    table(["where it goes (steps in order on a new connection)", "median", "min", "max"],
          [[label, "n/a", "", ""] if label in failed else [label, ms(median(v)), ms(min(v)), ms(max(v))]
           for label, v in steps.items()])
    bench.target("cold start: a new connection's first invoke <= 1.5x a new connection's first call of a "
                 "one-line plpython3u function", f"{ratio:.2f}x", ratio <= 1.5)
    bench.target("cold start: first invoke <= 45 ms over connect + SELECT 1", ms(overhead), overhead <= 0.045)
    print()
    import_profile()


def import_profile(top=10):
    """python -X importtime of `import plpy_lambda.sql` with the server's Python and the installed
    directory, after the interpreter's own start: grouped by top-level package, and the slowest."""
    python = subprocess.run([os.path.join(ROOT, "scripts", "server-python")], capture_output=True, text=True,
                            check=True).stdout.strip()
    sharedir = subprocess.run(["pg_config", "--sharedir"], capture_output=True, text=True,
                              check=True).stdout.strip()
    installed = os.path.join(sharedir, "aws_lambda", "python")
    run = subprocess.run([python, "-X", "importtime", "-c", f"import sys; sys.path.insert(0, {installed!r}); "
                          "sys.stderr.write('start\\n'); import plpy_lambda.sql"],
                         capture_output=True, text=True, cwd="/", env={"PATH": "/usr/bin:/bin"})
    if run.returncode != 0:
        print(f"  import profile: the server's Python cannot import plpy_lambda.sql: {run.stderr[-300:]}")
        return
    imports = [(int(own), int(cumulative), name.rstrip()[1:]) for own, cumulative, name in
               re.findall(r"^import time:\s+(\d+) \|\s+(\d+) \|(.*)$", run.stderr.split("start\n", 1)[1], re.M)]
    groups = collections.defaultdict(lambda: [0, 0])  # package -> [modules, self microseconds]
    for own, _, name in imports:
        group = groups[name.strip().split(".")[0].lstrip("_")]
        group[0] += 1
        group[1] += own
    total = sum(own for own, _, _ in imports)
    ranked = sorted(groups.items(), key=lambda item: -item[1][1])
    rest = ranked[top:]
    rows = [[package, f"{n}", ms(us / 1e6), f"{us / total:.0%}"] for package, (n, us) in ranked[:top]]
    if rest:
        rows.append([f"{len(rest)} other packages", f"{sum(n for _, (n, _) in rest)}",
                     ms(sum(us for _, (_, us) in rest) / 1e6), f"{sum(us for _, (_, us) in rest) / total:.0%}"])
    rows.append(["total", f"{len(imports)}", ms(total / 1e6), "100%"])
    table(["import plpy_lambda.sql, by top-level package", "modules", "self time", "share"], rows)
    print()
    slowest = sorted(imports, key=lambda item: -item[1])[:top]
    table(["the slowest imports (indent: import depth)", "cumulative", "self time"],
          [[name, ms(cumulative / 1e6), ms(own / 1e6)] for own, cumulative, name in slowest])
    print(f"  python -X importtime, {os.path.basename(python)} (the server's Python, scripts/server-python), the "
          "installed directory first on sys.path, counted from after the interpreter's start: what a backend's "
          "first invoke imports. Self time: a module's own, its imports excluded; a package groups its "
          "C accelerator (_ssl with ssl).")
