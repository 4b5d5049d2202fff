"""The benchmark: what aws_lambda.invoke, invoke_many and commit-time delivery cost.

    .venv/bin/python scripts/benchmark.py [--quick]

One run starts what the tests start (scripts/fixture.py: the local Lambda endpoint,
checking every signature, and a throwaway cluster with the server's credentials),
plus nginx answering every POST with the same 200 '{}'. The server calls nginx, so
that a figure is the sender's own cost; the sections that need a real function
(a 50 ms sleep, deliveries recorded on arrival) switch it to the local endpoint.
The baseline is the floor: a PL/Python function, created here, making one raw
keep-alive POST with a prepared, pre-signed request to the same nginx.

Sections (scripts/bench/, one module each): warm path, throughput by concurrency,
cold start, payload sizes, memory, commit-time delivery, the delivery log as it grows
(10,000 to 10,000,000 rows; --quick: to 100,000); then every target with
its measured value. Each figure comes with its ratio to a baseline measured in the
same run; targets are printed, never asserted: the script exits 0 after printing.
A full run writes docs/benchmark.svg (calls/s against concurrency); --quick runs
tiny iteration counts (the test suite runs it that way), noisy, and writes no chart.
"""

import argparse
import datetime
import os
import platform
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import fixture  # noqa: E402
from bench import chart, cold, delivery, log_size, memory, payloads, throughput, warm  # noqa: E402
from bench.common import Run, section, table  # noqa: E402
from bench.endpoints import FixedEndpoint, create_floor_function, nginx_binary  # noqa: E402

CHART = os.path.join(fixture.ROOT, "docs", "benchmark.svg")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny iteration counts (the test suite's mode)")
    args = parser.parse_args(argv)
    if nginx_binary() is None:
        sys.exit("benchmark: nginx is not installed (its fixed-response endpoint is every figure's baseline)")
    with FixedEndpoint() as fixed, fixture.endpoint() as emulator:
        cluster = fixture.cluster(fixed.url, conf={"max_connections": "100"})
        try:
            bench = Run(args.quick, cluster, emulator, fixed)
            machine = header(bench)
            for part in (warm, throughput, cold, payloads, memory, delivery, log_size):
                part.run(bench)
            summary(bench)
            if not args.quick:
                os.makedirs(os.path.dirname(CHART), exist_ok=True)
                with open(CHART, "w") as f:
                    f.write(chart.svg(bench.figures["sweep"], "aws_lambda: calls/s against concurrency N (nginx)",
                                      machine))
                print(f"\n  chart: {os.path.relpath(CHART, fixture.ROOT)}")
        except BaseException:
            sys.stdout.flush()
            print("benchmark failed; the server log ends with:\n"
                  + "".join(cluster.server_log().splitlines(True)[-30:]), file=sys.stderr)
            raise
        finally:
            cluster.stop()
    return 0


def header(bench):
    """Create the floor function (and pgsql-http, where installed) and print what the run runs on;
    returns a one-line description of the machine for the chart."""
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    with open("/proc/meminfo") as f:
        memory_gb = int(f.readline().split()[1]) / 1024 / 1024
    with bench.connect() as conn:
        server = conn.execute("SELECT version()").fetchone()[0].split(" on ")[0]
        conn.execute("CREATE FUNCTION pg_temp.py_version() RETURNS text LANGUAGE plpython3u "
                     "AS $$import sys; return sys.version.split()[0]$$")
        python = conn.execute("SELECT pg_temp.py_version()").fetchone()[0]
        create_floor_function(conn, bench.fixed.port)
        try:
            conn.execute("CREATE EXTENSION http")
            http = "pgsql-http " + conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'http'"
                                                ).fetchone()[0]
        except Exception:  # not packaged for this server: compared with the floor only
            http = "not installed"
    machine = f"{cpu}, {os.cpu_count()} cores, {memory_gb:.1f} GB RAM, {platform.system()}"
    mode = "quick mode: tiny iteration counts, noisy figures" if bench.quick else "full run"
    print(f"aws_lambda benchmark ({mode})")
    for name, value in [
        ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("machine", machine),
        ("PostgreSQL", server),
        ("Python", f"server's PL/Python {python}"),
        ("endpoint", f"nginx {bench.fixed.url}: 200 '{{}}' to every POST (X-Amz-Executed-Version: $LATEST)"),
        ("floor", "public.bench_floor(payload json): one keep-alive POST of a prepared, pre-signed request "
                  "to that nginx from inside the backend (socket in GD, answer read by http.client)"),
        ("pgsql-http", http),
        ("emulator", f"local Lambda endpoint {bench.emulator.url}, SigV4 checked (where a section says so)"),
    ]:
        print(f"  {name:<11} {value}")
    return f"{cpu}, {os.cpu_count()} cores, PostgreSQL {server.split()[1]}, " + \
        datetime.date.today().isoformat()


def summary(bench):
    section("Targets")
    table(["target", "measured", ""], [[name, measured, "target met" if met else "target missed"]
                                       for name, measured, met in bench.targets])


if __name__ == "__main__":
    sys.exit(main())
