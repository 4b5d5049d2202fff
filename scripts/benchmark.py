"""The benchmark: what aws_lambda.invoke and invoke_many cost, against a local endpoint.

    .venv/bin/python scripts/benchmark.py [--quick]

One run starts the local Lambda endpoint (lambda_emulator) as a separate
process, with credentials, so that every request's SigV4 signature is really
checked, and one throwaway PostgreSQL cluster configured as the test suite does
(endpoint_override in postgresql.conf, credentials and region in the server's
environment). Every path measured below talks to that same endpoint process. The
Python baselines (boto3, raw HTTP) run in this process, which hosts nothing else,
so neither they nor the endpoint share a GIL with anything.

It prints a plain-text report: the machine; the warm path (one call at a time:
aws_lambda.invoke in a server-side SQL loop and one statement per call, against
boto3 with a reused client, a raw keep-alive HTTP POST signed by a small SigV4
signer of our own, and a new boto3 client per call); the cold start of a new
connection, with where its time goes; invoke_many (a 50 ms function at
concurrency 20, and the throughput of a trivial function at several
concurrencies, against what the endpoint itself can answer); time per call by
payload size; the backend's memory over many calls and big batches; and
commit-time delivery (what queueing with invoke_on_commit adds to a transaction,
against the same inserts without it; how fast one CALL aws_lambda.deliver() sends,
against the endpoint and against a fixed-response nginx if installed, beside
invoke_many on the same endpoint; and the commit-to-endpoint latency with one
relay). Each
figure comes with its ratio to its baseline, and each target of the performance
issue with "target met" or "target missed". Targets are never asserted: the
script exits 0 after printing. --quick runs tiny iteration counts (the test
suite runs it that way so that it keeps working); its figures are noisy.
"""

import argparse
import collections
import datetime
import hashlib
import hmac
import http.client
import json
import multiprocessing
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import psycopg  # noqa: E402

from cluster import Cluster, free_port  # noqa: E402

FUNCTIONS = os.path.join(ROOT, "examples", "functions")
ACCESS_KEY = "AKIABENCH00000000000"
SECRET_KEY = "benchmark-secret-never-printed-0123456789"
REGION = "us-east-1"
SERVER_ENV = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Iteration counts: (full run, --quick).
COUNTS = {
    "sql_loop_calls": (2000, 100),
    "sql_loop_repeats": (5, 3),
    "statement_calls": (1000, 50),
    "python_calls": (2000, 100),
    "new_client_calls": (200, 10),
    "cold_connections": (10, 3),
    "sleep_batch_repeats": (3, 1),
    "noop_batch": (2000, 200),
    "ceiling_calls_per_process": (1000, 100),
    "memory_calls": (5000, 500),
    "memory_batch": (10000, 1000),
    "queue_statements": (2000, 200),
    "queue_bulk_rows": (5000, 5000),
    "queue_bulk_repeats": (7, 3),
    "delivery_calls": (5000, 1000),
    "latency_seconds": (5, 2),
}
LATENCY_RATE = 100  # commits per second in the commit-to-endpoint measurement
CONCURRENCIES = (1, 4, 8, 16, 32)
PAYLOAD_SIZES = [  # (label, padding bytes, calls full, calls quick)
    ("100 B", 80, 500, 30),
    ("10 KB", 10 * 1024, 300, 20),
    ("100 KB", 100 * 1024, 100, 10),
    ("1 MB", 1024 * 1024, 20, 3),
]


# -- report formatting ------------------------------------------------------------

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


def target(text, met):
    print(f"  {'target met   ' if met else 'target missed'}  {text}")


def ms(seconds):
    return f"{seconds * 1000:.3f} ms" if seconds < 0.01 else f"{seconds * 1000:.1f} ms"


def ratio(value, base):
    return f"{value / base:.2f} x" if base else "-"


def package_counts(names, limit=8):
    """Module names counted by top-level package: "email 15, plpy_lambda 13, ..."."""
    counts = collections.Counter(name.split(".")[0] for name in names)
    text = ", ".join(f"{package} {n}" for package, n in counts.most_common(limit))
    return (text + (", ..." if len(counts) > limit else "")) or "none"


def median(values):
    return statistics.median(values) if values else float("nan")


# -- measuring --------------------------------------------------------------------

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


class CpuMeter:
    """CPU used per call by the client side and by the endpoint process over a block of calls."""

    def __init__(self, client_pid, endpoint_pid):
        self.pids = (client_pid, endpoint_pid)

    def __enter__(self):
        self.start = [self._cpu(pid) for pid in self.pids]
        return self

    def __exit__(self, *exc):
        self.used = [self._cpu(pid) - start for pid, start in zip(self.pids, self.start)]

    @staticmethod
    def _cpu(pid):
        return time.process_time() if pid is None else cpu_seconds(pid)

    def per_call(self, calls):
        return [used / calls for used in self.used]


# -- the endpoint, and the Python-side clients -------------------------------------

def stop_process(process, directory):
    """Stop a helper process (SIGTERM, then SIGKILL after 10 s) and remove its directory."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    shutil.rmtree(directory, ignore_errors=True)


class Endpoint:
    """python -m lambda_emulator in its own process, checking SigV4 signatures."""

    def __init__(self):
        self.directory = tempfile.mkdtemp(prefix="aws_lambda_bench_")
        port_file = os.path.join(self.directory, "port")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lambda_emulator", "--functions", FUNCTIONS, "--port", "0",
             "--port-file", port_file, "--region", REGION, "--credentials", f"{ACCESS_KEY}:{SECRET_KEY}",
             "--quiet"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the local Lambda endpoint did not start")
            time.sleep(0.02)
        with open(port_file) as f:
            self.port = int(f.read())
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def pid(self):
        return self.process.pid

    def reset(self):
        """Forget the recorded requests (the endpoint keeps the last 10,000, bodies included)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.request("POST", "/_emulator/reset", body=b"")
        connection.getresponse().read()
        connection.close()

    def stop(self):
        stop_process(self.process, self.directory)


class RawClient:
    """One keep-alive HTTP/1.1 connection; each POST signed with a minimal SigV4
    (host and x-amz-date signed, the signing key cached per day), so that the
    endpoint's signature check passes as it does for boto3 and the SQL path."""

    def __init__(self, port):
        self.host = f"127.0.0.1:{port}"
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.connection.connect()
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._day, self._key = None, None

    def _signing_key(self, day):
        if day != self._day:
            key = ("AWS4" + SECRET_KEY).encode()
            for part in (day, REGION, "lambda", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._day, self._key = day, key
        return self._key

    def invoke(self, function, body):
        path = f"/2015-03-31/functions/{function}/invocations"
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        day = amz_date[:8]
        canonical = (f"POST\n{path}\n\nhost:{self.host}\nx-amz-date:{amz_date}\n\nhost;x-amz-date\n"
                     + hashlib.sha256(body).hexdigest())
        scope = f"{day}/{REGION}/lambda/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n" + hashlib.sha256(canonical.encode()).hexdigest()
        signature = hmac.new(self._signing_key(day), to_sign.encode(), hashlib.sha256).hexdigest()
        self.connection.request("POST", path, body=body, headers={
            "Host": self.host,
            "X-Amz-Date": amz_date,
            "Authorization": f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, "
                             f"SignedHeaders=host;x-amz-date, Signature={signature}",
        })
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"raw HTTP invoke: {response.status} {data[:200]!r}")
        return data

    def close(self):
        self.connection.close()


def boto3_client(url):
    import boto3

    return boto3.client("lambda", endpoint_url=url, region_name=REGION)


def boto3_invoke(client, function, payload):
    response = client.invoke(FunctionName=function, Payload=payload)
    response["Payload"].read()
    if response["StatusCode"] != 200:
        raise RuntimeError(f"boto3 invoke: {response['StatusCode']}")


def _raw_burst(port, calls, start_at):
    """In a worker process: `calls` raw signed POSTs back to back; (first start, last end)."""
    client = RawClient(port)
    client.invoke("noop", b"{}")
    while time.time() < start_at:
        time.sleep(0.001)
    began = time.time()
    for i in range(calls):
        client.invoke("noop", b'{"i": %d}' % i)
    ended = time.time()
    client.close()
    return began, ended


# nginx answering every POST at once: 200, "{}", X-Amz-Executed-Version: $LATEST (nginx has
# no escape for "$" in a string; a geo variable holds one).
NGINX_CONF = """daemon off;
worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    geo $dollar {{ default "$"; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            if ($request_method != POST) {{ return 405; }}
            default_type application/json;
            add_header X-Amz-Executed-Version "${{dollar}}LATEST" always;
            return 200 '{{}}';
        }}
    }}
}}
"""


def nginx_binary():
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


class FixedEndpoint:
    """nginx on 127.0.0.1, plain HTTP, a fixed answer to every POST on any path: an endpoint
    that costs next to nothing, so that a rate against it is the sender's own."""

    def __init__(self, binary):
        self.directory = tempfile.mkdtemp(prefix="aws_lambda_nginx_")
        self.port = free_port()
        conf = os.path.join(self.directory, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=self.directory, port=self.port))
        with open(os.path.join(self.directory, "stderr"), "w") as stderr:
            self.process = subprocess.Popen(
                [binary, "-p", self.directory + "/", "-c", conf, "-e", os.path.join(self.directory, "error.log")],
                stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    output = self.output()
                    self.stop()
                    raise RuntimeError(f"nginx did not start: {output}")
                time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"

    def output(self):
        text = ""
        for name in ("stderr", "error.log"):
            try:
                with open(os.path.join(self.directory, name), errors="replace") as f:
                    text += f.read()
            except OSError:
                pass
        return text.strip()[-2000:]

    def stop(self):
        stop_process(self.process, self.directory)


# What a relay does, for when plpy_lambda/relay.py is not there: LISTEN, then CALL
# aws_lambda.deliver() at once, on each notification, and at least every second.
INLINE_RELAY = """
import sys
import psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
conn.add_notice_handler(lambda diagnostic: None)
conn.execute("LISTEN aws_lambda_deliveries")
while True:
    conn.execute("CALL aws_lambda.deliver()")
    for _ in conn.notifies(timeout=1.0, stop_after=1):
        pass
"""


class RelayProcess:
    """python -m plpy_lambda.relay (or the inline loop above) in its own process."""

    def __init__(self, dsn, inline=False):
        self.log = tempfile.NamedTemporaryFile("w+", prefix="aws_lambda_relay_", suffix=".log")
        if inline or not os.path.exists(os.path.join(ROOT, "plpy_lambda", "relay.py")):
            args = [sys.executable, "-c", INLINE_RELAY, dsn]
            self.label = "an inline loop in its own process: LISTEN, CALL aws_lambda.deliver() on each notification"
        else:
            args = [sys.executable, "-m", "plpy_lambda.relay", "--dsn", dsn]
            self.label = "python -m plpy_lambda.relay (one relay)"
        self.process = subprocess.Popen(args, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
                                        stdout=self.log, stderr=subprocess.STDOUT)

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-2000:]

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


# -- the benchmark ------------------------------------------------------------------

class Benchmark:
    def __init__(self, quick):
        self.quick = quick
        self.results = {}

    def count(self, name):
        return COUNTS[name][1 if self.quick else 0]

    def connect(self):
        # A statement that hangs fails rather than hanging the run (and the test that runs it).
        return psycopg.connect(self.cluster.dsn(), autocommit=True, options="-c statement_timeout=300s")

    def run(self):
        for name, value in SERVER_ENV.items():  # the Python baselines find their credentials as the server does
            os.environ[name] = value
        self.endpoint = Endpoint()
        self.cluster = None
        try:
            self.cluster = Cluster(conf={"aws_lambda.endpoint_override": f"'{self.endpoint.url}'"},
                                   env=SERVER_ENV)
            self.cluster.start()
            self.cluster.psql("CREATE EXTENSION aws_lambda CASCADE;", check=True)
            self.header()
            self.warm_path()
            self.cold_start()
            self.batches()
            self.payload_sizes()
            self.memory()
            self.commit_time_delivery()
            self.summary()
        except BaseException:
            if self.cluster is not None:
                sys.stdout.flush()
                print("benchmark failed; the server log ends with:\n"
                      + "".join(self.cluster.server_log().splitlines(True)[-30:]), file=sys.stderr)
            raise
        finally:
            if self.cluster is not None:
                self.cluster.stop()
            self.endpoint.stop()

    # -- the machine ------------------------------------------------------------
    def header(self):
        cpu = "unknown CPU"
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        cpu = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        try:
            with open("/proc/meminfo") as f:
                memory = f"{int(f.readline().split()[1]) / 1024 / 1024:.1f} GB RAM"
        except (OSError, ValueError, IndexError):
            memory = "unknown RAM"
        with self.connect() as conn:
            server_version = conn.execute("SELECT version()").fetchone()[0].split(" on ")[0]
            conn.execute("CREATE FUNCTION pg_temp.py_version() RETURNS text LANGUAGE plpython3u "
                         "AS $$import sys; return sys.version.split()[0]$$")
            server_python = conn.execute("SELECT pg_temp.py_version()").fetchone()[0]
        import boto3
        import botocore

        mode = "quick mode: tiny iteration counts, noisy figures" if self.quick else "full run"
        print(f"aws_lambda benchmark ({mode})")
        rows = [
            ["date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")],
            ["machine", f"{cpu}, {os.cpu_count()} cores, {memory}, {platform.system()} {platform.release()}"],
            ["PostgreSQL", server_version],
            ["Python", f"server's PL/Python {server_python}; benchmark and endpoint {platform.python_version()}"],
            ["boto3", f"{boto3.__version__} (botocore {botocore.__version__}) for the Python baselines"],
            ["endpoint", f"plpy_lambda emulator, its own process, {self.endpoint.url}, "
                         "SigV4 checked on every request"],
        ]
        for name, value in rows:
            print(f"  {name:<11} {value}")

    # -- warm path --------------------------------------------------------------
    def warm_path(self):
        section("Warm path: one session, one call at a time (function noop, payload {\"i\": n})")
        ep = self.endpoint
        n_loop, repeats = self.count("sql_loop_calls"), self.count("sql_loop_repeats")
        n_stmt, n_py, n_new = self.count("statement_calls"), self.count("python_calls"), self.count("new_client_calls")

        # Raw keep-alive HTTP POST.
        raw = RawClient(ep.port)
        for i in range(20):
            raw.invoke("noop", b'{"i": %d}' % i)
        times = []
        with CpuMeter(None, ep.pid) as raw_cpu:
            for i in range(n_py):
                body = b'{"i": %d}' % i
                t = time.perf_counter()
                raw.invoke("noop", body)
                times.append(time.perf_counter() - t)
        raw.close()
        raw_median = median(times)

        # boto3 with a reused client.
        client = boto3_client(ep.url)
        for i in range(20):
            boto3_invoke(client, "noop", b'{"i": %d}' % i)
        times = []
        with CpuMeter(None, ep.pid) as boto_cpu:
            for i in range(n_py):
                body = b'{"i": %d}' % i
                t = time.perf_counter()
                boto3_invoke(client, "noop", body)
                times.append(time.perf_counter() - t)
        boto_median = median(times)

        # boto3, a new client per call (the usual pattern of the peers).
        times = []
        with CpuMeter(None, ep.pid) as new_cpu:
            for i in range(n_new):
                body = b'{"i": %d}' % i
                t = time.perf_counter()
                boto3_invoke(boto3_client(ep.url), "noop", body)
                times.append(time.perf_counter() - t)
        new_median = median(times)

        # SQL: one statement looping server-side, and one statement per call.
        with self.connect() as conn:
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            loop = ("SELECT count(*) FROM generate_series(1, %s) g, "
                    "LATERAL aws_lambda.invoke('noop', json_build_object('i', g)) r WHERE r.status_code = 200")
            conn.execute(loop, (50,))
            per_call = []
            with CpuMeter(pid, ep.pid) as loop_cpu:
                for _ in range(repeats):
                    t = time.perf_counter()
                    (done,) = conn.execute(loop, (n_loop,)).fetchone()
                    per_call.append((time.perf_counter() - t) / n_loop)
                    assert done == n_loop, done
            loop_median = median(per_call)

            statement = "SELECT status_code FROM aws_lambda.invoke('noop', %s::json)"
            for i in range(20):
                conn.execute(statement, (f'{{"i": {i}}}',), prepare=True).fetchone()
            times = []
            with CpuMeter(pid, ep.pid) as stmt_cpu:
                for i in range(n_stmt):
                    t = time.perf_counter()
                    conn.execute(statement, (f'{{"i": {i}}}',), prepare=True).fetchone()
                    times.append(time.perf_counter() - t)
            stmt_median = median(times)
            plain = []
            for _ in range(min(n_stmt, 200)):
                t = time.perf_counter()
                conn.execute("SELECT 1", prepare=True).fetchone()
                plain.append(time.perf_counter() - t)
            round_trip = median(plain)
            internals = self.sql_internals(conn, n_loop)
        ep.reset()

        def cpu(meter, calls):
            client_cpu, endpoint_cpu = meter.per_call(calls)
            return [ms(client_cpu), ms(endpoint_cpu)]

        table(
            ["path", "median/call", "vs boto3", "vs raw", "caller CPU/call", "endpoint CPU/call"],
            [
                ["raw keep-alive HTTP POST (own SigV4), Python", ms(raw_median), ratio(raw_median, boto_median),
                 "1.00 x", *cpu(raw_cpu, n_py)],
                ["boto3 invoke, reused client, Python", ms(boto_median), "1.00 x", ratio(boto_median, raw_median),
                 *cpu(boto_cpu, n_py)],
                ["boto3 invoke, new client per call (peers)", ms(new_median), ratio(new_median, boto_median),
                 ratio(new_median, raw_median), *cpu(new_cpu, n_new)],
                ["aws_lambda.invoke, SQL loop in one statement", ms(loop_median), ratio(loop_median, boto_median),
                 ratio(loop_median, raw_median), *cpu(loop_cpu, n_loop * repeats)],
                ["aws_lambda.invoke, one statement per call", ms(stmt_median), ratio(stmt_median, boto_median),
                 ratio(stmt_median, raw_median), *cpu(stmt_cpu, n_stmt)],
                ["  (SELECT 1 round trip, for reference)", ms(round_trip), "", "", "", ""],
            ],
        )
        print(f"  SQL loop: {repeats} x SELECT count(*) FROM generate_series(1, {n_loop}) g, LATERAL "
              "aws_lambda.invoke('noop', json_build_object('i', g)); time per call = statement time / calls.")
        print(f"  Python paths: {n_py} calls each ({n_new} with a new client), each timed, median reported. "
              "Raw HTTP: http.client on one keep-alive connection, each POST signed by a minimal SigV4 of "
              "this script's (hmac, hashlib; signing key cached per day), so that the same endpoint checks it "
              "as it checks the others.")
        print("  Caller CPU: this process's (Python paths) or the backend's, its worker threads included "
              "(SQL paths); endpoint CPU: the endpoint process's. From /proc, 10 ms resolution.")
        print()
        floor, entry, wrapped = internals["floor"], internals.get("entry"), internals["invoke"]
        na = "n/a"
        table(
            ["where the SQL loop's time goes (loops of the same size, run alternately)", "median/call"],
            [
                ["a PL/Python function that returns at once (the floor)", ms(floor)],
                ["aws_lambda_internal._invoke_py('noop', ...) alone: Python entry point, HTTP", ms(entry) if entry else na],
                ["aws_lambda.invoke('noop', ...): that, in the LANGUAGE sql wrapper", ms(wrapped)],
                ["  so: the SQL wrapper (invoke less _invoke_py)", ms(wrapped - entry) if entry else na],
                ["  so: plpy_lambda's work and the round trip (_invoke_py less floor)",
                 ms(entry - floor) if entry else na],
                ["  for comparison: raw keep-alive HTTP POST from Python", ms(raw_median)],
            ],
        )
        target(f"SQL loop per call <= boto3 with a reused client: {ratio(loop_median, boto_median)}",
               loop_median <= boto_median)
        target(f"(aim) SQL loop per call <= 2 x raw keep-alive HTTP POST: {ratio(loop_median, raw_median)}",
               loop_median <= 2 * raw_median)
        self.results.update(raw=raw_median, boto=boto_median, new_client=new_median, loop=loop_median,
                            statement=stmt_median)

    def sql_internals(self, conn, calls):
        """Per-call times, in loops run alternately (5 rounds), of: a trivial PL/Python function,
        the internal entry point aws_lambda_internal._invoke_py, and aws_lambda.invoke."""
        loops = {
            "floor": "SELECT count(*) FROM generate_series(1, %s) g, "
                     "LATERAL pg_temp.bench_nothing(json_build_object('i', g)) r WHERE r = 1",
            "entry": "SELECT count(*) FROM generate_series(1, %s) g, LATERAL aws_lambda_internal._invoke_py("
                     "'noop', json_build_object('i', g)::text, NULL, 'RequestResponse', 'None', NULL, NULL, NULL, "
                     "false, NULL, NULL, pg_conf_load_time(), NULL) r WHERE r.status_code = 200",
            "invoke": "SELECT count(*) FROM generate_series(1, %s) g, "
                      "LATERAL aws_lambda.invoke('noop', json_build_object('i', g)) r WHERE r.status_code = 200",
        }
        conn.execute("CREATE FUNCTION pg_temp.bench_nothing(payload json) RETURNS int "
                     "LANGUAGE plpython3u AS $$return 1$$")
        try:  # an internal function: its signature may change; then its row says n/a
            conn.execute(loops["entry"], (10,))
        except psycopg.Error:
            del loops["entry"]
        times = {name: [] for name in loops}
        for _ in range(5):
            for name, sql in loops.items():
                t = time.perf_counter()
                (done,) = conn.execute(sql, (calls,)).fetchone()
                times[name].append((time.perf_counter() - t) / calls)
                assert done == calls, done
            self.endpoint.reset()
        return {name: median(values) for name, values in times.items()}

    # -- cold start -------------------------------------------------------------
    def cold_start(self):
        k = self.count("cold_connections")
        section(f"Cold start: the first statement on a new connection ({k} connections each)")
        invoke_sql = "SELECT status_code FROM aws_lambda.invoke('noop', '{}'::json)"

        def first_statement(sql):
            with self.connect() as conn:
                t = time.perf_counter()
                conn.execute(sql).fetchone()
                elapsed = time.perf_counter() - t
            time.sleep(0.1)  # let the closed backend exit before the next one starts
            return elapsed

        plain, first = [], []
        for _ in range(k):  # interleaved, so that drift hits both alike
            plain.append(first_statement("SELECT 1"))
            first.append(first_statement(invoke_sql))
        overhead = median(first) - median(plain)

        # Where the time goes. First, which modules the first call imports (one probe connection).
        modules = "DO $$import sys, json; plpy.notice(json.dumps(list(sys.modules)))$$ LANGUAGE plpython3u"
        with self.connect() as conn:
            seen = []
            conn.add_notice_handler(lambda diagnostic: seen.append(json.loads(diagnostic.message_primary)))
            conn.execute(modules)
            conn.execute("SELECT aws_lambda_internal._load()")
            conn.execute(modules)
            conn.execute(invoke_sql)
            conn.execute(modules)
        time.sleep(0.1)
        by_load = [name for name in seen[1] if name not in set(seen[0])]
        by_call = [name for name in seen[2] if name not in set(seen[1])]
        import_call = ("DO $$\nimport importlib\nfor name in %r:\n    try:\n        importlib.import_module(name)\n"
                       "    except Exception:\n        pass\n$$ LANGUAGE plpython3u" % (by_call,))

        # Then the same work, one step per statement, on new connections.
        steps = [
            ("SELECT 1 (as on a plain connection)", "SELECT 1"),
            ("PL/Python: load it, start the interpreter", "DO $$pass$$ LANGUAGE plpython3u"),
            (f"aws_lambda_internal._load(): import plpy_lambda ({len(by_load)} modules)", "SELECT aws_lambda_internal._load()"),
            (f"the imports the first call makes ({len(by_call)} modules)", import_call),
            ("first invoke, imports done (session, credentials,", invoke_sql),
            ("  threads, TCP connection, SQL function plans)", None),
            ("second invoke (warm)", invoke_sql),
        ]
        timings = {label: [] for label, sql in steps if sql}
        for _ in range(k):
            with self.connect() as conn:
                for label, sql in steps:
                    if sql:
                        t = time.perf_counter()
                        conn.execute(sql)
                        timings[label].append(time.perf_counter() - t)
            time.sleep(0.1)
        self.endpoint.reset()

        table(
            ["first statement on a new connection", "median", "min", "max"],
            [
                ["SELECT 1 (plain connection)", ms(median(plain)), ms(min(plain)), ms(max(plain))],
                ["SELECT aws_lambda.invoke('noop', '{}')", ms(median(first)), ms(min(first)), ms(max(first))],
                ["  overhead of the first invoke (median difference)", ms(overhead), "", ""],
                ["  warm invoke, one statement per call, for reference", ms(self.results["statement"]), "", ""],
            ],
        )
        print()
        table(
            ["where it goes (steps in order on a new connection)", "median", "min", "max"],
            [[label] + ([ms(median(timings[label])), ms(min(timings[label])), ms(max(timings[label]))]
                        if sql else ["", "", ""]) for label, sql in steps],
        )
        print(f"  modules plpy_lambda imports: {package_counts(by_load)}")
        print(f"  modules the first call imports: {package_counts(by_call)}")
        target(f"first invoke on a new connection <= 150 ms over a plain connection: {ms(overhead)} over",
               overhead <= 0.150)
        self.results.update(cold=overhead)

    # -- invoke_many -------------------------------------------------------------
    def batches(self):
        section("invoke_many: many payloads from one session")
        repeats, n = self.count("sleep_batch_repeats"), self.count("noop_batch")
        with self.connect() as conn:
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            conn.execute("SELECT aws_lambda.invoke('noop', '{}'::json)")
            sleep_sql = ("SELECT count(*) FROM aws_lambda.invoke_many('sleep', (SELECT array_agg("
                         "json_build_object('seconds', 0.05, 'i', g)) FROM generate_series(1, 200) g), "
                         "max_concurrency => 20) WHERE status_code = 200")
            sleeps = []
            for _ in range(repeats):
                t = time.perf_counter()
                (done,) = conn.execute(sleep_sql).fetchone()
                sleeps.append(time.perf_counter() - t)
                assert done == 200, done
            sleep_median = median(sleeps)
            self.endpoint.reset()

            noop_sql = ("SELECT count(*) FROM aws_lambda.invoke_many('noop', (SELECT array_agg("
                        "json_build_object('i', g)) FROM generate_series(1, %s) g), max_concurrency => %s) "
                        "WHERE status_code = 200")
            rates, cpu = {}, {}
            for concurrency in CONCURRENCIES:
                conn.execute(noop_sql, (min(n, 100), concurrency))
                samples = []
                with CpuMeter(pid, self.endpoint.pid) as meter:
                    for _ in range(repeats):
                        t = time.perf_counter()
                        (done,) = conn.execute(noop_sql, (n, concurrency)).fetchone()
                        samples.append(n / (time.perf_counter() - t))
                        assert done == n, done
                        self.endpoint.reset()
                rates[concurrency] = median(samples)
                cpu[concurrency] = [ms(value) for value in meter.per_call(n * repeats)]

        ceiling = self.endpoint_ceiling()
        serial = 1 / self.results["loop"]
        table(
            ["200 payloads to sleep (50 ms each), max_concurrency 20", "elapsed"],
            [["median" + (f" of {repeats}" if repeats > 1 else ""), ms(sleep_median)],
             ["ideal: 200 / 20 x 50 ms", ms(0.5)]],
        )
        target(f"200 x 50 ms at max_concurrency 20 within 1 s: {sleep_median:.2f} s", sleep_median < 1.0)
        print()
        best = max(rates.values())
        table(
            [f"{n:,} payloads to noop" + (f" (median of {repeats})" if repeats > 1 else ""), "invocations/s",
             "vs serial invoke", "vs endpoint ceiling", "backend CPU/call", "endpoint CPU/call"],
            [[f"invoke_many, max_concurrency {c}", f"{rate:,.0f}", ratio(rate, serial),
              ratio(rate, ceiling[0]) if ceiling else "-", *cpu[c]] for c, rate in rates.items()]
            + [["invoke in a SQL loop (serial), for reference", f"{serial:,.0f}", "1.00 x", "", "", ""]]
            + ([[f"endpoint ceiling: raw HTTP, {ceiling[1]} processes", f"{ceiling[0]:,.0f}", "", "1.00 x", "", ""]]
               if ceiling else []),
        )
        print("  The endpoint ceiling is what the endpoint process answers to raw signed POSTs from several "
              "client processes at once, on this machine (it shares the cores with them). CPU per call: "
              "the backend's (all its threads) and the endpoint process's, from /proc.")
        target(f"trivial function >= 1000 invocations/s from one session: best {best:,.0f}/s", best >= 1000)
        self.results.update(sleep_batch=sleep_median, batch_rate=best)

    def endpoint_ceiling(self):
        processes = max(2, min(4, os.cpu_count() or 1))
        calls = self.count("ceiling_calls_per_process")
        start_at = time.time() + 1.0
        try:
            with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) as pool:
                spans = list(pool.map(_raw_burst, [self.endpoint.port] * processes, [calls] * processes,
                                      [start_at] * processes))
        except Exception as error:  # a reference figure only
            print(f"  (endpoint ceiling not measured: {error!r})")
            return None
        self.endpoint.reset()
        began, ended = min(s[0] for s in spans), max(s[1] for s in spans)
        return processes * calls / (ended - began), processes

    # -- payload size -----------------------------------------------------------
    def payload_sizes(self):
        section("Payload size: time per call, one call at a time (function noop, answer {})")
        ep = self.endpoint
        client = boto3_client(ep.url)
        raw = RawClient(ep.port)
        build = "json_build_object('i', g, 'pad', repeat('x', %s))"
        loop = (f"SELECT count(*) FROM generate_series(1, %s) g, LATERAL aws_lambda.invoke('noop', {build}) r "
                "WHERE r.status_code = 200")
        build_only = f"SELECT count(*) FROM generate_series(1, %s) g WHERE {build} IS NOT NULL"
        floor_sql = f"SELECT count(*) FROM generate_series(1, %s) g WHERE pg_temp.bench_nothing({build}) = 1"

        def sql_per_call(conn, sql, calls, pad):
            t = time.perf_counter()
            (done,) = conn.execute(sql, (calls, pad)).fetchone()
            assert done == calls, done
            return (time.perf_counter() - t) / calls

        times, rows, parts, base = [], [], [], None
        with self.connect() as conn:
            conn.execute("CREATE FUNCTION pg_temp.bench_nothing(payload json) RETURNS int "
                         "LANGUAGE plpython3u AS $$return 1$$")
            conn.execute(loop, (20, 10))
            for label, pad, full, quick in PAYLOAD_SIZES:
                calls = quick if self.quick else full
                payloads = [json.dumps({"i": i, "pad": "x" * pad}).encode() for i in range(calls)]
                size = len(payloads[0])
                for body in payloads[:3]:
                    boto3_invoke(client, "noop", body)
                    raw.invoke("noop", body)
                times_boto, times_raw = [], []
                for body in payloads:
                    t = time.perf_counter()
                    boto3_invoke(client, "noop", body)
                    times_boto.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    raw.invoke("noop", body)
                    times_raw.append(time.perf_counter() - t)
                ep.reset()
                sql_times, build_times, floor_times = [], [], []
                for _ in range(3):
                    sql_times.append(sql_per_call(conn, loop, calls, pad))
                    ep.reset()
                    build_times.append(sql_per_call(conn, build_only, calls, pad))
                    floor_times.append(sql_per_call(conn, floor_sql, calls, pad))
                sql, boto, rawt = median(sql_times), median(times_boto), median(times_raw)
                built, floor = median(build_times), median(floor_times)
                net = sql - built
                if base is None:
                    base = (net, boto, rawt)
                name = f"{label} ({size:,} bytes)"
                rows.append([name, ms(sql), ms(built), ms(net), ms(boto), ms(rawt), ratio(net, boto),
                             ratio(net, rawt)])
                parts.append([name, ms(floor - built), ms(sql - floor), ratio(net, base[0]),
                              ratio(boto, base[1]), ratio(rawt, base[2])])
                times.append((size, net, boto, rawt))
        raw.close()
        table(["payload", "SQL loop", "- build", "= SQL net", "boto3", "raw HTTP", "net vs boto3", "net vs raw"],
              rows)
        print("  Per call. The SQL loop builds each payload server-side (json_build_object(.., repeat())); "
              "\"build\" is that alone, per row; the Python paths send prebuilt bytes.")
        print()
        table(["where SQL net goes", "PL/Python takes the argument", "plpy_lambda + HTTP",
               "vs 100 B: SQL net", "boto3", "raw HTTP"], parts)
        (size0, *small), (size1, *large) = times[-2], times[-1]
        slope = [f"{(b - a) * 1e6 / ((size1 - size0) / 1024):.1f} us" for a, b in zip(small, large)]
        print("  \"PL/Python takes the argument\": a PL/Python function that returns at once, given the same "
              "payload, less the build.")
        print(f"  Per extra KB from {PAYLOAD_SIZES[-2][0]} to {PAYLOAD_SIZES[-1][0]}: SQL net {slope[0]}, "
              f"boto3 {slope[1]}, raw HTTP {slope[2]}.")

    # -- memory -----------------------------------------------------------------
    def memory(self):
        calls, batch = self.count("memory_calls"), self.count("memory_batch")
        section("Memory: the backend's resident set (VmRSS, and its peak VmHWM, from /proc)")
        loop = ("SELECT count(*) FROM generate_series(1, %s) g, "
                "LATERAL aws_lambda.invoke('noop', json_build_object('i', g)) r WHERE r.status_code = 200")

        # Many single calls on one connection.
        rows = []
        with self.connect() as conn:
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            rows.append(("new connection, before any call", memory_kb(pid)))
            conn.execute(loop, (200,))
            rows.append(("after a warm-up of 200 calls", memory_kb(pid)))
            for label in ("after", "after another"):
                for done in range(0, calls, 1000):
                    conn.execute(loop, (min(1000, calls - done),))
                self.endpoint.reset()
                rows.append((f"{label} {calls:,} calls", memory_kb(pid)))
        warm = rows[1][1][0]
        table(
            ["one connection, single calls", "VmRSS", "vs after warm-up"],
            [[label, f"{rss / 1024:.1f} MB", f"{(rss - warm) / 1024:+.1f} MB"] for label, (rss, _) in rows],
        )
        per_call = (rows[3][1][0] - rows[2][1][0]) * 1024 / calls

        # Batches: each case on a new connection (the peak only ever grows), warmed up alike.
        payloads = (f"(SELECT array_agg(json_build_object('i', g, 'pad', repeat('x', 1000))) "
                    f"FROM generate_series(1, {batch}) g)")
        batch_sql = (f"SELECT count(*) FROM aws_lambda.invoke_many('noop', {payloads}, max_concurrency => 16) "
                     "WHERE status_code = 200")
        cases = [
            ("the payload array alone, in SQL (unnest)", f"SELECT count(*) FROM unnest({payloads})", 1),
            ("a PL/Python function that takes it as text[] (the floor)",
             f"SELECT pg_temp.bench_length({payloads}::text[])", 2),
            ("invoke_many, max_concurrency 16", batch_sql, 2),
        ]
        rows = []
        for label, sql, times in cases:
            with self.connect() as conn:
                pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
                conn.execute("CREATE FUNCTION pg_temp.bench_length(payloads text[]) RETURNS int "
                             "LANGUAGE plpython3u AS $$return len(payloads)$$")
                conn.execute(loop, (20,))
                conn.execute("SELECT pg_temp.bench_length(ARRAY['{}'])")
                rss0, hwm0 = memory_kb(pid)
                for n in range(times):
                    conn.execute(sql)
                    rss, hwm = memory_kb(pid)
                    rows.append([label if n == 0 else "  the same again, same connection",
                                 f"{(hwm - hwm0) / 1024:+.1f} MB", f"{(rss - rss0) / 1024:+.1f} MB"])
                self.endpoint.reset()
            time.sleep(0.1)
        print()
        table([f"{batch:,} payloads of ~1 KB, each case on a new connection", "peak over warm-up",
               "held after"], rows)
        floor = float(rows[1][1].split()[0])
        batch_peak = float(rows[3][1].split()[0])
        print(f"  Single calls: {per_call:,.0f} bytes per call over the last {calls:,}. "
              f"invoke_many's peak: {batch_peak - floor:+.1f} MB over the floor (PL/Python's own copy of its input). "
              "Memory a statement freed mostly stays with the process's allocator (hence \"held after\"); "
              "a second run reuses most of it.")
        self.results.update(memory_per_call=per_call, batch_peak=batch_peak - floor)

    # -- commit-time delivery -------------------------------------------------------
    def commit_time_delivery(self):
        section("Commit-time delivery: queueing with invoke_on_commit, and sending with deliver()")
        self.queueing_cost()
        print()
        self.delivery_rates()
        print()
        self.commit_latency()

    def use_endpoint(self, url):
        """Point the server at another endpoint, as an operator would (ALTER SYSTEM, reload);
        None: back to postgresql.conf's."""
        from psycopg import sql

        with self.connect() as conn:
            if url is None:
                conn.execute("ALTER SYSTEM RESET aws_lambda.endpoint_override")
            else:
                conn.execute(sql.SQL("ALTER SYSTEM SET aws_lambda.endpoint_override = {}").format(url))
            conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.3)

    def queueing_cost(self):
        n, rows, repeats = (self.count("queue_statements"), self.count("queue_bulk_rows"),
                            self.count("queue_bulk_repeats"))
        # Ordinary (logged) tables, as aws_lambda.deliveries is: a temporary table writes no WAL.
        plain_one = "INSERT INTO bench_plain (payload) VALUES (%s::json)"
        queued_one = "INSERT INTO bench_queued (payload) VALUES (%s::json)"
        bulk = {
            "plain": "INSERT INTO bench_plain (payload) "
                     "SELECT json_build_object('i', g) FROM generate_series(1, %s) g",
            "rows": "INSERT INTO bench_rows (function_name, invocation_type, log_type, payload, queued_by) "
                    "SELECT 'echo', 'Event', 'None', json_build_object('i', g), current_user "
                    "FROM generate_series(1, %s) g",
            "queue": "SELECT count(aws_lambda.invoke_on_commit('echo', json_build_object('i', g))) "
                     "FROM generate_series(1, %s) g",
            "trigger": "INSERT INTO bench_queued (payload) "
                       "SELECT json_build_object('i', g) FROM generate_series(1, %s) g",
        }
        times = {"plain": [], "queued": [], "select": []}
        bulk_times = {name: [] for name in bulk}
        with self.connect() as conn:
            for table_name in ("bench_plain", "bench_queued"):
                conn.execute(f"CREATE TABLE {table_name} (id bigserial PRIMARY KEY, payload json)")
            conn.execute("CREATE TABLE bench_rows (LIKE aws_lambda.deliveries INCLUDING ALL)")
            conn.execute("CREATE TRIGGER bench_queue AFTER INSERT ON bench_queued FOR EACH ROW "
                         "EXECUTE FUNCTION aws_lambda.invoke_on_commit_trigger('echo')")
            with conn.transaction(force_rollback=True):  # warm-up: plans, caches
                for i in range(50):
                    conn.execute(plain_one, ('{"i": %d}' % i,), prepare=True)
                    conn.execute(queued_one, ('{"i": %d}' % i,), prepare=True)
                for sql in bulk.values():
                    conn.execute(sql, (100,))
            # One row per statement, each statement timed, alternately; in transactions of
            # up to 500 statements, rolled back (nothing is sent).
            for start in range(0, n, 500):
                with conn.transaction(force_rollback=True):
                    for i in range(start, min(n, start + 500)):
                        body = '{"i": %d}' % i
                        for name, sql, args in (("plain", plain_one, (body,)), ("queued", queued_one, (body,)),
                                                ("select", "SELECT 1", None)):
                            t = time.perf_counter()
                            conn.execute(sql, args, prepare=True)
                            times[name].append(time.perf_counter() - t)
            for _ in range(repeats):
                for name, sql in bulk.items():
                    with conn.transaction(force_rollback=True):
                        t = time.perf_counter()
                        conn.execute(sql, (rows,))
                        bulk_times[name].append(time.perf_counter() - t)
            conn.execute("DROP TABLE bench_plain, bench_queued, bench_rows")
            (left,) = conn.execute("SELECT count(*) FROM aws_lambda.deliveries").fetchone()
            assert left == 0, f"{left} deliveries left behind by rolled-back transactions"
        one = {name: median(values) for name, values in times.items()}
        many = {name: median(values) for name, values in bulk_times.items()}
        best = {name: min(values) for name, values in bulk_times.items()}
        table(
            ["queueing inside a transaction (rolled back)", "median", "best", "vs baseline"],
            [
                ["one-row INSERT, plain table (no trigger)", ms(one["plain"]), ms(min(times["plain"])), "1.00 x"],
                ["one-row INSERT, table with invoke_on_commit_trigger('echo')", ms(one["queued"]),
                 ms(min(times["queued"])), ratio(one["queued"], one["plain"])],
                ["  (SELECT 1 round trip, for reference)", ms(one["select"]), ms(min(times["select"])), ""],
                [f"INSERT ... SELECT of the same {rows:,} rows, table like aws_lambda.deliveries",
                 ms(many["rows"]), ms(best["rows"]), "1.00 x"],
                [f"SELECT count(invoke_on_commit('echo', ...)) over {rows:,} rows", ms(many["queue"]),
                 ms(best["queue"]), ratio(many["queue"], many["rows"])],
                [f"  (INSERT ... SELECT of {rows:,} payloads, plain table)", ms(many["plain"]), ms(best["plain"]),
                 f"{many['queue'] / many['plain']:.2f} x"],
                [f"INSERT ... SELECT of {rows:,} rows, table with the trigger", ms(many["trigger"]),
                 ms(best["trigger"]), ratio(many["trigger"], many["plain"])],
            ],
        )
        print(f"  One row per statement: {n:,} statements of each kind from one psycopg connection, run "
              f"alternately, each timed; median. {rows:,} rows in one statement: {repeats} runs of each, "
              "alternately, each in a transaction rolled back; median (best beside it). Plain tables: "
              "(id bigserial primary key, payload json); the trigger: AFTER INSERT ... FOR EACH ROW; the "
              "baseline of invoke_on_commit inserts the rows it stores into a copy of the log (same "
              "columns, defaults and indexes); all ordinary tables, as the log is.")
        row_ratio = one["queued"] / one["plain"]
        bulk_ratio = many["queue"] / many["rows"]
        target(f"one-row INSERT with the trigger <= 2 x the same INSERT without: {row_ratio:.2f} x",
               row_ratio <= 2)
        target(f"{rows:,} invoke_on_commit in one statement <= 5 x an INSERT ... SELECT of the same rows: "
               f"{bulk_ratio:.2f} x", bulk_ratio <= 5)
        self.results.update(queue_row_ratio=row_ratio, queue_bulk_ratio=bulk_ratio)

    def delivery_rates(self):
        n, repeats = self.count("delivery_calls"), self.count("sleep_batch_repeats")
        queue_sql = ("SELECT count(aws_lambda.invoke_on_commit('noop', json_build_object('i', g))) "
                     "FROM generate_series(1, %s) g")
        many_sql = ("SELECT count(*) FROM aws_lambda.invoke_many('noop', (SELECT array_agg(json_build_object("
                    "'i', g)) FROM generate_series(1, %s) g), invocation_type => 'Event', max_concurrency => 32) "
                    "WHERE status_code BETWEEN 200 AND 299")

        def measure(reset):
            """(deliver() rate, invoke_many rate) against the endpoint the server uses now."""
            with self.connect() as conn:
                conn.add_notice_handler(lambda diagnostic: None)
                conn.execute(queue_sql, (50,))  # warm-up
                conn.execute("CALL aws_lambda.deliver()")
                conn.execute(many_sql, (50,))
                delivered, sent = [], []
                for _ in range(repeats):
                    conn.execute("TRUNCATE aws_lambda.deliveries")
                    reset()
                    conn.execute(queue_sql, (n,))
                    t = time.perf_counter()
                    conn.execute("CALL aws_lambda.deliver()")
                    delivered.append(n / (time.perf_counter() - t))
                    statuses = dict(conn.execute("SELECT status, count(*) FROM aws_lambda.deliveries "
                                                 "GROUP BY status").fetchall())
                    assert statuses == {"succeeded": n}, statuses
                    reset()
                    t = time.perf_counter()
                    (done,) = conn.execute(many_sql, (n,)).fetchone()
                    sent.append(n / (time.perf_counter() - t))
                    assert done == n, done
                conn.execute("TRUNCATE aws_lambda.deliveries")
                reset()
            return median(delivered), median(sent)

        rows = []
        emulator_rate, many_rate = measure(self.endpoint.reset)
        rows.append(["local emulator (own process, SigV4 checked)", f"{emulator_rate:,.0f}", f"{many_rate:,.0f}",
                     ratio(emulator_rate, many_rate)])
        binary, nginx_rate, fixed = nginx_binary(), None, None
        if binary is None:
            rows.append(["nginx, fixed response", "skipped: nginx not installed", "", ""])
        else:
            try:
                fixed = FixedEndpoint(binary)
                self.use_endpoint(fixed.url)
                nginx_rate, nginx_many = measure(lambda: None)
                rows.append([f"nginx, fixed response ({fixed.url})", f"{nginx_rate:,.0f}", f"{nginx_many:,.0f}",
                             ratio(nginx_rate, nginx_many)])
            finally:
                self.use_endpoint(None)
                if fixed is not None:
                    fixed.stop()
        table([f"{n:,} Event invocations of noop" + (f" (median of {repeats})" if repeats > 1 else ""),
               "CALL deliver(), /s", "invoke_many, /s", "deliver vs invoke_many"], rows)
        print(f"  deliver(): {n:,} rows queued by one committed statement, then one CALL aws_lambda.deliver() "
              "(batch_size 100, max_concurrency 32, a COMMIT after each batch) timed until it returns with all "
              "succeeded. invoke_many: the same payloads in one statement, invocation_type Event, "
              "max_concurrency 32. nginx: plain HTTP, 200 '{}' to every POST, X-Amz-Executed-Version: $LATEST; "
              "the server pointed at it by ALTER SYSTEM and a reload.")
        target(f"one deliverer >= 1,000 deliveries/s against the local emulator: {emulator_rate:,.0f}/s",
               emulator_rate >= 1000)
        if nginx_rate is None:
            print("  skipped: nginx not installed (target: one deliverer >= 2,500 deliveries/s against nginx)")
        else:
            target(f"one deliverer >= 2,500 deliveries/s against nginx: {nginx_rate:,.0f}/s", nginx_rate >= 2500)
        self.results.update(delivery_rate=emulator_rate, delivery_rate_nginx=nginx_rate)

    def commit_latency(self):
        from lambda_emulator import Emulator

        seconds = self.count("latency_seconds")
        n = seconds * LATENCY_RATE
        queue_sql = "SELECT aws_lambda.invoke_on_commit('noop', %s::json)"
        # This endpoint runs in this process: its records keep each request's body and arrival time.
        with Emulator(FUNCTIONS, region=REGION, credentials={ACCESS_KEY: SECRET_KEY}, quiet=True) as emulator:
            self.use_endpoint(emulator.url)
            relay = None
            try:
                with self.connect() as conn:
                    conn.execute("TRUNCATE aws_lambda.deliveries")

                    def wait_sent(count, seconds):
                        deadline = time.monotonic() + seconds
                        while len(emulator.requests) < count:
                            if time.monotonic() > deadline:
                                return False
                            time.sleep(0.01)
                        return True

                    for inline in (False, True):  # the relay module, else the inline loop
                        relay = RelayProcess(self.cluster.dsn(), inline=inline)
                        time.sleep(0.5)
                        for i in range(20):
                            conn.execute(queue_sql, (json.dumps({"warm-up": i}),), prepare=True)
                            time.sleep(0.01)
                        if wait_sent(20, 15):
                            break
                        print(f"  ({relay.label} did not deliver; its output: {relay.output()!r})")
                        relay.stop()
                        relay = None
                    else:
                        raise RuntimeError("no relay delivered what was queued")
                    label = relay.label
                    time.sleep(0.2)
                    emulator.reset()
                    start = time.perf_counter()
                    for i in range(n):
                        wait = start + i / LATENCY_RATE - time.perf_counter()
                        if wait > 0:
                            time.sleep(wait)
                        conn.execute(queue_sql, (json.dumps({"i": i, "committed": time.time()}),), prepare=True)
                    elapsed = time.perf_counter() - start
                    complete = wait_sent(n, 30)
                    records = list(emulator.requests)
                    conn.execute("TRUNCATE aws_lambda.deliveries")
            finally:
                if relay is not None:
                    relay.stop()
                self.use_endpoint(None)
        latencies = sorted(record.received - json.loads(record.body)["committed"] for record in records
                           if record.function == "noop" and b"committed" in record.body)
        assert complete and len(latencies) == n, f"{len(latencies)} of {n} arrived"

        def percentile(p):
            return latencies[min(len(latencies) - 1, int(round(p / 100 * (len(latencies) - 1))))]

        p50, p99 = percentile(50), percentile(99)
        table(
            [f"commit to endpoint, {n:,} commits at {n / elapsed:.0f}/s", "p50", "p90", "p99", "max"],
            [["one invoke_on_commit per committed statement", ms(p50), ms(percentile(90)), ms(p99),
              ms(latencies[-1])]],
        )
        print(f"  Relay: {label}. Each commit (autocommit, one statement) queues one Event invocation of noop "
              "whose payload carries time.time() just before it is sent; the endpoint (a plpy_lambda emulator "
              "in this process, SigV4 checked) records each request's arrival time. Latency = arrival - that.")
        target(f"commit to endpoint p50 <= 5 ms: {ms(p50)}", p50 <= 0.005)
        target(f"commit to endpoint p99 <= 50 ms: {ms(p99)}", p99 <= 0.050)
        self.results.update(latency_p50=p50, latency_p99=p99)

    # -- summary ------------------------------------------------------------------
    def summary(self):
        r = self.results
        section("Targets")
        checks = [
            ("warm: SQL loop per call <= boto3 reused client", f"{ratio(r['loop'], r['boto'])}",
             r["loop"] <= r["boto"]),
            ("warm (aim): SQL loop per call <= 2 x raw HTTP POST", f"{ratio(r['loop'], r['raw'])}",
             r["loop"] <= 2 * r["raw"]),
            ("cold start: first invoke <= 150 ms over a plain connection", ms(r["cold"]), r["cold"] <= 0.150),
            ("invoke_many: 200 x 50 ms at concurrency 20 < 1 s", f"{r['sleep_batch']:.2f} s",
             r["sleep_batch"] < 1.0),
            ("invoke_many: trivial function >= 1000/s", f"{r['batch_rate']:,.0f}/s", r["batch_rate"] >= 1000),
            ("invoke_on_commit: one-row INSERT with the trigger <= 2 x without", f"{r['queue_row_ratio']:.2f} x",
             r["queue_row_ratio"] <= 2),
            ("invoke_on_commit: 5,000 in one statement <= 5 x an INSERT of the same rows", f"{r['queue_bulk_ratio']:.2f} x",
             r["queue_bulk_ratio"] <= 5),
            ("deliver: one deliverer >= 1000/s (local emulator)", f"{r['delivery_rate']:,.0f}/s",
             r["delivery_rate"] >= 1000),
            ("deliver: one deliverer >= 2500/s (nginx)",) + (
                ("skipped: nginx not installed", None) if r["delivery_rate_nginx"] is None
                else (f"{r['delivery_rate_nginx']:,.0f}/s", r["delivery_rate_nginx"] >= 2500)),
            ("commit to endpoint, one relay: p50 <= 5 ms", ms(r["latency_p50"]), r["latency_p50"] <= 0.005),
            ("commit to endpoint, one relay: p99 <= 50 ms", ms(r["latency_p99"]), r["latency_p99"] <= 0.050),
        ]
        table(["target", "measured", ""], [[name, value, "" if met is None else "target met" if met
                                           else "target missed"] for name, value, met in checks])
        print(f"  memory (no pass/fail figure): {r['memory_per_call']:,.0f} bytes per call over many calls; "
              f"invoke_many's peak {r['batch_peak']:+.1f} MB over a PL/Python function given the same payloads.")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny iteration counts (the test suite's mode)")
    args = parser.parse_args(argv)
    Benchmark(args.quick).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
