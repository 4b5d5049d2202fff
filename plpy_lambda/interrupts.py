"""Waiting for network work without making the backend deaf to PostgreSQL.

A Python call blocked on a socket never reaches PostgreSQL's interrupt check, so
statement_timeout and pg_cancel_backend() would wait for it. The network work
runs in a worker thread instead; the backend's own thread waits in short slices
and, between them, runs a trivial prepared query, which checks for interrupts.
A cancel arrives there as plpy.SPIError and leaves as errors.Canceled.
Only the backend's thread touches plpy; workers run with every signal blocked,
so PostgreSQL's signal handlers always run on the backend's thread.

A call the backend stops waiting for (canceled, past its deadline, or its
future canceled) is abandoned: if it has not started it never will, the socket
it uses is shut down, and its worker checks before it connects or sends, so an
abandoned call is never sent afterwards and holds no thread or socket for long.
This matters because PL/Python holds the GIL while the backend is idle: a worker
only moves on while some later call waits, possibly long after the cancel.
"""

import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from plpy_lambda import errors

SLICE = 0.02  # seconds between interrupt checks
MAX_WORKERS = 64


class _Workers(ThreadPoolExecutor):
    """A thread pool whose threads start with every signal blocked.

    A new thread inherits the signal mask of the thread that starts it, so the mask
    is blocked around thread creation only, which happens when no worker is idle.
    """

    _ALL_SIGNALS = signal.valid_signals()

    def _adjust_thread_count(self):
        if self._idle_semaphore.acquire(timeout=0):
            return
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, self._ALL_SIGNALS)
        try:
            super()._adjust_thread_count()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class Waiter:
    """The worker threads of one backend, and the interrupt check."""

    def __init__(self):
        self._executor = _Workers(max_workers=MAX_WORKERS, thread_name_prefix="plpy_lambda")
        self._check_plan = None

    def submit(self, fn, *args):
        """Start fn in a worker thread. The future's cancel() also abandons it if running."""
        call = Call()
        future = self._executor.submit(_run, call, fn, args)
        plain_cancel = future.cancel

        def cancel():
            call.abandon()
            return plain_cancel()

        future.cancel = cancel
        return future

    def wait(self, plpy, future, deadline, on_deadline):
        """The future's result, checking for interrupts every SLICE seconds.

        Past the deadline (plus a grace for the worker's own timeout to fire),
        raises on_deadline(). Either way out but a result abandons the call.
        """
        try:
            while True:
                try:
                    return future.result(timeout=SLICE)
                except FutureTimeout:
                    pass
                self.check_interrupts(plpy)
                if time.monotonic() > deadline + 0.5:
                    raise on_deadline()
        except BaseException:
            if not future.done():
                future.cancel()
            raise

    def check_interrupts(self, plpy):
        if self._check_plan is None:
            self._check_plan = plpy.prepare("SELECT 1")
        try:
            plpy.execute(self._check_plan)
        except plpy.SPIError as error:
            raise errors.Canceled(getattr(error, "sqlstate", None), str(error)) from None


class Abandoned(Exception):
    """Raised in a worker whose call was abandoned, instead of sending anything."""


class Call:
    """One submitted call: the backend may abandon it; its worker notices."""

    def __init__(self):
        self._lock = threading.Lock()
        self._abandoned = False
        self._socket = None

    def abandon(self):
        """Stop the call: shut down the socket it uses (a blocked read or write ends)."""
        with self._lock:
            self._abandoned = True
            sock, self._socket = self._socket, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def watch(self, sock):
        """Raise Abandoned if the call was abandoned, else let abandon() shut sock down."""
        with self._lock:
            if self._abandoned:
                raise Abandoned()
            self._socket = sock

    def done(self):
        """The worker is finished with its socket (it may be idle in the pool now)."""
        with self._lock:
            self._socket = None


_current = threading.local()


def watch(sock=None):
    """In a worker, before connecting (sock None) or sending on sock: see Call.watch."""
    call = getattr(_current, "call", None)
    if call is not None:
        call.watch(sock)


def unwatch():
    """In a worker, before its socket goes back to the pool for other calls to use."""
    call = getattr(_current, "call", None)
    if call is not None:
        call.done()


def _run(call, fn, args):
    _current.call = call
    try:
        return fn(*args)
    finally:
        _current.call = None
        call.done()
