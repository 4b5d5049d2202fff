"""The relay's metrics, as an operator reads them: a real Prometheus scrapes
`python -m plpy_lambda.relay --metrics-address 127.0.0.1:PORT` and answers PromQL."""

import os
import subprocess
import sys
import urllib.request

from cluster import free_port
from conftest import ROOT, wait_until
from prometheus import Prometheus, needs_prometheus
from test_relay import relays, statuses  # noqa: F401  (the fixture)

RULES = os.path.join(ROOT, "examples", "prometheus", "aws_lambda_alerts.yml")


def metrics_text(port):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return answer.read().decode()


def value(prometheus, promql):
    """The one number a PromQL query returns (None: no series)."""
    result = prometheus.query(promql)
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


def settled(conn, total):
    return lambda: sum(n for status, n in statuses(conn).items() if status != "pending") == total


@needs_prometheus
def test_prometheus_counts_what_the_relay_delivered(cluster, emulator, queue, relays, tmp_path):
    port = free_port()
    relays(cluster.dsn(), "--metrics-address", f"127.0.0.1:{port}")
    emulator.set_fault("echo", "status", count=1, status=503)  # the first attempt is retried
    with Prometheus(tmp_path, targets=[f"127.0.0.1:{port}"], rule_files=[RULES]) as prometheus:
        queue.execute("SELECT aws_lambda.invoke_on_commit('echo', json_build_object('i', g)) "
                      "FROM generate_series(1, 20) AS g")
        queue.execute("SELECT aws_lambda.invoke_on_commit('fail', '{}'::json, invocation_type => 'RequestResponse')")
        queue.execute("SELECT aws_lambda.invoke_on_commit('no-such-function', '{}'::json)")
        wait_until(settled(queue, 22), 15, "every delivery is settled")
        prometheus.wait_for('sum(aws_lambda_deliveries_total{outcome="succeeded"}) == 20', timeout=20)

        assert value(prometheus, 'aws_lambda_deliveries_total{function="echo", outcome="succeeded"}') == 20
        assert value(prometheus, 'aws_lambda_deliveries_total{function="echo", outcome="retried"}') == 1
        assert value(prometheus, 'aws_lambda_deliveries_total{function="fail", outcome="failed"}') == 1
        assert value(prometheus, 'aws_lambda_deliveries_total{function="no-such-function", outcome="dead"}') == 1
        assert value(prometheus, "sum(aws_lambda_delivery_attempt_seconds_count)") == 23  # every call made
        assert value(prometheus, "sum(aws_lambda_delivery_lag_seconds_count)") == 22  # every settled one
        assert 0 < value(prometheus, 'histogram_quantile(0.5, sum by (le) '
                                     '(aws_lambda_delivery_attempt_seconds_bucket))') < 1
        assert value(prometheus, "aws_lambda_relay_connected") == 1
        assert value(prometheus, "aws_lambda_relay_reconnects_total") == 0

        # The dead letter fires the example alert once Prometheus has evaluated it.
        prometheus.wait_for('ALERTS{alertname="AwsLambdaDeadDeliveries", alertstate="firing"}', timeout=15)


@needs_prometheus
def test_the_pending_gauges_show_a_delivery_that_waits(cluster, queue, relays, tmp_path):
    port = free_port()
    relays(cluster.dsn(), "--metrics-address", f"127.0.0.1:{port}")
    queue.execute("""INSERT INTO aws_lambda.deliveries (function_name, invocation_type, log_type, payload,
                                                        queued_by, created_at, next_attempt_at)
                     VALUES ('echo', 'Event', 'None', '{}', current_user, now() - interval '10 minutes',
                             now() + interval '1 hour')""")  # retrying, due in an hour
    with Prometheus(tmp_path, targets=[f"127.0.0.1:{port}"]) as prometheus:
        prometheus.wait_for("aws_lambda_deliveries_pending == 1", timeout=20)
        assert value(prometheus, "aws_lambda_oldest_pending_seconds") >= 600
        queue.execute("DELETE FROM aws_lambda.deliveries")
        prometheus.wait_for("aws_lambda_deliveries_pending == 0", timeout=10)
        assert value(prometheus, "aws_lambda_oldest_pending_seconds") == 0


def test_a_relay_counts_its_reconnections_and_shows_when_it_is_not_connected(cluster, queue, relays):
    port = free_port()
    relays(cluster.dsn(), "--metrics-address", f"127.0.0.1:{port}")
    assert "aws_lambda_relay_connected 1.0" in metrics_text(port)
    queue.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE application_name = 'aws_lambda relay'")
    wait_until(lambda: "aws_lambda_relay_reconnects_total 1.0" in metrics_text(port), 15,
               "the relay reconnects")
    assert "aws_lambda_relay_connected 1.0" in metrics_text(port)

    nowhere, other = free_port(), free_port()  # no server listens at nowhere: the relay keeps trying
    lost = subprocess.Popen([sys.executable, "-m", "plpy_lambda.relay", "--dsn",
                             f"host=127.0.0.1 port={nowhere} dbname=postgres connect_timeout=1",
                             "--metrics-address", f"127.0.0.1:{other}"],
                            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        def disconnected():
            try:
                return "aws_lambda_relay_connected 0.0" in metrics_text(other)
            except OSError:
                return False
        wait_until(disconnected, 10, "the unconnected relay serves its metrics")
    finally:
        lost.kill()
        lost.wait(10)


def test_a_bad_metrics_address_is_refused_before_anything_starts(cluster):
    run = subprocess.run([sys.executable, "-m", "plpy_lambda.relay", "--dsn", cluster.dsn(),
                          "--metrics-address", "9187"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert run.returncode == 2
    assert "--metrics-address 9187: use HOST:PORT, for example 127.0.0.1:9187" in run.stderr

