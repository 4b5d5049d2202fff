"""The monitoring examples for the relay's metrics (python -m plpy_lambda.relay
--metrics-address HOST:PORT): alert rules, examples/prometheus/aws_lambda_alerts.yml, and a
Grafana dashboard, examples/grafana/aws_lambda_dashboard.json.

promtool checks the rules and runs their unit tests (tests/prometheus/aws_lambda_alerts_test.yml);
a real Prometheus (tests/prometheus.py) evaluates every rule and accepts every query of the
dashboard; both use only the relay's metrics, and `up`. No PostgreSQL is needed. Without
prometheus or promtool (scripts/setup installs Debian's package) these tests skip.
"""

import json
import os
import re
import subprocess
import time

import pytest

from conftest import ROOT
from prometheus import PROMTOOL, Prometheus, needs_prometheus, needs_promtool

RULES = os.path.join(ROOT, "examples", "prometheus", "aws_lambda_alerts.yml")
RULE_TESTS = os.path.join(ROOT, "tests", "prometheus", "aws_lambda_alerts_test.yml")
DASHBOARD = os.path.join(ROOT, "examples", "grafana", "aws_lambda_dashboard.json")
RELAY_METRICS = {
    "aws_lambda_deliveries_total",
    "aws_lambda_delivery_attempt_seconds",
    "aws_lambda_delivery_lag_seconds",
    "aws_lambda_deliveries_pending",
    "aws_lambda_oldest_pending_seconds",
    "aws_lambda_relay_connected",
    "aws_lambda_relay_reconnects_total",
}
ALERTS = {
    "aws_lambda_deliveries": ["AwsLambdaDeadDeliveries", "AwsLambdaFunctionFailing",
                              "AwsLambdaDeliveryLagHigh", "AwsLambdaOldestPendingDelivery"],
    "aws_lambda_relay": ["AwsLambdaRelayDown", "AwsLambdaRelayDisconnected",
                         "AwsLambdaRelayAbsent"],
}


def metric_names(promql):
    """The aws_lambda_* metrics a query reads (a histogram's _bucket, _sum and _count as the
    histogram), not counting quoted label values such as job="aws_lambda_relay"."""
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', promql)
    return {re.sub(r"_(bucket|sum|count)$", "", name)
            for name in re.findall(r"\baws_lambda_[a-z_]+", unquoted)}


def dashboard():
    with open(DASHBOARD) as file:
        return json.load(file)


def dashboard_queries():
    return [target["expr"] for panel in dashboard()["panels"] for target in panel["targets"]]


def as_promql(expr):
    """A dashboard query as Grafana sends it: interval variables 1m, every function."""
    promql = re.sub(r"\$__(rate_interval|interval|range)\b", "1m", expr)
    promql = promql.replace("$function", ".*")
    assert "$" not in promql, f"a Grafana variable this test does not know: {expr}"
    return promql


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """A real Prometheus with the example rules loaded, evaluated every second."""
    with Prometheus(tmp_path_factory.mktemp("prometheus"), rule_files=[RULES]) as server:
        yield server


def evaluated_rules(prometheus, timeout=10):
    """The rule groups, once every rule has been evaluated at least once."""
    end = time.monotonic() + timeout
    while True:
        groups = prometheus.rules()
        if all(rule["health"] != "unknown" for group in groups for rule in group["rules"]):
            return groups
        assert time.monotonic() < end, f"rules not evaluated after {timeout} s: {groups}"
        time.sleep(0.1)


def promtool(*args):
    return subprocess.run([PROMTOOL, *args], cwd=ROOT, capture_output=True, text=True)


# --- alert rules -------------------------------------------------------------------------

@needs_promtool
def test_the_example_alert_rules_pass_promtool_check():
    checked = promtool("check", "rules", RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 7 rules found" in checked.stdout


@needs_promtool
def test_each_alert_fires_when_it_should_and_only_then():
    tested = promtool("test", "rules", RULE_TESTS)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


@needs_prometheus
def test_a_real_prometheus_loads_and_evaluates_every_alert_rule(prometheus):
    groups = evaluated_rules(prometheus)
    assert {group["name"]: [rule["name"] for rule in group["rules"]] for group in groups} == ALERTS
    for group in groups:
        for rule in group["rules"]:
            assert rule["health"] == "ok", rule


@needs_prometheus
def test_every_alert_has_a_severity_a_summary_and_a_description(prometheus):
    for group in prometheus.rules():
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("warning", "critical"), rule["name"]
            assert rule["annotations"]["summary"], rule["name"]
            assert rule["annotations"]["description"], rule["name"]


@needs_prometheus
def test_the_alert_rules_read_only_the_relay_metrics(prometheus):
    queries = [rule["query"] for group in prometheus.rules() for rule in group["rules"]]
    used = set().union(*map(metric_names, queries))
    assert used and used <= RELAY_METRICS
    assert any('up{job="aws_lambda_relay"}' in query for query in queries)


# --- Grafana dashboard -------------------------------------------------------------------

def test_every_dashboard_panel_has_a_prometheus_query():
    board = dashboard()
    assert board["schemaVersion"] >= 39
    assert board["panels"]
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]


def test_the_dashboard_shows_every_relay_metric_and_no_other():
    board = dashboard()
    variables = [variable["definition"] for variable in board["templating"]["list"]
                 if variable["type"] == "query"]
    used = set().union(*map(metric_names, dashboard_queries() + variables))
    assert used == RELAY_METRICS


@needs_prometheus
def test_prometheus_accepts_every_dashboard_query(prometheus):
    for expr in dashboard_queries():
        prometheus.query(as_promql(expr))  # PrometheusError unless status is success
