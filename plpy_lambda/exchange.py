"""One call's HTTP/1.1 exchange with the Invoke API on a non-blocking socket (Call), as
a state machine driven by the backend's own thread (client.Transport.run, batch.run): one
write of the request (signed by client.Transport.head), then the answer read by
http_answer.Answer. Connections are made by worker threads (_connect) and kept by
client.Pool.

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

Retries back off exponentially with jitter and never go past the call's deadline;
when the deadline has come by the time a retry would start (a late timer), the call
ends with the outcome that retry stood in for (Call.retried), and a connect still
unfinished at the deadline is a connection that could not be made.
A read timeout, a connection lost after the server may have read the request
(a reset without the server's FIN, an end without a reset, a cut answer), or any
other answer is final, so a function is never run twice because of us. A proxy
refusing the connection, or an endpoint certificate that fails verification, is
final too: another attempt would meet the same answer.
"""

import _socket
import select
import sys
import time

from plpy_lambda import errors, http_answer, interrupts

MAX_ATTEMPTS = 5
BACKOFF_BASE = 0.05  # seconds
BACKOFF_CAP = 1.0
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # Lambda's limit for a synchronous answer
READ_SIZE = 64 * 1024  # bytes asked for by one read
TLS_RECORD = 16384  # plaintext bytes of one TLS record
RESET_WAIT = 0.2  # seconds, at most, to wait for the reset that follows a closed server's FIN

_IN = select.POLLIN
_OUT = select.POLLOUT
_GONE = select.POLLERR | select.POLLHUP | select.POLLNVAL

# Call states
CONNECTING, SENDING, READING, RESET, BACKOFF, DONE = range(6)


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
    retried = None  # the outcome the pending retry stands in for: the call's if it cannot run
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
        if isinstance(self.outcome, http_answer.Response):
            return self.outcome
        raise self.outcome

    # -- attempts ----------------------------------------------------------------------
    def begin(self, now):
        try:
            self._attempt(now)
        except errors.LambdaError as error:
            self._finish(error)

    def _attempt(self, now):
        if now >= self.deadline:  # a backoff's end came late: the last attempt's outcome stands
            if self.retried is None:
                raise errors.request_timed_out(self.request.endpoint, self.timeouts.request,
                                               sent=False)
            self._finish(self.retried)
            return
        self.attempt += 1
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
                failure = errors.unable_to_connect(self.request.endpoint, error)
                if error.retry and self.attempt < MAX_ATTEMPTS and self._backoff(now, failure):
                    return
                raise failure from None
            except errors.LambdaError:
                raise
            except Exception as error:  # never a traceback for the user
                raise errors.unable_to_connect(self.request.endpoint, _cause(error)) from None
            self.reused = False
            self._exchange(conn, time.monotonic())
        except errors.LambdaError as error:
            self._finish(error)

    def _backoff(self, now, outcome, retry_after=None):
        """Wait before the next attempt, which stands in for outcome; False when that
        would pass the deadline."""
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
        self.retried = outcome
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
                # Its job did not report by the deadline: this connect was not made in time.
                self._drop_job()
                raise errors.unable_to_connect(self.request.endpoint, "timed out")
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
        self._answer = http_answer.Answer(self.limit)  # made while the request is on its way
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
            if self._backoff(now, response, response.headers.get("retry-after")):
                self.fresh = False
                return
        self._finish(response)

    def _ended(self, now):
        """A read found the server's end of the connection before the whole answer."""
        if self.reused and self._received == 0:
            info = _tcp_info(self.conn.sock)
            if info is not None:
                rtt = int.from_bytes(info[_RTT:_RTT + 4], sys.byteorder) / 1e6
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
        failure = errors.unable_to_connect(
            self.request.endpoint, "the server closed each connection before reading the request")
        if self.attempt >= MAX_ATTEMPTS:
            self._finish(failure)
            return
        self.retried = failure  # the outcome if the deadline has come
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

    # used by http_answer.Answer
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


def _cause(error):
    """A short, secret-free description of a transport error."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return text[:300]
