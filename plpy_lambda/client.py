"""The HTTP call to the Lambda Invoke API: signing, connection reuse, retries.

Runs in a worker thread (see interrupts.py) and never touches plpy. Keep-alive
connections are kept per endpoint across the calls of a backend. The standard
library's http.client does the HTTP: it imports in a few milliseconds, where
urllib3 and botocore's request stack would cost a large part of a new
connection's first call.

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
  server's idle timeout fires; see _Exchange._never_read). With no byte of an
  answer, either our first send failed (the kernel took none of the request), or
  a read found the server's end of the connection (its FIN) and the server's TCP
  then reset the connection. A TCP resets a connection whose socket was closed
  with data of ours unread, or that receives data after it was closed: either way
  the server did not read the whole request, so it cannot have acted on it. The
  request is then sent once more, on a new connection, at once.

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

from __future__ import annotations

import http.client
import io
import mmap
import random
import select
import socket
import ssl
import struct
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
IDLE_FLOOR = 4  # kept per endpoint however long they are idle
IDLE_SECONDS = 5.0  # beyond IDLE_FLOOR, connections idle this long are closed
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # Lambda's limit for a synchronous answer
READ_PIECE = 64 * 1024  # an answer of unknown length is read this much at a time
MAPPED_BODY = 256 * 1024  # larger bodies are read into a memory mapping (see Response)
TLS_RECORD = 16384  # plaintext bytes of one TLS record


class Response:
    """An answer: status, headers (lower-case names) and body.

    A large body is read into an anonymous memory mapping rather than the worker
    thread's malloc arena, which would keep it after it is freed (glibc trims a thread's
    arena only past a threshold that grows with large allocations); it becomes bytes on
    first use, in the backend's thread."""

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
        self._idle = []  # (connection, when it was given back), most recent last
        self._lock = threading.Lock()
        self._route_lock = threading.Lock()

    def take(self, connect_timeout, fresh=False):
        """(connection, idle_since): a live idle connection and when it was given back,
        or a new one connected within connect_timeout and None (always new when fresh)."""
        while not fresh:
            with self._lock:
                conn, since = self._idle.pop() if self._idle else (None, None)
            if conn is None:
                break
            if _still_open(conn.sock):
                return conn, since
            conn.close()
        self.release_idle()
        if self.route is None:
            with self._route_lock:
                if self.route is None:
                    self.route = reach.route(self.endpoint, self._config)
        conn = self.route.connect(connect_timeout)  # or NotConnected
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, None

    def give_back(self, conn):
        with self._lock:
            if len(self._idle) < IDLE_CONNECTIONS:
                self._idle.append((conn, time.monotonic()))
                conn = None
        if conn is not None:
            conn.close()
        self.release_idle()

    def release_idle(self, now=None):
        """Close the connections beyond IDLE_FLOOR that have been idle IDLE_SECONDS."""
        cutoff = (time.monotonic() if now is None else now) - IDLE_SECONDS
        with self._lock:
            surplus = len(self._idle) - IDLE_FLOOR
            stale = []
            while surplus > 0 and self._idle[0][1] <= cutoff:  # oldest first
                stale.append(self._idle.pop(0)[0])
                surplus -= 1
        for conn in stale:
            conn.close()

    def forget_idle_since(self, when):
        """Close the idle connections given back at or before `when`: when the server
        closed one for being idle, the older ones are as idle."""
        with self._lock:
            stale = [conn for conn, since in self._idle if since <= when]
            self._idle = [(conn, since) for conn, since in self._idle if since > when]
        for conn in stale:
            conn.close()


def _still_open(sock):
    """An idle keep-alive socket that is readable has been closed (or is broken)."""
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


class Transport:
    """Connection pools per endpoint; one Transport per backend."""

    def __init__(self, credentials):
        self._credentials = credentials
        self._pools = {}
        self._lock = threading.Lock()
        self.large_answer = False  # a body of MAPPED_BODY bytes or more was read

    def _pool(self, endpoint):
        with self._lock:
            pool = self._pools.get(endpoint)
            if pool is None:
                pool = self._pools[endpoint] = Pool(endpoint, self._credentials)
            return pool

    def tidy(self):
        """Called by the backend's thread as a call starts: close idle connections
        beyond each pool's floor that are past IDLE_SECONDS (a pool no longer used
        would keep them), and after a large answer, give the memory freed since back
        to the system: glibc keeps freed memory of large allocations (the answer, its
        text, PostgreSQL's copies) in its arenas; malloc_trim returns it."""
        with self._lock:
            pools = list(self._pools.values())
        now = time.monotonic()
        for pool in pools:
            pool.release_idle(now)
        if self.large_answer:
            self.large_answer = False
            _malloc_trim()

    def send(self, request, role_arn, timeouts, deadline, max_response_bytes=MAX_RESPONSE_BYTES):
        """Sign and send, retrying only where it is safe. Returns a Response."""
        credentials = self._credentials.get(role_arn, request.region)
        pool = self._pool(request.endpoint)
        target = request.path + ("?" + request.query if request.query else "")
        attempt = 0
        fresh = False  # the next attempt needs a new connection
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise errors.request_timed_out(request.endpoint, timeouts.request, sent=False)
            # Signed before a connection is taken (it hashes the whole payload), so that
            # a pooled connection is written to soon after it is found still open.
            headers = sigv4.sign("POST", pool.host, request.path, request.query, request.headers,
                                 request.body, request.region, "lambda", credentials)
            interrupts.watch()  # an abandoned call connects no more
            try:
                conn, idle_since = pool.take(min(timeouts.connect, remaining), fresh)
            except NotConnected as error:
                if error.retry and attempt < MAX_ATTEMPTS and _backoff(attempt, deadline):
                    continue
                raise errors.unable_to_connect(request.endpoint, error) from None
            try:
                interrupts.watch(conn.sock)  # nor sends; from here abandoning shuts it down
            except interrupts.Abandoned:
                conn.close()
                raise
            exchange = _Exchange(self, conn, pool, idle_since is not None, timeouts,
                                 min(time.monotonic() + timeouts.request, deadline),
                                 max_response_bytes)
            try:
                response = exchange.run(pool.route.target(target), pool.route.headers(headers),
                                        request.body)
            except _NeverRead:
                # The server closed it for being idle: so it did the ones idle longer.
                pool.forget_idle_since(idle_since)
                if attempt < MAX_ATTEMPTS:
                    fresh = True
                    continue
                raise errors.unable_to_connect(
                    request.endpoint, "the server closed each connection before reading the "
                    "request") from None
            fresh = False
            if response.status == 407 and pool.route.proxy is not None:
                # Only a proxy answers 407: it did not forward the request.
                raise errors.unable_to_connect(request.endpoint, (
                    f"proxy {pool.route.proxy.url} refused the request: 407 "
                    "Proxy Authentication Required"))
            if response.status == 429 and attempt < MAX_ATTEMPTS:
                if _backoff(attempt, deadline, response.headers.get("retry-after")):
                    continue
            return response


class _NeverRead(Exception):
    """A pooled connection the server had closed: it cannot have read the request."""


class _Exchange:
    """One request and its response on a connected socket, bounded by a deadline.

    http.client writes and reads through it (it stands in for the connection's
    socket): writes are held until the answer is read for, then sent at once (one
    send for the request's head and body when they fit), each read and write waits
    only until the deadline, and it notes what _never_read needs to know.
    """

    def __init__(self, transport, conn, pool, reused, timeouts, deadline, limit):
        self.transport = transport
        self.conn = conn
        self.pool = pool
        self.reused = reused
        self.timeouts = timeouts
        self.deadline = deadline
        self.limit = limit
        self.sock = conn.sock
        self.tls = isinstance(conn.sock, ssl.SSLSocket)
        self.pending = []  # what http.client wrote, not sent yet
        self.first_write = None  # size of the first send attempted
        self.written = 0  # bytes of the request the kernel took
        self.first_write_failed = False  # the first send failed: the kernel took nothing
        self.received = 0  # bytes of the answer read
        self.eof = False  # a read found the connection ended by the server

    def run(self, target, headers, body):
        conn = self.conn
        conn.sock = self
        try:
            conn.request("POST", target, body=body, headers=headers)
            answer = conn.getresponse()  # sends, then reads the head
            data, mapped, size = self._body(answer)
        except socket.timeout:
            self._close()
            raise errors.request_timed_out(self.pool.endpoint, self.timeouts.request,
                                           sent=self.written > 0) from None
        except _NeverRead:
            self._close()
            raise
        except (OSError, http.client.HTTPException) as error:
            never_read = self._never_read()
            self._close()
            if never_read:
                raise _NeverRead() from None
            raise errors.connection_lost(self.pool.endpoint, _cause(error)) from None
        except BaseException:
            self._close()
            raise
        finally:
            if conn.sock is self:
                conn.sock = self.sock
            elif conn.sock is None:  # http.client closed it (the answer said close)
                self.sock.close()
        if answer.will_close:
            conn.close()
        else:
            interrupts.unwatch()  # abandoning this call must not shut down the next call's socket
            self.pool.give_back(conn)
        return Response(answer.status,
                        {name.lower(): value for name, value in answer.getheaders()},
                        data, mapped, size)

    def _body(self, answer):
        """(bytes, None, size) or (None, mapping, size): the whole body; LM005 when it
        is larger than the limit (never read past it)."""
        length = answer.length  # None: chunked, or until the server closes
        if length is not None:
            if length > self.limit:
                self._too_large(answer, f"{length} bytes")
            if length < MAPPED_BODY:
                return answer.read(), None, length
            self.transport.large_answer = True
            mapped = mmap.mmap(-1, length)
            try:
                size = _read_into(answer, mapped, length)
                if size < length:
                    raise http.client.IncompleteRead(b"", length - size)
            except BaseException:
                mapped.close()
                raise
            return None, mapped, length
        data = bytearray()
        while len(data) < MAPPED_BODY:
            piece = answer.read(READ_PIECE)
            if not piece:
                return bytes(data), None, len(data)
            data += piece
        self.transport.large_answer = True
        mapped = mmap.mmap(-1, self.limit + 1)  # committed only as it is written
        try:
            mapped[:len(data)] = data
            size = len(data) + _read_into(answer, mapped, self.limit + 1, len(data))
            del data
            if size > self.limit:
                mapped.close()
                self._too_large(answer, "more")
        except BaseException:
            mapped.close()
            raise
        return None, mapped, size

    def _too_large(self, answer, size):
        self._close()
        error = errors.invalid_response(
            f"the answer is larger than aws_lambda.max_response_bytes ({self.limit} bytes)",
            hint=f"The endpoint sent {size}; the answer was not read and the connection was "
            f"closed. Lambda returns at most {MAX_RESPONSE_BYTES} bytes from a synchronous "
            "invocation.",
        )
        error.status_code = answer.status
        error.may_have_run = True
        raise error

    def _close(self):
        self.conn.sock = self.sock
        self.conn.close()

    # -- what http.client sees as its socket ---------------------------------
    def sendall(self, data):
        self.pending.append(data)

    def makefile(self, mode, *args, **kwargs):
        """The answer's file: the request is sent first."""
        self._send()
        return io.BufferedReader(_Reader(self))

    def close(self):
        pass  # http.client closes before the body is read: run() closes the socket after

    def _send(self):
        pending, self.pending = self.pending, []
        if self.reused:
            # Checked again as late as possible: a server that closed the connection
            # since it was taken gets nothing, and the request goes on a new one.
            if not _still_open(self.sock):
                raise _NeverRead()
        if self.tls:
            # One TLS record for a small request: a first send that fails then leaves
            # at most part of a record, which the server cannot read.
            total = sum(len(part) for part in pending)
            pieces = [b"".join(pending)] if total <= TLS_RECORD else pending
            for piece in pieces:
                self._write([piece], gather=False)
        else:
            self._write(pending, gather=True)

    def _write(self, parts, gather):
        views = [memoryview(part).cast("B") for part in parts if len(part)]
        while views:
            self._timeout()
            if self.first_write is None:
                self.first_write = sum(len(view) for view in views)
            try:
                n = self.sock.sendmsg(views) if gather else self.sock.send(views[0])
            except socket.timeout:
                raise
            except OSError:
                if self.written == 0:
                    self.first_write_failed = True
                raise
            self.written += n
            while n:
                if n >= len(views[0]):
                    n -= len(views.pop(0))
                else:
                    views[0] = views[0][n:]
                    n = 0

    def _timeout(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        self.sock.settimeout(left)

    def _never_read(self):
        """Whether the server cannot have read the request (see the module's docstring).
        Only for a pooled connection, and with no byte of an answer:

        - our first send failed: the kernel took none of the request (TLS: at most part
          of one record, which the server cannot decrypt); or
        - a read found the server's end of the connection (its FIN), and its TCP then
          reset the connection, which a TCP does when its socket was closed with data
          of ours unread, or data of ours arrives after it closed: the server did not
          read the whole request, and cannot have acted on it.
        """
        if not self.reused or self.received:
            return False
        if self.first_write_failed:
            return not self.tls or self.first_write <= TLS_RECORD
        return self.eof and _reset_follows(self.sock, self.deadline)


def _read_into(answer, mapped, end, start=0):
    """Read the body into mapped[start:end] until it ends or fills; how many bytes came."""
    view = memoryview(mapped)
    got = start
    try:
        while got < end:
            n = answer.readinto(view[got:end])
            if not n:
                break
            got += n
    finally:
        view.release()
    return got - start


class _Reader(io.RawIOBase):
    """Reads of one exchange: each waits only until the exchange's deadline."""

    def __init__(self, exchange):
        self._exchange = exchange

    def readable(self):
        return True

    def readinto(self, buffer):
        exchange = self._exchange
        exchange._timeout()
        n = exchange.sock.recv_into(buffer)
        if n:
            exchange.received += n
        else:
            exchange.eof = True
        return n


# Linux's struct tcp_info (linux/tcp.h): tcpi_state is its first byte, tcpi_rtt
# (microseconds) a 32-bit field at 68. Elsewhere there is no tcp_info, and a request
# is not sent again after it was written.
_TCP_INFO = getattr(socket, "TCP_INFO", None)
_RTT = 68
_TCP_CLOSE = 7  # tcpi_state once the connection was reset
RESET_WAIT = 0.2  # seconds, at most, to wait for the reset that follows a closed server's FIN


def _tcp_info(sock):
    if _TCP_INFO is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 104)
    except (OSError, ValueError):
        return None
    return info if len(info) >= _RTT + 4 else None


def _reset_follows(sock, deadline):
    """Whether the peer resets the connection (after its FIN), without our sending more.

    A reset answers data of ours about a round trip after it was sent; it is waited for
    a few round trips (at least 10 ms, at most RESET_WAIT, never past the deadline)."""
    info = _tcp_info(sock)
    if info is None:
        return False
    rtt = struct.unpack_from("=I", info, _RTT)[0] / 1e6
    until = min(time.monotonic() + min(max(4 * rtt, 0.01), RESET_WAIT), deadline)
    while info[0] != _TCP_CLOSE:
        if time.monotonic() >= until:
            return False
        time.sleep(0.001)
        info = _tcp_info(sock)
        if info is None:
            return False
    return True


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
