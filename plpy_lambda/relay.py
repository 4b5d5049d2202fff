"""plpy-lambda-relay: sends what aws_lambda.invoke_on_commit queued, as soon as it is committed.

Its one job: keep a connection to the database, LISTEN aws_lambda_deliveries, and run
CALL aws_lambda.deliver() at start, on each notification and every --poll seconds (for
retries that come due, and for notifications sent while no relay listened). The server
sends the invocations with its own credentials; the relay holds none. Several relays on
one database share the work: deliver() claims rows with SKIP LOCKED.

    python -m plpy_lambda.relay --dsn "host=db.internal dbname=app user=relay"

It reconnects by itself (backoff 0.5 s doubling to 5 s) when the server restarts or the
connection drops; given every host of a replicated cluster (host=a,b port=5432,5432
target_session_attrs=read-write), it follows a promoted standby the same way. On
PostgreSQL 14 and later it sets client_connection_check_interval, so that when the relay
dies its backend stops delivering within about a second and the rows it had claimed go
back to the queue. SIGTERM or SIGINT: finish the CALL in progress
(canceled after --grace seconds; a canceled batch stays queued), then exit 0.

With --metrics-address HOST:PORT it serves Prometheus metrics at /metrics
(docs/operating.md; needs prometheus_client: pip install '.[relay]'). It then sets
aws_lambda.report_deliveries in its session, so that deliver() reports each batch's
outcomes, and every second the queue's gauges, in a NOTICE: no query of its own.
"""

import argparse
import json
import logging
import os
import select
import signal
import sys
import threading

import psycopg

from plpy_lambda.delivery import REPORT  # deliver()'s NOTICE under aws_lambda.report_deliveries

CHANNEL = "aws_lambda_deliveries"
APPLICATION_NAME = "aws_lambda relay"
CHECK_INTERVAL_MS = 1000  # client_connection_check_interval of the relay's backend
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 5.0  # seconds between reconnection attempts
log = logging.getLogger("plpy-lambda-relay")


ATTEMPT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600)


class Metrics:
    """The relay's Prometheus metrics, served at http://HOST:PORT/metrics."""

    def __init__(self, host, port):
        import prometheus_client as prom

        prom.disable_created_metrics()  # no *_created series beside each counter
        self.deliveries = prom.Counter(
            "aws_lambda_deliveries", "Delivery attempts by outcome: succeeded, failed (the "
            "function raised an error), dead (given up) or retried", ["function", "outcome"])
        self.attempt_seconds = prom.Histogram(
            "aws_lambda_delivery_attempt_seconds", "Duration of one call to Lambda",
            ["function"], buckets=ATTEMPT_BUCKETS)
        self.lag_seconds = prom.Histogram(
            "aws_lambda_delivery_lag_seconds", "From queueing (or redelivery) to the settled "
            "outcome of a delivery", ["function"], buckets=LAG_BUCKETS)
        self.pending = prom.Gauge(
            "aws_lambda_deliveries_pending", "Deliveries waiting to be sent (due or retrying)")
        self.oldest_pending = prom.Gauge(
            "aws_lambda_oldest_pending_seconds", "Age of the oldest pending delivery (0: none)")
        self.connected = prom.Gauge(
            "aws_lambda_relay_connected", "1 while the relay holds its database connection")
        self.reconnects = prom.Counter(
            "aws_lambda_relay_reconnects", "Connections made again after one was lost")
        prom.start_http_server(port, addr=host)  # a daemon thread: it ends with the relay

    def record(self, report):
        for function, outcome, seconds, lag in report.get("deliveries", ()):
            self.deliveries.labels(function, outcome).inc()
            if seconds is not None:
                self.attempt_seconds.labels(function).observe(seconds)
            if lag is not None:
                self.lag_seconds.labels(function).observe(lag)
        if "pending" in report:
            self.pending.set(report["pending"])
            self.oldest_pending.set(report["oldest_pending_seconds"])

class Relay:
    """One connection that LISTENs and CALLs aws_lambda.deliver(), reconnecting as needed."""

    def __init__(self, args, metrics=None):
        self.args = args
        self.metrics = metrics
        self.has_connected = False
        self.call = (f"CALL aws_lambda.deliver(batch_size => {args.batch_size:d}, "
                     f"max_concurrency => {args.max_concurrency:d})")
        self.conn = None
        self.notified = False
        self.stopping = threading.Event()
        self.idle = threading.Event()  # set while no CALL runs
        self.idle.set()
        self.wake_r, self.wake_w = os.pipe()  # a signal writes here: an idle wait ends at once
        os.set_blocking(self.wake_w, False)

    def run(self):
        backoff = BACKOFF_FIRST
        while not self.stopping.is_set():
            try:
                if self.conn is None:
                    self.conn = self.connect()
                self.deliver()
                backoff = BACKOFF_FIRST
                self.wait(self.args.poll, self.conn.fileno())
            except psycopg.Error as error:
                if self.stopping.is_set():
                    break
                lost = self.conn is None or self.conn.closed
                log.error("%s: %s; %s in %.1f s", "connection failed" if lost else "error",
                          " ".join(str(error).split()), "reconnecting" if lost else "again",
                          backoff)
                self.close()
                self.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
        self.close()
        log.info("stopped")

    def connect(self):
        conn = psycopg.connect(self.args.dsn, autocommit=True, application_name=APPLICATION_NAME)
        conn.add_notice_handler(self.on_notice)
        conn.add_notify_handler(self.on_notify)
        try:
            if conn.info.server_version >= 140000:
                conn.execute(f"SET client_connection_check_interval = {CHECK_INTERVAL_MS}")
            else:
                log.warning("PostgreSQL before 14: if this relay dies, its backend goes on "
                            "delivering its batch unseen until the batch ends")
            if self.metrics is not None:
                conn.execute("SET aws_lambda.report_deliveries = on")
            conn.execute(f"LISTEN {CHANNEL}")  # before the first CALL: no commit falls between
        except psycopg.Error:
            conn.close()
            raise
        log.info("connected to database %s as %s (backend %d); listening on %s",
                 conn.info.dbname, conn.info.user, conn.info.backend_pid, CHANNEL)
        if self.metrics is not None:
            self.metrics.connected.set(1)
            if self.has_connected:
                self.metrics.reconnects.inc()
        self.has_connected = True
        return conn

    def deliver(self):
        """CALL deliver() until no notification came in while it ran."""
        while True:
            self.notified = False
            self.idle.clear()
            try:
                if self.stopping.is_set():  # after clear(): finish() sees either this or a CALL
                    return
                self.conn.execute(self.call)
            finally:
                self.idle.set()
            if not self.notified:
                return

    def wait(self, seconds, sock=None):
        """Until seconds pass, sock has something to read (a notification), or a signal."""
        ready, _, _ = select.select([self.wake_r] + ([sock] if sock is not None else []),
                                    [], [], seconds)
        if self.wake_r in ready:
            os.read(self.wake_r, 512)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.metrics is not None:
            self.metrics.connected.set(0)

    def on_notice(self, diagnostic):
        """deliver()'s report to the metrics; its other NOTICEs as they are; anything graver
        with its severity."""
        severity = diagnostic.severity_nonlocalized or diagnostic.severity
        if diagnostic.message_primary == REPORT and severity == "NOTICE":
            if self.metrics is not None:
                self.metrics.record(json.loads(diagnostic.message_detail))
        elif severity in ("NOTICE", "INFO", "LOG", "DEBUG"):
            log.info("%s", diagnostic.message_primary)
        else:
            log.warning("%s: %s", severity, diagnostic.message_primary)

    def on_notify(self, notify):
        self.notified = True

    def on_signal(self, signum, frame):
        if not self.stopping.is_set():
            self.stopping.set()
            threading.Thread(target=self.finish, args=(signal.Signals(signum).name,),
                             daemon=True).start()

    def finish(self, signal_name):
        """After a signal: let the CALL in progress end, cancel it after --grace seconds."""
        conn = self.conn
        if self.idle.is_set() or conn is None:
            log.info("%s: stopping", signal_name)
            return
        log.info("%s: stopping after the delivery in progress (at most %g s)", signal_name,
                 self.args.grace)
        if not self.idle.wait(self.args.grace):
            log.warning("still delivering after %g s: canceling; the batch stays queued",
                        self.args.grace)
            getattr(conn, "cancel_safe", conn.cancel)()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="plpy-lambda-relay", description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default="", help="libpq connection string (default: PG* "
                        "environment variables); the role needs EXECUTE on aws_lambda.deliver")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between CALLs "
                        "without a notification (default 1.0)")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds a stop waits for "
                        "the delivery in progress before canceling it (default 10)")
    parser.add_argument("--batch-size", type=int, default=100, help="deliveries claimed at "
                        "once: the most a crash can send twice (default 100)")
    parser.add_argument("--max-concurrency", type=int, default=32,
                        help="invocations in flight at once (default 32)")
    parser.add_argument("--metrics-address", metavar="HOST:PORT", help="serve Prometheus "
                        "metrics at http://HOST:PORT/metrics (needs prometheus_client)")
    parser.add_argument("--quiet", action="store_true", help="log only warnings and errors")
    args = parser.parse_args(argv)
    if args.poll <= 0 or args.grace < 0:
        parser.error("--poll must be positive and --grace not negative")
    metrics_address = None
    if args.metrics_address is not None:
        host, _, port = args.metrics_address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            parser.error(f"--metrics-address {args.metrics_address}: use HOST:PORT, "
                         "for example 127.0.0.1:9187 or [::1]:9187")
        metrics_address = host.strip("[]"), int(port)
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            parser.error("--metrics-address needs prometheus_client: pip install '.[relay]' "
                         "(or -r requirements-relay.txt)")
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(name)s[%(process)d] %(message)s")
    metrics = None
    if metrics_address is not None:
        try:
            metrics = Metrics(*metrics_address)
        except OSError as error:
            log.error("cannot serve metrics at %s: %s", args.metrics_address, error)
            return 1
        log.info("metrics at http://%s/metrics", args.metrics_address)
    relay = Relay(args, metrics)
    signal.set_wakeup_fd(relay.wake_w, warn_on_full_buffer=False)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, relay.on_signal)
    log.info("started: poll %g s, grace %g s, batch size %d, max concurrency %d",
             args.poll, args.grace, args.batch_size, args.max_concurrency)
    relay.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
