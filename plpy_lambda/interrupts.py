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

The backend waits for a call until its deadline and GRACE more (the worker's own
timeout, which knows whether the request was sent, ends it at the deadline).

Worker threads: started as needed, up to MAX_WORKERS. Once no more than
FLOOR_WORKERS have been busy at once for IDLE_SECONDS, the others end: the
backend asks them to as its next call starts (it cannot run timers while idle,
as PL/Python holds the GIL then), and they end during that call's first wait.
"""

import collections
import signal
import socket
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from plpy_lambda import errors

SLICE = 0.02  # seconds between interrupt checks
GRACE = 0.01  # seconds past a call's deadline before the backend stops waiting for it
MAX_WORKERS = 64
FLOOR_WORKERS = 4  # threads kept however long they are idle
IDLE_SECONDS = 5.0  # the others end once no more than FLOOR_WORKERS were busy this long


class _Workers:
    """A thread pool whose threads start with every signal blocked, and end when idle.

    A new thread inherits the signal mask of the thread that starts it, so the mask
    is blocked around thread creation only, which happens when no worker is idle.

    Idle threads wait without a timeout: a timed wait that ends while the backend is
    idle would have the thread wake every few milliseconds asking for the GIL, which
    PL/Python holds then. Instead release_idle(), called by the backend as a call
    starts, ends the threads beyond the floor once no more than `floor` have been
    busy at once for idle_seconds.
    """

    _ALL_SIGNALS = signal.valid_signals()

    def __init__(self, max_workers, floor, idle_seconds, name):
        self._max = max_workers
        self._floor = floor
        self._idle_seconds = idle_seconds
        self._name = name
        self._work = threading.Condition(threading.Lock())
        self._queue = collections.deque()  # (future, fn, args)
        self._threads = 0
        self._waiting = 0  # threads waiting for work
        self._busy = 0  # threads running a call
        self._wide_at = time.monotonic()  # when more than `floor` were last busy at once
        self._retire = 0  # idle threads asked to end
        self._started = 0

    def submit(self, future, fn, *args):
        """Run fn(*args) in a worker; its outcome goes to future (a new Future)."""
        with self._work:
            self._queue.append((future, fn, args))
            if self._waiting >= len(self._queue) or self._threads >= self._max:
                self._work.notify()
                return future
            self._threads += 1
            self._started += 1
            number = self._started
        try:
            self._start(number)
        except BaseException:
            with self._work:
                self._threads -= 1
                try:
                    self._queue.remove((future, fn, args))
                except ValueError:
                    pass
            raise
        return future

    def release_idle(self):
        """End the threads beyond the floor if no more than `floor` have been busy at
        once for idle_seconds. They end as soon as they get the GIL."""
        with self._work:
            surplus = self._threads - self._floor - self._retire
            if surplus > 0 and time.monotonic() - self._wide_at >= self._idle_seconds:
                self._retire += surplus
                self._work.notify_all()

    def _start(self, number):
        thread = threading.Thread(target=self._serve, name=f"{self._name}_{number}", daemon=True)
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, self._ALL_SIGNALS)
        try:
            thread.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def _serve(self):
        while True:
            with self._work:
                while not self._queue:
                    if self._retire:
                        if (self._threads > self._floor
                                and time.monotonic() - self._wide_at >= self._idle_seconds):
                            self._retire -= 1
                            self._threads -= 1
                            return
                        self._retire = 0  # busy again since it was asked
                    self._waiting += 1
                    try:
                        self._work.wait()
                    finally:
                        self._waiting -= 1
                future, fn, args = self._queue.popleft()
                self._busy += 1
                if self._busy > self._floor:
                    self._wide_at = time.monotonic()
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        result = fn(*args)
                    except BaseException as error:
                        future.set_exception(error)
                        del error
                    else:
                        future.set_result(result)
                        del result
            finally:
                with self._work:
                    if self._busy > self._floor:
                        self._wide_at = time.monotonic()
                    self._busy -= 1
            del future, fn, args

    @property
    def threads(self):
        with self._work:
            return self._threads


class Waiter:
    """The worker threads of one backend, and the interrupt check."""

    def __init__(self):
        self._workers = _Workers(MAX_WORKERS, FLOOR_WORKERS, IDLE_SECONDS, "plpy_lambda")
        self._check_plan = None

    def submit(self, fn, *args):
        """Start fn in a worker thread. The future's cancel() also abandons it if running;
        its `call` says whether the request was being sent."""
        future = _CallFuture(Call())
        return self._workers.submit(future, _run, future.call, fn, args)

    def wait(self, plpy, future, deadline, on_deadline):
        """The future's result, checking for interrupts every SLICE seconds.

        Past the deadline (plus GRACE for the worker's own timeout to end the call),
        raises on_deadline(sent), sent saying whether the request was being sent.
        Either way out but a result abandons the call.
        """
        try:
            while True:
                left = deadline + GRACE - time.monotonic()
                try:
                    return future.result(timeout=min(SLICE, max(left, 0)))
                except FutureTimeout:
                    pass
                self.check_interrupts(plpy)
                if left <= 0:
                    raise on_deadline(future.call.sent)
        except BaseException:
            if not future.done():
                future.cancel()
            raise

    def release_idle(self):
        """As a call starts: end the worker threads no longer needed (see _Workers)."""
        self._workers.release_idle()

    def check_interrupts(self, plpy):
        if self._check_plan is None:
            self._check_plan = plpy.prepare("SELECT 1")
        execute(plpy, self._check_plan)

    @property
    def threads(self):
        """How many worker threads are running."""
        return self._workers.threads


class _CallFuture(Future):
    """A submitted call's future: cancel() also abandons the call. (A subclass, not a
    closure set on the future, which would make a reference cycle that keeps the
    answer alive until Python's cyclic garbage collector runs.)"""

    def __init__(self, call):
        super().__init__()
        self.call = call

    def cancel(self):
        self.call.abandon()
        return super().cancel()


def execute(plpy, plan, values=()):
    """One statement of ours on the backend's thread; a cancel or statement_timeout that
    PostgreSQL raises during it (plpy.SPIError) leaves as errors.Canceled."""
    try:
        return plpy.execute(plan, list(values))
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
        self.sent = False  # a request was (being) written

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
            if sock is not None:
                self.sent = True

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
