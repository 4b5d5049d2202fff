"""A real Prometheus server on 127.0.0.1, for tests: the `prometheus` binary (Debian's
package, which scripts/setup installs) as a subprocess.

It listens on a free port and keeps its storage, its generated prometheus.yml and its log
in the directory given. It scrapes one job, aws_lambda_relay (the job name the example
alert rules expect), at the targets given, and loads the rule files given. Prometheus
needs no flag to run as root. It is ready within a second and evaluates its rules from
then on, but scrapes a target first about 5 s after starting (it takes up new targets at
most every 5 s): give wait_for a timeout that allows for it.

    with Prometheus(tmp_path, targets=["127.0.0.1:9300"], rule_files=[RULES]) as prometheus:
        prometheus.url                             # http://127.0.0.1:PORT
        prometheus.query('up{job="aws_lambda_relay"}')
                                                   # data.result of /api/v1/query
        prometheus.wait_for("aws_lambda_relay_connected == 1", timeout=10)
        prometheus.targets()                       # data.activeTargets of /api/v1/targets
        prometheus.rules()                         # data.groups of /api/v1/rules
        prometheus.alerts()                        # data.alerts of /api/v1/alerts

A query Prometheus refuses raises PrometheusError with its errorType and error. Tests
that need the binaries carry @needs_prometheus or @needs_promtool: without them they skip.
"""

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from cluster import free_port

JOB = "aws_lambda_relay"
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
_INSTALL = "scripts/setup installs Debian's prometheus package, which has both"
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason=f"no prometheus on PATH ({_INSTALL})")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason=f"no promtool on PATH ({_INSTALL})")

# Talk to 127.0.0.1 directly, whatever http_proxy says.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class PrometheusError(Exception):
    """An answer of the HTTP API whose status is not success."""


class Prometheus:
    def __init__(self, directory, targets=(), rule_files=(), scrape_interval="1s",
                 evaluation_interval="1s"):
        self.directory = str(directory)
        self.scrape_targets = list(targets)
        self.rule_files = [os.path.abspath(path) for path in rule_files]
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.config = os.path.join(self.directory, "prometheus.yml")
        self.log_path = os.path.join(self.directory, "prometheus.log")
        self.port = None
        self.process = None

    def start(self, timeout=30):
        """Write prometheus.yml, start the server and wait until /-/ready answers."""
        os.makedirs(self.directory, exist_ok=True)
        with open(self.config, "w") as file:
            json.dump(self._config(), file, indent=2)  # JSON is YAML
        self.port = free_port()
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [PROMETHEUS or "prometheus",
                 f"--config.file={self.config}",
                 f"--storage.tsdb.path={os.path.join(self.directory, 'data')}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        end = time.monotonic() + timeout
        while not self._ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited ({self.process.returncode}):\n{self.log()}")
            if time.monotonic() > end:
                self.stop()
                raise RuntimeError(f"prometheus not ready after {timeout} s:\n{self.log()}")
            time.sleep(0.05)
        return self

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def log(self):
        with open(self.log_path) as log:
            return log.read()

    def api(self, endpoint, **params):
        """GET /api/v1/<endpoint>?params: the answer's data, or PrometheusError."""
        url = f"{self.url}/api/v1/{endpoint}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with _opener.open(url, timeout=10) as answer:
                body = json.load(answer)
        except urllib.error.HTTPError as error:  # 400, 422: the body says why
            try:
                body = json.load(error)
            except ValueError:
                raise PrometheusError(f"{endpoint}: HTTP {error.code}") from None
            finally:
                error.close()
        if body.get("status") != "success":
            raise PrometheusError(f"{endpoint} {params}: {body.get('errorType')}: "
                                  f"{body.get('error')}")
        return body["data"]

    def query(self, promql):
        """The result of an instant query (data.result: a list of {metric, value} for a
        vector)."""
        return self.api("query", query=promql)["result"]

    def wait_for(self, promql, predicate=bool, timeout=10):
        """Query until predicate(result) is true; that result. AssertionError after timeout."""
        end = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if predicate(result):
                return result
            if time.monotonic() > end:
                raise AssertionError(f"{promql}: still {result} after {timeout} s")
            time.sleep(0.1)

    def targets(self):
        """The active targets: job, scrapeUrl, health (up, down, unknown), lastError."""
        return self.api("targets")["activeTargets"]

    def rules(self):
        """The rule groups: name, file, rules (each with name, query, health, lastError,
        and for an alerting rule its state and alerts)."""
        return self.api("rules")["groups"]

    def alerts(self):
        """The alerts pending or firing: labels, annotations, state, activeAt, value."""
        return self.api("alerts")["alerts"]

    def _config(self):
        return {
            "global": {"scrape_interval": self.scrape_interval,
                       "evaluation_interval": self.evaluation_interval},
            "rule_files": self.rule_files,
            "scrape_configs": [{"job_name": JOB,
                                "static_configs": [{"targets": self.scrape_targets}]}],
        }

    def _ready(self):
        try:
            with _opener.open(f"{self.url}/-/ready", timeout=2) as answer:
                return answer.status == 200
        except (OSError, urllib.error.URLError):
            return False
