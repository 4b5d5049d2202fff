"""Requests to the Lambda Invoke API: what one is (Request), its signed head from a
per-shape template (_Shape, sigv4.Template), the keep-alive pools (Pool), and Transport,
which runs one call (invoke) and keeps what a backend reuses between calls.

A call's exchange on its socket (attempts, retries, the deadline) is exchange.py's; the
answer read off the socket is http_answer.py's. Transport.run waits for one call, batch.py
for many at once in one loop (invoke_many, delivery). Either way the backend waits on its
sockets at most interrupts.SLICE at a time and checks for interrupts between waits, so
nothing needs a thread but making a connection (a DNS lookup, a proxy's CONNECT and a TLS
handshake block): that is a job for a worker thread (interrupts.Workers).

Idle connections: each pool keeps up to IDLE_CONNECTIONS; beyond IDLE_FLOOR, a
connection unused for IDLE_SECONDS is closed when the backend next makes a call
(it cannot run timers while idle: PL/Python holds the GIL then). A pooled
connection that has become readable (the server closed it) is never written to:
it is checked just before the request is sent.

How a connection reaches the endpoint (a proxy, the TLS trust) is reach.py's.
"""

import select
import time

from plpy_lambda import exchange, interrupts, sigv4
from plpy_lambda.sigv4 import quote

API_VERSION = "2015-03-31"
IDLE_CONNECTIONS = 64  # kept per endpoint; as many as invoke_many may have in flight
IDLE_FLOOR = 4  # kept per endpoint however long they are idle
IDLE_SECONDS = 5.0  # beyond IDLE_FLOOR, connections idle this long are closed
_SHAPES = 256  # request shapes (signature templates and header skeletons) kept per backend


class Request:
    """One Invoke request: where it goes, what it names, its headers and payload.

    `shape`: a list of one _Shape (or None) that requests of the same shape share, so
    that their signature template is found without a lookup."""

    __slots__ = ("endpoint", "region", "function", "qualifier", "headers", "body", "shape")

    def __init__(self, endpoint, region, function, qualifier, headers, body, shape=None):
        self.endpoint = endpoint  # scheme://host[:port]
        self.region = region
        self.function = function  # FunctionName as sent (name, partial ARN or ARN)
        self.qualifier = qualifier
        self.headers = headers
        self.body = body
        self.shape = shape

    @property
    def path(self):
        return f"/{API_VERSION}/functions/{quote(self.function, safe='')}/invocations"

    @property
    def query(self):
        return "Qualifier=" + quote(self.qualifier, safe="") if self.qualifier else ""


class Pool:
    """Idle keep-alive connections to one endpoint, and how they reach it (reach.Route)."""

    def __init__(self, endpoint, config=None):
        self.endpoint = endpoint  # scheme://host[:port], as endpoints.py and settings.py give it
        self.host = endpoint.partition("://")[2].partition("/")[0]
        self.route = None  # decided on the first connection, then kept
        self._config = config  # the backend's CredentialSource: the profile's ca_bundle
        self._idle = []  # Connection, most recently given back last

    def reach(self):
        """The Route to the endpoint (a failed decision, LM020, is tried again next time)."""
        if self.route is None:
            from plpy_lambda import reach

            self.route = reach.route(self.endpoint, self._config)
        return self.route

    def take(self):
        """A live idle connection, most recent first, or None."""
        idle = self._idle
        while idle:
            conn = idle.pop()
            if conn.still_open():
                return conn
            conn.close()
        return None

    def give_back(self, conn, now):
        if len(self._idle) < IDLE_CONNECTIONS:
            conn.since = now
            self._idle.append(conn)
        else:
            conn.close()

    def release_surplus(self):
        """Close the idle connections beyond IDLE_FLOOR, the least recently used first."""
        idle = self._idle
        while len(idle) > IDLE_FLOOR:
            idle.pop(0).close()

    def release_idle(self, now):
        """Close the connections beyond IDLE_FLOOR that have been idle IDLE_SECONDS."""
        cutoff = now - IDLE_SECONDS
        idle = self._idle
        while len(idle) > IDLE_FLOOR and idle[0].since <= cutoff:  # oldest first
            idle.pop(0).close()

    def forget_idle_since(self, when):
        """Close the idle connections given back at or before `when`: when the server
        closed one for being idle, the older ones are as idle."""
        if when is None:
            return
        keep = []
        for conn in self._idle:
            if conn.since <= when:
                conn.close()
            else:
                keep.append(conn)
        self._idle = keep


class _Shape:
    """What requests of one shape (endpoint, function, qualifier, headers, region,
    credentials) share: the signature template and the request's head but the time,
    the signature and the length."""

    __slots__ = ("template", "start", "pool", "credentials", "_last")

    def __init__(self, pool, request, credentials):
        self.pool = pool
        self.credentials = credentials
        self._last = (None, None, None)  # (stamp, body, Authorization) of the last request
        route = pool.reach()
        path, query = request.path, request.query
        target = route.target(path + ("?" + query if query else ""))
        self.template = sigv4.Template("POST", pool.host, path, query, request.headers,
                                       request.region, "lambda", credentials)
        lines = [f"POST {target} HTTP/1.1", f"Host: {pool.host}"]
        lines += [f"{name}: {value}" for name, value in route.headers(request.headers).items()]
        if credentials.token:
            lines.append(f"X-Amz-Security-Token: {credentials.token}")
        self.start = ("\r\n".join(lines) + "\r\nX-Amz-Date: ").encode("latin-1")


_stamp = [None, ""]  # [second, its X-Amz-Date]


def _timestamp():
    second = int(time.time())
    if second != _stamp[0]:
        _stamp[1] = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
        _stamp[0] = second
    return _stamp[1]


class Transport:
    """Connection pools per endpoint, request shapes, and the wait for one call;
    one Transport per backend."""

    def __init__(self, credentials, workers=None):
        self._credentials = credentials
        self._pools = {}
        self._shapes = {}
        self.workers = workers if workers is not None else interrupts.Workers()
        self.large_answer = False  # a body of MAPPED_BODY bytes or more was read
        self._waiter = None
        self._tidy_at = 0.0  # when tidy next looks at idle connections and threads

    def pool(self, endpoint):
        pool = self._pools.get(endpoint)
        if pool is None:
            pool = self._pools[endpoint] = Pool(endpoint, self._credentials)
        return pool

    def tidy(self):
        """Called by the backend's thread as calls start (a single call's: once its request
        is on its way, while the answer is awaited). After a large answer, give the
        memory freed since back to the system: glibc keeps freed memory of large
        allocations (the answer, its text, PostgreSQL's copies) in its arenas; malloc_trim
        returns it. At most once a second: close idle connections beyond each pool's floor
        that are past IDLE_SECONDS (a pool no longer used would keep them), and end idle
        worker threads beyond theirs."""
        if self.large_answer:
            self.large_answer = False
            _malloc_trim()
        now = time.monotonic()
        if now < self._tidy_at:
            return
        self._tidy_at = now + 1.0
        for pool in self._pools.values():
            if len(pool._idle) > IDLE_FLOOR:
                pool.release_idle(now)
        self.workers.release_idle()

    def release_surplus(self):
        """At the end of a batch (invoke_many; deliver() when nothing is left to send): back
        to the floors at once, IDLE_FLOOR idle connections per endpoint and the workers'
        floor of threads. An idle backend runs no Python (PL/Python holds the GIL between
        calls, so no thread and no timer could give them back later): what a batch opened
        beyond the floors is given back before it returns."""
        for pool in self._pools.values():
            if len(pool._idle) > IDLE_FLOOR:
                pool.release_surplus()
        self.workers.release_surplus()

    def head(self, pool, request, credentials):
        """The request's bytes before its body: signed now."""
        holder = request.shape
        shape = holder[0] if holder is not None else None
        if shape is None or shape.credentials is not credentials or shape.pool is not pool:
            key = (pool.endpoint, request.function, request.qualifier,
                   tuple(request.headers.items()), request.region, credentials)
            shape = self._shapes.get(key)
            if shape is None:
                if len(self._shapes) >= _SHAPES:
                    self._shapes.clear()
                shape = self._shapes[key] = _Shape(pool, request, credentials)
            if holder is not None:
                holder[0] = shape
        stamp = _timestamp()
        body = request.body
        last_stamp, last_body, signature = shape._last
        if last_stamp != stamp or last_body != body:  # the same payload within a second: as signed
            signature = shape.template.authorization(
                sigv4.payload_hash(body), stamp).encode()
            shape._last = (stamp, body if len(body) <= 4096 else None, signature)
        return b"%s%s\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n" % (
            shape.start, stamp.encode(), signature, len(body))

    def start(self, request, role_arn, timeouts, deadline, limit=exchange.MAX_RESPONSE_BYTES):
        """A Call for request, begun: connecting or sending."""
        call = exchange.Call(self, request, role_arn, timeouts, deadline, limit)
        call.begin(time.monotonic())
        return call

    def run(self, request, role_arn, timeouts, deadline, limit, checker):
        """Send the request and wait for its Response (or raise its LambdaError),
        checking for interrupts (checker, an interrupts.Checker) at least every SLICE."""
        call = self.start(request, role_arn, timeouts, deadline, limit)
        self.tidy()  # while the request is on its way
        if call.outcome is not None:
            return call.result()
        waiter = self._waiter
        if waiter is None:
            waiter = self._waiter = Waiter()
        try:
            if call.state == exchange.READING:  # the common case: sent at once; wait for the answer
                waiter.watch(call.fd, exchange._IN)
                if waiter.wait(min(call.wake_at - time.monotonic(), interrupts.SLICE)):
                    call.on_ready(time.monotonic(), exchange._IN)
                    if call.outcome is not None:
                        return call.result()
            while True:
                now = time.monotonic()
                checker.due(now)
                if now >= call.wake_at:
                    call.on_timer(now)
                else:
                    if call.job is not None:
                        waiter.watch(self.workers.wake_fd, exchange._IN)
                    elif call.fd >= 0 and call.events:
                        waiter.watch(call.fd, call.events)
                    else:  # a backoff, or a look for a reset: time only
                        waiter.watch(None, 0)
                    wait = min(call.wake_at, checker.checked_at + interrupts.SLICE) - now
                    ready = waiter.wait(wait)
                    if ready and (call.job is not None or call.state in (exchange.SENDING, exchange.READING)):
                        if call.job is not None:
                            self.workers.drain()
                            if call.job.done:
                                call.on_connected(time.monotonic())
                        else:
                            call.on_ready(time.monotonic(), ready[0][1])
                if call.outcome is not None:
                    return call.result()
        except BaseException:
            call.abandon()
            raise


class Waiter:
    """A poll set whose registrations are kept between waits."""

    __slots__ = ("_poll", "_events")

    def __init__(self):
        self._poll = select.poll()
        self._events = {}

    def watch(self, fd, events):
        """Wait for events on fd only (fd None: on nothing)."""
        if self._events.get(fd) != events or len(self._events) != 1:
            for old in list(self._events):
                if old != fd:
                    self.forget(old)
            if fd is not None:
                self.set(fd, events)

    def set(self, fd, events):
        old = self._events.get(fd)
        if old == events:
            return
        if old is None:
            self._poll.register(fd, events)
        else:
            self._poll.modify(fd, events)
        self._events[fd] = events

    def forget(self, fd):
        if self._events.pop(fd, None) is not None:
            try:
                self._poll.unregister(fd)
            except (KeyError, ValueError, OSError):
                pass

    def wait(self, seconds):
        """[(fd, events)] ready within seconds (at least a millisecond's wait)."""
        return self._poll.poll(max(seconds, 0) * 1000)


_trim = None


def _malloc_trim():
    """glibc's malloc_trim(0), where there is one."""
    global _trim
    if _trim is None:
        try:
            import ctypes

            _trim = ctypes.CDLL(None).malloc_trim
            _trim.argtypes = [ctypes.c_size_t]
        except (ImportError, OSError, AttributeError):
            _trim = False
    if _trim:
        _trim(0)
