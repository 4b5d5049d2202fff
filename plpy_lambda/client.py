"""The HTTP exchange with the Lambda Invoke API: signed requests, keep-alive pools, retries.

A Call is one invocation's request through to its answer, as a state machine
over a non-blocking socket, driven by the backend's own thread: Transport.run
waits for one call (invoke), batch.py for many at once in one loop (invoke_many,
delivery). Either way the backend waits on its sockets at most
interrupts.SLICE at a time and checks for interrupts between waits, so nothing
here needs a thread but making a connection (a DNS lookup, a proxy's CONNECT and
a TLS handshake block): that is a job for a worker thread (interrupts.Workers).
The HTTP/1.1 exchange is small and our own: one write of the request (SigV4
signed from a per-shape template, sigv4.Template), then the status line, the
headers and a body framed by Content-Length, chunked encoding or the
connection's end.

Deadline: a call has until its deadline (connect + request timeout after it
started), and an attempt's exchange has aws_lambda.request_timeout_ms from the
moment it starts writing, and never past the deadline: for the whole answer, not
for each read, so an endpoint that sends one byte now and then cannot stretch it.

Answer size: a body larger than the operator's aws_lambda.max_response_bytes (by
default Lambda's own limit, 6 MB) is refused while it is read, with no more than
that many bytes held: at once when its Content-Length says so, else when it grows
past the limit. The connection is then closed.

Retry policy: a request is sent again only when it cannot have reached the
service:

- the connection could not be made;
- the service answered 429 (throttled, the function did not run);
- a kept-alive connection from the pool turned out to have been closed by the
  server before it could read the request (the race of a request sent just as the
  server's idle timeout fires; see Call._never_read). With no byte of an answer,
  either our first send failed (the kernel took none of the request), or the
  server's end of the connection (its FIN) was followed by its TCP resetting the
  connection (a read found the end, then the reset; or a read found the reset of a
  connection the server had ended, which Linux reports as EPIPE). A TCP resets a
  connection whose socket was closed with data of ours unread, or that receives
  data after it was closed: either way the server did not read the whole request,
  so it cannot have acted on it. The request is then sent once more, on a new
  connection, at once.

Retries back off exponentially with jitter and never go past the call's deadline.
A read timeout, a connection lost after the server may have read the request
(a reset without the server's FIN, an end without a reset, a cut answer), or any
other answer is final, so a function is never run twice because of us. A proxy
refusing the connection, or an endpoint certificate that fails verification, is
final too: another attempt would meet the same answer.

Idle connections: each pool keeps up to IDLE_CONNECTIONS; beyond IDLE_FLOOR, a
connection unused for IDLE_SECONDS is closed when the backend next makes a call
(it cannot run timers while idle: PL/Python holds the GIL then). A pooled
connection that has become readable (the server closed it) is never written to:
it is checked just before the request is sent.

How a connection reaches the endpoint (a proxy, the TLS trust) is reach.py's.
"""

import _socket
import select
import struct
import sys
import time

from plpy_lambda import errors, interrupts, sigv4
from plpy_lambda.sigv4 import quote

API_VERSION = "2015-03-31"
MAX_ATTEMPTS = 5
BACKOFF_BASE = 0.05  # seconds
BACKOFF_CAP = 1.0
IDLE_CONNECTIONS = 64  # kept per endpoint; as many as invoke_many may have in flight
IDLE_FLOOR = 4  # kept per endpoint however long they are idle
IDLE_SECONDS = 5.0  # beyond IDLE_FLOOR, connections idle this long are closed
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # Lambda's limit for a synchronous answer
READ_SIZE = 64 * 1024  # bytes asked for by one read
MAPPED_BODY = 256 * 1024  # larger bodies are read into a memory mapping (see _Body)
TLS_RECORD = 16384  # plaintext bytes of one TLS record
MAX_HEAD = 64 * 1024  # an answer's status line and headers
RESET_WAIT = 0.2  # seconds, at most, to wait for the reset that follows a closed server's FIN
_SHAPES = 256  # request shapes (signature templates and header skeletons) kept per backend

_IN = select.POLLIN
_OUT = select.POLLOUT
_GONE = select.POLLERR | select.POLLHUP | select.POLLNVAL


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


class Response:
    """An answer: status, headers (Headers) and body.

    A large body is read into an anonymous memory mapping rather than the heap, which
    would keep it after it is freed; it becomes bytes on first use."""

    __slots__ = ("status", "headers", "_body", "_mapped", "_size")

    def __init__(self, status, headers, body=b"", mapped=None, size=0):
        self.status = status
        self.headers = headers
        self._body = body
        self._mapped = mapped
        self._size = size

    @property
    def body(self):
        if self._mapped is not None:
            self._body = self._mapped[:self._size]
            self._mapped.close()
            self._mapped = None
        return self._body


class Connection:
    """A connected socket to an endpoint (TLS or not), non-blocking."""

    __slots__ = ("sock", "fd", "tls", "since", "would_block", "_poll")

    def __init__(self, sock):
        sock.setblocking(False)
        self.sock = sock
        self.fd = sock.fileno()
        ssl = sys.modules.get("ssl")
        self.tls = ssl is not None and isinstance(sock, ssl.SSLSocket)
        self.would_block = ((BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
                            if self.tls else BlockingIOError)
        self.since = None  # when it was given back to its pool
        self._poll = None

    def still_open(self):
        """An idle keep-alive connection that is readable has been closed (or broken)."""
        if self._poll is None:
            self._poll = select.poll()
            self._poll.register(self.fd, _IN)
        try:
            if self._poll.poll(0):
                return False
            return not (self.tls and self.sock.pending())
        except (OSError, ValueError):
            return False

    def close(self):
        self._poll = None
        try:
            self.sock.close()
        except OSError:
            pass


def _connect(route, timeout):
    """In a worker thread: a new Connection through route (reach.Route), or NotConnected."""
    sock = route.open(timeout)
    try:
        sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        return Connection(sock)
    except BaseException:
        sock.close()
        raise


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
                sigv4._sha256(body).hexdigest(), stamp).encode()
            shape._last = (stamp, body if len(body) <= 4096 else None, signature)
        return b"%s%s\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n" % (
            shape.start, stamp.encode(), signature, len(body))

    def start(self, request, role_arn, timeouts, deadline, limit=MAX_RESPONSE_BYTES):
        """A Call for request, begun: connecting or sending."""
        call = Call(self, request, role_arn, timeouts, deadline, limit)
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
            if call.state == READING:  # the common case: sent at once; wait for the answer
                waiter.watch(call.fd, _IN)
                if waiter.wait(min(call.wake_at - time.monotonic(), interrupts.SLICE)):
                    call.on_ready(time.monotonic(), _IN)
                    if call.outcome is not None:
                        return call.result()
            while True:
                now = time.monotonic()
                checker.due(now)
                if now >= call.wake_at:
                    call.on_timer(now)
                else:
                    if call.job is not None:
                        waiter.watch(self.workers.wake_fd, _IN)
                    elif call.fd >= 0 and call.events:
                        waiter.watch(call.fd, call.events)
                    else:  # a backoff, or a look for a reset: time only
                        waiter.watch(None, 0)
                    wait = min(call.wake_at, checker.checked_at + interrupts.SLICE) - now
                    ready = waiter.wait(wait)
                    if ready and (call.job is not None or call.state in (SENDING, READING)):
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


# Call states
CONNECTING, SENDING, READING, RESET, BACKOFF, DONE = range(6)


class Call:
    """One request, through its attempts, to its Response or LambdaError (outcome).

    Driven from outside: begin(), then on_ready() when its socket (fd) is ready for
    `events`, on_connected() when its connect job is done, on_timer() at wake_at.
    """

    # What a Call starts with, but for __init__'s: class attributes, so that making one
    # (once per call) sets only what differs.
    state = CONNECTING
    outcome = None
    fd = -1
    events = 0
    job = None
    conn = None
    attempt = 0
    fresh = False  # the next attempt needs a new connection
    reused = False
    sent = False  # some attempt wrote (part of) the request
    _out = None
    _answer = None
    key = None  # the caller's (batch.py)
    data = None  # the caller's (batch.py)

    def __init__(self, transport, request, role_arn, timeouts, deadline, limit):
        self.transport = transport
        self.request = request
        self.pool = transport.pool(request.endpoint)
        self.role_arn = role_arn
        self.timeouts = timeouts
        self.deadline = deadline
        self.limit = limit
        self.wake_at = deadline

    def result(self):
        """The Response, or raise the LambdaError."""
        if isinstance(self.outcome, Response):
            return self.outcome
        raise self.outcome

    # -- attempts ----------------------------------------------------------------------
    def begin(self, now):
        try:
            self._attempt(now)
        except errors.LambdaError as error:
            self._finish(error)

    def _attempt(self, now):
        self.attempt += 1
        if now >= self.deadline:
            raise errors.request_timed_out(self.request.endpoint, self.timeouts.request, sent=False)
        request, pool = self.request, self.pool
        credentials = self.transport._credentials.get(self.role_arn, request.region)
        # Signed before a connection is taken, so that a pooled connection is written to
        # just after it is found still open.
        self._out = self.transport.head(pool, request, credentials) + request.body
        conn = None if self.fresh else pool.take()
        if conn is not None:
            self.reused = True
            self._exchange(conn, now)
            return
        route = pool.reach()
        self.state = CONNECTING
        self.fd, self.events = -1, 0
        self.wake_at = self.deadline + interrupts.GRACE
        self.job = self.transport.workers.start(
            _connect, route, min(self.timeouts.connect, self.deadline - now),
            discard=Connection.close)

    def on_connected(self, now):
        """The connect job is done: send on the new connection, or retry, or fail."""
        from plpy_lambda.reach import NotConnected

        job, self.job = self.job, None
        try:
            try:
                conn = job.collect()
            except NotConnected as error:
                if error.retry and self.attempt < MAX_ATTEMPTS and self._backoff(now):
                    return
                raise errors.unable_to_connect(self.request.endpoint, error) from None
            except errors.LambdaError:
                raise
            except Exception as error:  # never a traceback for the user
                raise errors.unable_to_connect(self.request.endpoint, _cause(error)) from None
            self.reused = False
            self._exchange(conn, time.monotonic())
        except errors.LambdaError as error:
            self._finish(error)

    def _backoff(self, now, retry_after=None):
        """Wait before the next attempt; False when that would pass the deadline."""
        import random

        delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (self.attempt - 1)))
        if retry_after:
            try:
                delay = max(delay, min(float(retry_after), BACKOFF_CAP))
            except ValueError:
                pass
        if now + delay >= self.deadline:
            return False
        self.state = BACKOFF
        self.fd, self.events = -1, 0
        self.wake_at = now + delay
        return True

    def on_timer(self, now):
        """wake_at has come: a deadline, the end of a backoff, or a look for a reset."""
        try:
            state = self.state
            if state == BACKOFF:
                self._attempt(now)
            elif state == CONNECTING:
                if self.job is not None and self.job.done:
                    self.on_connected(now)
                    return
                self._drop_job()
                raise errors.request_timed_out(self.request.endpoint, self.timeouts.request,
                                               sent=False)
            elif state == RESET:
                self._look_for_reset(now)
            elif state in (SENDING, READING):
                if now >= self._exchange_deadline:
                    self._close()
                    raise errors.request_timed_out(self.request.endpoint, self.timeouts.request,
                                                   sent=self._written > 0)
                self.wake_at = self._exchange_deadline
        except errors.LambdaError as error:
            self._finish(error)

    def abandon(self):
        """The caller stops waiting (a cancel, a batch's end): nothing more is sent."""
        self._drop_job()
        self._close()
        if self.outcome is None:
            self.state = DONE
            self.outcome = errors.request_timed_out(self.request.endpoint, self.timeouts.request,
                                                    sent=self.sent)

    def _drop_job(self):
        job, self.job = self.job, None
        if job is not None:
            job.abandon()

    def _finish(self, outcome):
        self.state = DONE
        self.outcome = outcome
        self.fd, self.events = -1, 0
        self._out = None
        self._answer = None

    # -- the exchange --------------------------------------------------------------------
    def _exchange(self, conn, now):
        self.conn = conn
        self.fd = conn.fd
        self._written = 0
        self._first_write = None
        self._first_failed = False
        self._received = 0
        self._exchange_deadline = min(now + self.timeouts.request, self.deadline)
        self.wake_at = self._exchange_deadline
        self.state = SENDING
        self._write(now)

    def on_ready(self, now, events):
        try:
            if self.state == SENDING:
                self._write(now)
            elif self.state == READING:
                self._read(now)
            if self.state in (SENDING, READING) and now >= self._exchange_deadline:
                self.on_timer(now)
        except errors.LambdaError as error:
            self._close()
            self._finish(error)

    def _write(self, now):
        conn, out = self.conn, self._out
        sock = conn.sock
        while self._written < len(out):
            if self._written == 0 and (not conn.tls or len(out) <= TLS_RECORD):
                piece = out
            else:
                piece = memoryview(out)[self._written:]
                if conn.tls:
                    piece = piece[:TLS_RECORD]
            if self._first_write is None:
                self._first_write = len(piece)
            try:
                n = sock.send(piece)
            except conn.would_block as blocked:
                ssl = sys.modules.get("ssl")
                wants_read = ssl is not None and isinstance(blocked, ssl.SSLWantReadError)
                self.events = _IN if wants_read else _OUT
                return
            except OSError as error:
                if self._written == 0:
                    self._first_failed = True
                self._lost(now, error)
                return
            self._written += n
            self.sent = True
        self._out = None
        self._answer = _Answer(self.limit)  # made while the request is on its way
        self.state = READING
        self.events = _IN

    def _read(self, now):
        conn, answer = self.conn, self._answer
        sock = conn.sock
        while True:
            try:
                data = sock.recv(READ_SIZE)
            except conn.would_block:
                self.events = _IN
                return
            except OSError as error:
                self._lost(now, error)
                return
            if not data:
                if answer.until_end:
                    self._complete(now, will_close=True)
                else:
                    self._ended(now)
                return
            self._received += len(data)
            if answer.feed(data, self):
                self._complete(now, will_close=answer.will_close)
                return
            if not conn.tls and len(data) < READ_SIZE:
                self.events = _IN
                return

    def _complete(self, now, will_close):
        answer, conn = self._answer, self.conn
        self.conn = None
        if will_close or answer.extra:
            conn.close()
        else:
            self.pool.give_back(conn, now)
        response = answer.response()
        if answer.large:
            self.transport.large_answer = True
        route = self.pool.route
        if response.status == 407 and route is not None and route.proxy is not None:
            # Only a proxy answers 407: it did not forward the request.
            self._finish(errors.unable_to_connect(self.request.endpoint, (
                f"proxy {route.proxy.url} refused the request: 407 "
                "Proxy Authentication Required")))
            return
        if response.status == 429 and self.attempt < MAX_ATTEMPTS:
            if self._backoff(now, response.headers.get("retry-after")):
                self.fresh = False
                return
        self._finish(response)

    def _ended(self, now):
        """A read found the server's end of the connection before the whole answer."""
        if self.reused and self._received == 0:
            info = _tcp_info(self.conn.sock)
            if info is not None:
                rtt = struct.unpack_from("=I", info, _RTT)[0] / 1e6
                self._reset_until = min(now + min(max(4 * rtt, 0.01), RESET_WAIT),
                                        self._exchange_deadline)
                self.state = RESET
                self.events = 0
                self._look_for_reset(now)
                return
        self._lost(now, "Remote end closed connection without response"
                   if self._received == 0 else "the answer was cut short")

    def _look_for_reset(self, now):
        info = _tcp_info(self.conn.sock)
        if info is not None and info[0] == _TCP_CLOSE:
            self._resend(now)
        elif info is None or now >= self._reset_until:
            self._lost(now, "Remote end closed connection without response", final=True)
        else:
            self.wake_at = min(now + 0.001, self._reset_until)

    def _lost(self, now, error, final=False):
        if not final and self._never_read(error):
            self._resend(now)
            return
        self._close()
        self._finish(errors.connection_lost(self.request.endpoint,
                                            error if isinstance(error, str) else _cause(error)))

    def _never_read(self, error):
        """Whether the server cannot have read the request (see the module's docstring).
        Only for a pooled connection, and with no byte of an answer:

        - our first send failed: the kernel took none of the request (TLS: at most part
          of one record, which the server cannot decrypt); or
        - a read found the reset of a connection the server had ended (Linux reports a
          reset after the peer's FIN as EPIPE), which a TCP sends when its socket was
          closed with data of ours unread, or data of ours arrives after it closed.
        """
        if not self.reused or self._received:
            return False
        if self._first_failed:
            return not self.conn.tls or self._first_write <= TLS_RECORD
        return (isinstance(error, BrokenPipeError) and self.state == READING
                and _TCP_INFO is not None)

    def _resend(self, now):
        since = self.conn.since
        self._close()
        self.pool.forget_idle_since(since)  # the server closed it for being idle: older ones too
        if self.attempt >= MAX_ATTEMPTS:
            self._finish(errors.unable_to_connect(
                self.request.endpoint,
                "the server closed each connection before reading the request"))
            return
        self.fresh = True
        try:
            self._attempt(now)
        except errors.LambdaError as error:
            self._finish(error)
        self.fresh = False

    def _close(self):
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()

    # used by _Answer
    def too_large(self, status, size):
        error = errors.invalid_response(
            f"the answer is larger than aws_lambda.max_response_bytes ({self.limit} bytes)",
            hint=f"The endpoint sent {size}; the answer was not read and the connection was "
            f"closed. Lambda returns at most {MAX_RESPONSE_BYTES} bytes from a synchronous "
            "invocation.",
        )
        error.status_code = status
        error.may_have_run = True
        return error

    def bad_answer(self, what):
        return errors.connection_lost(self.request.endpoint, what)


class Headers:
    """An answer's header fields, by name (lower case): the value of the last field of that
    name, or default. Looked up in the head's text rather than all parsed up front: an
    answer has some ten fields, and a call reads three to five."""

    __slots__ = ("_text", "_lower")

    def __init__(self, head):
        if "\n " in head or "\n\t" in head:  # obsolete line folding: one line each
            import re

            head = re.sub(r"[ \t]*\r?\n[ \t]+", " ", head)
        self._text = head = head + "\n"  # every field's line ends with one
        self._lower = head.lower()  # as long as head: latin-1 characters lower to one each

    def get(self, name, default=None):
        at = self._lower.rfind("\n" + name + ":")
        if at < 0:
            return default
        start = at + len(name) + 2
        return self._text[start:self._text.find("\n", start)].strip()


class _Answer:
    """An HTTP/1.1 answer, parsed as its bytes arrive."""

    # What an answer starts with, but for its limit (see Call's).
    buf = b""
    status = None
    headers = None
    will_close = False
    until_end = False
    length = None  # body bytes still to come (Content-Length)
    chunk = 0  # bytes left in the current chunk
    body = None
    extra = False  # bytes after the answer: the connection is not reused
    large = False
    _mapped = None
    _size = 0
    _state = 0  # 0 head, 1 body by length, 2 chunk size, 3 chunk data, 4 chunk end, 5 trailer,
    # 6 until the end, 7 done

    def __init__(self, limit):
        self.limit = limit

    def feed(self, data, call):
        """Take bytes of the answer; True when it is whole. Raises LambdaError."""
        buf = self.buf + data if self.buf else data
        self.buf = b""
        while True:
            state = self._state
            if state == 0:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    end = buf.find(b"\n\n")
                    skip = 2
                else:
                    skip = 4
                if end < 0:
                    if len(buf) > MAX_HEAD:
                        raise call.bad_answer("the answer's head is too long")
                    self.buf = buf
                    return False
                self._head(buf[:end], call)
                buf = buf[end + skip:]
                if self._state == 7:
                    self.extra = bool(buf)
                    return True
            elif state == 1:
                if len(buf) == self.length and self.body is None and self._mapped is None:
                    self.body, self._size, self.length, self._state = buf, len(buf), 0, 7
                    return True  # the common case: the whole body, in one read
                take = buf if len(buf) <= self.length else buf[:self.length]
                self._add(take, call)
                self.length -= len(take)
                if self.length == 0:
                    self.extra = len(buf) > len(take)
                    self._state = 7
                    return True
                return False
            elif state == 2 or state == 5:
                end = buf.find(b"\n")
                if end < 0:
                    if len(buf) > MAX_HEAD:
                        raise call.bad_answer("a chunk's size line is too long")
                    self.buf = buf
                    return False
                line = buf[:end].strip()
                buf = buf[end + 1:]
                if state == 5:
                    if not line:
                        self.extra = bool(buf)
                        self._state = 7
                        return True
                    continue
                try:
                    size = int(line.split(b";", 1)[0], 16)
                except ValueError:
                    raise call.bad_answer("a chunk's size is not a number") from None
                if size < 0:
                    raise call.bad_answer("a chunk's size is not a number")
                if size == 0:
                    self._state = 5
                else:
                    self.chunk = size
                    self._state = 3
            elif state == 3:
                if not buf:
                    return False
                take = buf if len(buf) <= self.chunk else buf[:self.chunk]
                self._add(take, call)
                self.chunk -= len(take)
                buf = buf[len(take):]
                if self.chunk == 0:
                    self._state = 4
            elif state == 4:
                if len(buf) < 2 and buf in (b"", b"\r"):
                    self.buf = buf
                    return False
                if buf.startswith(b"\r\n"):
                    buf = buf[2:]
                elif buf.startswith(b"\n"):
                    buf = buf[1:]
                else:
                    raise call.bad_answer("a chunk does not end where its size says")
                self._state = 2
            elif state == 6:
                self._add(buf, call)
                return False
            else:
                self.extra = bool(buf)
                return True

    def _head(self, head, call):
        text = head.decode("latin-1")
        end = text.find("\n")
        first = text if end < 0 else text[:end]
        status_line = first.split(None, 2)
        try:
            if len(status_line) < 2 or not status_line[0].startswith("HTTP/"):
                raise ValueError
            status = int(status_line[1])
            if not 100 <= status <= 999:
                raise ValueError
        except ValueError:
            raise call.bad_answer(f"the answer is not HTTP: {first[:60]!r}") from None
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            return
        self.status = status
        self.headers = headers = Headers(text)
        version = status_line[0]
        connection = headers.get("connection", "").lower()
        self.will_close = "close" in connection or (
            version == "HTTP/1.0" and "keep-alive" not in connection)
        length = headers.get("content-length")
        if status in (204, 304):
            self._state = 7
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._state = 2
        elif length is not None:
            try:
                length = int(length)
                if length < 0:
                    raise ValueError
            except ValueError:
                raise call.bad_answer("the answer's Content-Length is not a number") from None
            if length > self.limit:
                raise call.too_large(status, f"{length} bytes")
            self.length = length
            if length >= MAPPED_BODY:
                self._map(length)
            self._state = 1 if length else 7
        else:
            self.until_end = True
            self.will_close = True
            self._state = 6

    def _map(self, size):
        import mmap

        mapped = mmap.mmap(-1, size)  # committed only as it is written
        if self.body:
            mapped[:len(self.body)] = self.body
        self._mapped = mapped
        self.body = None
        self.large = True

    def _add(self, data, call):
        if not data:
            return
        size = self._size + len(data)
        if size > self.limit:
            self._drop()
            raise call.too_large(self.status, "more")
        if self._mapped is None and size >= MAPPED_BODY and self.length is None:
            self._map(self.limit + 1)
        if self._mapped is not None:
            self._mapped[self._size:size] = data
        elif self.body is None:
            self.body = data
        elif isinstance(self.body, bytearray):
            self.body += data
        else:
            self.body = bytearray(self.body) + data
        self._size = size

    def _drop(self):
        if self._mapped is not None:
            self._mapped.close()
            self._mapped = None
        self.body = None

    def response(self):
        if self._mapped is not None:
            mapped, self._mapped = self._mapped, None
            return Response(self.status, self.headers, None, mapped, self._size)
        body = self.body
        return Response(self.status, self.headers,
                        b"" if body is None else bytes(body) if isinstance(body, bytearray) else body)


# Linux's struct tcp_info (linux/tcp.h): tcpi_state is its first byte, tcpi_rtt
# (microseconds) a 32-bit field at 68. Elsewhere there is no tcp_info, and a request
# is not sent again after it was written.
_TCP_INFO = getattr(_socket, "TCP_INFO", None)
_RTT = 68
_TCP_CLOSE = 7  # tcpi_state once the connection was reset


def _tcp_info(sock):
    if _TCP_INFO is None:
        return None
    try:
        info = sock.getsockopt(_socket.IPPROTO_TCP, _TCP_INFO, 104)
    except (OSError, ValueError):
        return None
    return info if len(info) >= _RTT + 4 else None


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


def _cause(error):
    """A short, secret-free description of a transport error."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return text[:300]
