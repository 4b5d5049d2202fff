"""The HTTP call to the Lambda Invoke API: signing, connection reuse, retries.

Runs in a worker thread (see interrupts.py) and never touches plpy. Keep-alive
connections are kept per endpoint across the calls of a backend. The standard
library's http.client does the HTTP: it imports in a few milliseconds, where
urllib3 and botocore's request stack would cost a large part of a new
connection's first call.

Retry policy: a request is sent again only when it cannot have reached the
service: the connection could not be made, or the service answered 429
(throttled, the function did not run). Retries back off exponentially with
jitter and never go past the call's deadline. A read timeout, a connection lost
after sending, or any other answer is final, so a function is never run twice
because of us. A proxy refusing the connection, or an endpoint certificate that
fails verification, is final too: another attempt would meet the same answer.

How a connection reaches the endpoint (a proxy, the TLS trust) is reach.py's.
"""

from __future__ import annotations

import http.client
import random
import select
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from plpy_lambda import errors, interrupts, reach, sigv4
from plpy_lambda.reach import NotConnected

API_VERSION = "2015-03-31"
MAX_ATTEMPTS = 5
BACKOFF_BASE = 0.05  # seconds
BACKOFF_CAP = 1.0
IDLE_CONNECTIONS = 64  # kept per endpoint; as many as invoke_many may have in flight


@dataclass
class Response:
    status: int
    headers: dict  # lower-case names
    body: bytes


@dataclass(frozen=True)
class Request:
    endpoint: str  # scheme://host[:port]
    region: str
    function: str  # FunctionName as sent (name, partial ARN or ARN)
    qualifier: str | None
    headers: dict
    body: bytes

    @property
    def path(self):
        return f"/{API_VERSION}/functions/{quote(self.function, safe='')}/invocations"

    @property
    def query(self):
        return "Qualifier=" + quote(self.qualifier, safe="") if self.qualifier else ""


class Pool:
    """Idle keep-alive connections to one endpoint, and how they reach it (reach.Route)."""

    def __init__(self, endpoint, config=None):
        parts = urlsplit(endpoint)
        self.endpoint = endpoint
        self.host = parts.netloc
        self.route = None  # decided on the first connection, then kept
        self._config = config  # the backend's CredentialSource: the profile's ca_bundle
        self._idle = []
        self._lock = threading.Lock()
        self._route_lock = threading.Lock()

    def take(self, connect_timeout):
        """A live idle connection, or a new one connected within connect_timeout."""
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                break
            if _still_open(conn):
                return conn
            conn.close()
        if self.route is None:
            with self._route_lock:
                if self.route is None:
                    self.route = reach.route(self.endpoint, self._config)
        conn = self.route.connect(connect_timeout)  # or NotConnected
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def give_back(self, conn):
        with self._lock:
            if len(self._idle) < IDLE_CONNECTIONS:
                self._idle.append(conn)
                return
        conn.close()


def _still_open(conn):
    """An idle keep-alive socket that is readable has been closed (or is broken)."""
    if conn.sock is None:
        return False
    try:
        readable, _, _ = select.select([conn.sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


class Transport:
    """Connection pools per endpoint; one Transport per backend."""

    def __init__(self, credentials):
        self._credentials = credentials
        self._pools = {}
        self._lock = threading.Lock()

    def _pool(self, endpoint):
        with self._lock:
            pool = self._pools.get(endpoint)
            if pool is None:
                pool = self._pools[endpoint] = Pool(endpoint, self._credentials)
            return pool

    def send(self, request, role_arn, timeouts, deadline):
        """Sign and send, retrying only where it is safe. Returns a Response."""
        credentials = self._credentials.get(role_arn, request.region)
        pool = self._pool(request.endpoint)
        target = request.path + ("?" + request.query if request.query else "")
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise errors.request_timed_out(request.endpoint, timeouts.request, sent=False)
            interrupts.watch()  # an abandoned call connects no more
            try:
                conn = pool.take(min(timeouts.connect, remaining))
            except NotConnected as error:
                if error.retry and attempt < MAX_ATTEMPTS and _backoff(attempt, deadline):
                    continue
                raise errors.unable_to_connect(request.endpoint, error) from None
            try:
                interrupts.watch(conn.sock)  # nor sends; from here abandoning shuts it down
            except interrupts.Abandoned:
                conn.close()
                raise
            headers = sigv4.sign("POST", pool.host, request.path, request.query, request.headers,
                                 request.body, request.region, "lambda", credentials)
            response = _exchange(conn, pool, pool.route.target(target), pool.route.headers(headers),
                                 request.body, min(timeouts.request, deadline - time.monotonic()),
                                 timeouts)
            if response.status == 407 and pool.route.proxy is not None:
                # Only a proxy answers 407: it did not forward the request.
                raise errors.unable_to_connect(request.endpoint, (
                    f"proxy {pool.route.proxy.url} refused the request: 407 "
                    "Proxy Authentication Required"))
            if response.status == 429 and attempt < MAX_ATTEMPTS:
                if _backoff(attempt, deadline, response.headers.get("retry-after")):
                    continue
            return response


def _exchange(conn, pool, target, headers, body, read_timeout, timeouts):
    """One request and its response on a connected socket. Nothing here is retried."""
    try:
        conn.sock.settimeout(max(read_timeout, 0.001))
        conn.request("POST", target, body=body, headers=headers)
        answer = conn.getresponse()
        data = answer.read()
    except socket.timeout:
        conn.close()
        raise errors.request_timed_out(pool.endpoint, timeouts.request, sent=True) from None
    except (OSError, http.client.HTTPException) as error:
        conn.close()
        raise errors.connection_lost(pool.endpoint, _cause(error)) from None
    if answer.will_close:
        conn.close()
    else:
        interrupts.unwatch()  # abandoning this call must not shut down the next call's socket
        pool.give_back(conn)
    return Response(
        status=answer.status,
        headers={name.lower(): value for name, value in answer.getheaders()},
        body=data,
    )


def _backoff(attempt, deadline, retry_after=None):
    """Sleep before the next attempt; False when that would pass the deadline."""
    delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))
    if retry_after:
        try:
            delay = max(delay, min(float(retry_after), BACKOFF_CAP))
        except ValueError:
            pass
    if time.monotonic() + delay >= deadline:
        return False
    time.sleep(delay)
    return True


def _cause(error):
    """A short, secret-free description of a transport error."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return text[:300]
