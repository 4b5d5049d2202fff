"""What every section shares: the run (its cluster, endpoints, counts and targets), the one
timing helper, pgbench, /proc readers and the report's formatting."""

import contextlib
import os
import re
import statistics
import subprocess
import time

import psycopg
from psycopg import sql

CLK_TCK = os.sysconf("SC_CLK_TCK")

# Iteration counts: (full run, --quick).
COUNTS = {
    "loop_calls": (2000, 100),       # calls per server-side SQL loop
    "loop_rounds": (5, 3),           # SQL loops of each kind, run alternately
    "statement_calls": (2000, 100),  # one statement per call, from psycopg
    "pgbench_seconds": (10, 2),
    "cold_connections": (10, 3),
    "batch_repeats": (3, 1),
    "batch_payloads": (5000, 500),
    "memory_calls": (5000, 500),
    "memory_batch": (10000, 1000),
    "queue_statements": (2000, 200),
    "queue_bulk_rows": (5000, 5000),
    "queue_bulk_repeats": (7, 3),
    "delivery_calls": (5000, 1000),
    "latency_seconds": (5, 2),
}
CONCURRENCIES = ((1, 4, 8, 16, 32, 64), (1, 8))


class Run:
    """One benchmark run: the cluster (pointed at the fixed-response endpoint), the local
    Lambda endpoint, the iteration counts, the figures kept for the chart, and the targets."""

    def __init__(self, quick, cluster, emulator, fixed):
        self.quick, self.cluster, self.emulator, self.fixed = quick, cluster, emulator, fixed
        self.figures = {}
        self.targets = []  # (target, measured, met)

    def count(self, name):
        return COUNTS[name][1 if self.quick else 0]

    @property
    def concurrencies(self):
        return CONCURRENCIES[1 if self.quick else 0]

    def connect(self):
        # A statement that hangs fails rather than hanging the run (and the test that runs it).
        return psycopg.connect(self.cluster.dsn(), autocommit=True, options="-c statement_timeout=300s")

    @contextlib.contextmanager
    def pointed_at(self, url):
        """The server uses another endpoint meanwhile, set as an operator would (ALTER SYSTEM, reload)."""
        self._set_endpoint(url)
        try:
            yield
        finally:
            self._set_endpoint(None)

    def _set_endpoint(self, url):
        with self.connect() as conn:
            if url is None:
                conn.execute("ALTER SYSTEM RESET aws_lambda.endpoint_override")
            else:
                conn.execute(sql.SQL("ALTER SYSTEM SET aws_lambda.endpoint_override = {}").format(url))
            conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.3)

    def target(self, name, measured, met):
        """Print a target's line and keep it for the summary."""
        print(f"  {'target met   ' if met else 'target missed'}  {name}: {measured}")
        self.targets.append((name, measured, met))

    def pgbench(self, statement, clients, seconds=None):
        """pgbench -c clients -j min(2, clients) -T seconds running one statement: calls/s over
        the run's second half (every connection has made its first call by then), and
        pgbench's own tps over the whole run."""
        seconds = seconds or self.count("pgbench_seconds")
        script = os.path.join(self.cluster.root, "bench.sql")
        with open(script, "w") as f:
            f.write(statement + ";\n")
        run = subprocess.run(
            [os.path.join(self.cluster.bindir, "pgbench"), "-h", self.cluster.socket_dir, "-p",
             str(self.cluster.port), "-U", "postgres", "-n", "-f", script, "-c", str(clients),
             "-j", str(min(2, clients)), "-T", str(seconds), "-P", "1", "postgres"],
            capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"pgbench -c {clients} failed: {run.stderr[-1500:]}")
        per_second = [(float(at), float(tps)) for at, tps in
                      re.findall(r"^progress: ([\d.]+) s, ([\d.]+) tps", run.stderr, re.M)]
        tps = float(re.search(r"^tps = ([\d.]+)", run.stdout, re.M).group(1))
        late = [rate for at, rate in per_second if at > seconds / 2]
        return (statistics.mean(late) if late else tps), tps


def timed(*runs, rounds=1):
    """Run each callable once per round, in turn (so that drift hits them alike), timing
    each run: one list of seconds per callable."""
    times = [[] for _ in runs]
    for _ in range(rounds):
        for run, samples in zip(runs, times):
            start = time.perf_counter()
            run()
            samples.append(time.perf_counter() - start)
    return times


def expect_count(conn, sql, args, expected):
    """Run a SELECT count(*) ... and check that every call it counts succeeded."""
    (done,) = conn.execute(sql, args).fetchone()
    assert done == expected, f"{done} of {expected}: {sql}"


def median(values):
    return statistics.median(values) if values else float("nan")


def backend_pid(conn):
    return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def cpu_seconds(pid):
    """User + system CPU time of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_kb(pid):
    """VmRSS and VmHWM (peak RSS) of a process, in kB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]



# -- the report ---------------------------------------------------------------------

def section(title):
    print()
    print(f"== {title} ==")


def table(header, rows):
    """Rows of strings; the first column left-aligned, the others right-aligned."""
    rows = [header] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) if i < len(row) else 0 for row in rows) for i in range(len(header))]
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(widths[i + 1]) for i, cell in enumerate(row[1:])]
        print("  " + "   ".join(cells).rstrip())
        if n == 0:
            print("  " + "   ".join("-" * w for w in widths))


def ms(seconds):
    return f"{seconds * 1000:.3f} ms" if seconds < 0.01 else f"{seconds * 1000:.1f} ms"


def ratio(value, base):
    return f"{value / base:.2f} x" if base else "-"


def rate(value):
    return f"{value:,.0f}/s"
