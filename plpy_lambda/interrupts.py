"""Waiting for the network without making the backend deaf to PostgreSQL.

A Python call blocked on a socket never reaches PostgreSQL's interrupt check, so
statement_timeout and pg_cancel_backend() would wait for it. The backend's own
thread therefore never blocks for long: it waits on its sockets in slices of at
most SLICE seconds and, at least every SLICE, runs a trivial prepared query
(Checker.check), which checks for interrupts. A cancel arrives there as
plpy.SPIError and leaves as errors.Canceled. Only the backend's thread touches plpy.

What cannot be done without blocking (a DNS lookup, connecting through reach.py's
proxies and TLS handshakes) runs in a worker thread (Workers): each connection
being made has a thread of its own, so a batch's connections are made in parallel,
and a slow one holds up no other. Workers run with every signal blocked, so
PostgreSQL's signal handlers always run on the backend's thread. A worker that
finishes writes a byte to a pipe the backend waits on with its sockets.

A job the backend stops waiting for (canceled, past its deadline) is abandoned:
its worker closes what it made when it ends. A connect in progress ends within
aws_lambda.connect_timeout_ms, and the connection is never used.

Worker threads: started as needed, up to MAX_WORKERS. Once no more than
FLOOR_WORKERS have been busy at once for IDLE_SECONDS, the others end: the
backend asks them to as its next call starts (it cannot run timers while idle,
as PL/Python holds the GIL then), and they end during that call's first wait.
"""

import _signal
import _thread
import os
import time

from plpy_lambda import errors

SLICE = 0.02  # seconds between interrupt checks
# Seconds past a call's deadline that the backend waits for its connect job to report: the
# job's own timeout ends it at the deadline, and a busy machine may take that long to run it.
GRACE = 0.1
MAX_WORKERS = 64
FLOOR_WORKERS = 4  # threads kept however long they are idle
IDLE_SECONDS = 5.0  # the others end once no more than FLOOR_WORKERS were busy this long


class Checker:
    """The interrupt check of one backend: a prepared trivial query."""

    __slots__ = ("plpy", "_plan", "checked_at")

    def __init__(self, plpy):
        self.plpy = plpy
        self._plan = None
        self.checked_at = time.monotonic()

    def check(self):
        """Raise errors.Canceled if PostgreSQL has a cancel or timeout pending."""
        if self._plan is None:
            self._plan = self.plpy.prepare("SELECT 1")
        execute(self.plpy, self._plan)
        self.checked_at = time.monotonic()

    def due(self, now):
        """Check if SLICE has passed since the last check."""
        if now - self.checked_at >= SLICE:
            self.check()


def execute(plpy, plan, values=()):
    """One statement of ours on the backend's thread; a cancel or statement_timeout that
    PostgreSQL raises during it (plpy.SPIError) leaves as errors.Canceled."""
    try:
        return plpy.execute(plan, list(values))
    except plpy.SPIError as error:
        raise errors.Canceled(getattr(error, "sqlstate", None), str(error)) from None


class Job:
    """A function run by a worker: its outcome, and whether the backend still wants it."""

    __slots__ = ("_fn", "_args", "_workers", "_worker", "_lock", "done", "result", "error",
                 "abandoned", "discard")

    def __init__(self, workers, fn, args, discard):
        self._fn = fn
        self._args = args
        self._workers = workers
        self._worker = None
        self._lock = _thread.allocate_lock()
        self.done = False
        self.result = None
        self.error = None
        self.abandoned = False
        self.discard = discard  # closes a result nobody wants

    def _run(self):
        try:
            result, error = self._fn(*self._args), None
        except BaseException as caught:  # handed to the backend's thread, which raises it
            result, error = None, caught
        with self._lock:
            self.result, self.error, self.done = result, error, True
            abandoned = self.abandoned
        if abandoned:
            self._drop()
        else:
            self._workers.wake()

    def collect(self):
        """The result (or raise the error) of a done job; its worker is free again."""
        self._workers.release(self._worker)
        self._worker = None
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        result, self.result = self.result, None
        return result

    def abandon(self):
        """The backend no longer waits: whatever the job made is closed."""
        with self._lock:
            self.abandoned = True
            done = self.done
        if done:
            self._drop()

    def _drop(self):
        result, self.result, self.error = self.result, None, None
        worker, self._worker = self._worker, None
        if result is not None and self.discard is not None:
            try:
                self.discard(result)
            except Exception:  # a socket that will not close cleanly is closed anyway
                pass
        if worker is not None:
            self._workers.release(worker)


class _Worker:
    """One worker thread. The backend hands it a job (or False: end) with give(); `_go` is
    held whenever nothing has been given since the thread last took, and `_running` for
    as long as the thread runs."""

    __slots__ = ("job", "_go", "_running")

    def __init__(self):
        self.job = None
        self._go = _thread.allocate_lock()
        self._go.acquire()
        self._running = _thread.allocate_lock()

    def give(self, job):
        """The job to run next, or False: end. Given only while the worker is idle."""
        self.job = job
        self._go.release()

    def serve(self):
        """The thread's loop: run what is given until told to end."""
        try:
            while True:
                self._go.acquire()
                job, self.job = self.job, None
                if job is False:
                    return
                job._run()
                del job
        finally:
            self._running.release()

    def join(self, timeout):
        """Wait until the thread has ended, at most timeout seconds."""
        if self._running.acquire(timeout=max(0.0, timeout)):
            self._running.release()


class Workers:
    """Threads for blocking jobs, one per job in progress, that end when idle.

    A job goes to a thread that no job holds (a job holds its thread until the backend
    collects it, or until it ends after being abandoned), else to a new thread. A new
    thread inherits the signal mask of the thread that starts it, so the mask is
    blocked around thread creation only.

    Idle threads wait without a timeout: a timed wait that ends while the backend is
    idle would have the thread wake every few milliseconds asking for the GIL, which
    PL/Python holds then. Instead release_idle(), called by the backend as a call
    starts, ends the threads beyond the floor once no more than `floor` have been
    busy at once for idle_seconds.
    """

    def __init__(self, max_workers=MAX_WORKERS, floor=FLOOR_WORKERS, idle_seconds=IDLE_SECONDS):
        self._max = max_workers
        self._floor = floor
        self._idle_seconds = idle_seconds
        self._lock = _thread.allocate_lock()
        self._idle = []  # _Worker waiting for a job, most recently used last
        self._threads = 0
        self._busy = 0
        self._wide_at = time.monotonic()  # when more than `floor` were last busy at once
        self.wake_fd = None  # the backend waits on it with its sockets
        self._wake_write = None

    def pipe(self):
        """The file descriptor a finished job makes readable (see drain)."""
        if self.wake_fd is None:
            read, write = os.pipe()
            os.set_blocking(read, False)
            os.set_blocking(write, False)
            self.wake_fd, self._wake_write = read, write
        return self.wake_fd

    def wake(self):
        try:
            os.write(self._wake_write, b"\0")
        except OSError:  # full: the backend has wake-ups pending already
            pass

    def drain(self):
        """Read the wake-ups (the backend, when wake_fd is readable)."""
        try:
            while os.read(self.wake_fd, 4096):
                pass
        except OSError:
            pass

    def start(self, fn, *args, discard=None):
        """Run fn(*args) in a thread of its own; returns the Job. Raises if no thread
        can be had (MAX_WORKERS busy cannot happen: batches are bounded by it)."""
        self.pipe()
        job = Job(self, fn, args, discard)
        with self._lock:
            worker = self._idle.pop() if self._idle else None
            self._busy += 1
            if self._busy > self._floor:
                self._wide_at = time.monotonic()
            if worker is None:
                self._threads += 1
        if worker is None:
            worker = _Worker()
            try:
                self._spawn(worker)
            except BaseException:
                with self._lock:
                    self._threads -= 1
                    self._busy -= 1
                raise
        job._worker = worker
        worker.give(job)
        return job

    def release(self, worker):
        if worker is None:
            return
        with self._lock:
            if self._busy > self._floor:
                self._wide_at = time.monotonic()
            self._busy -= 1
            self._idle.append(worker)

    def release_idle(self):
        """End the threads beyond the floor if no more than `floor` have been busy at
        once for idle_seconds. They end as soon as they get the GIL."""
        self._end_surplus(self._idle_seconds)

    def release_surplus(self, timeout=1.0):
        """End the idle threads beyond the floor now, and wait (up to timeout seconds in
        all) for them to be gone: an idle backend never runs them again to let them end."""
        deadline = time.monotonic() + timeout
        for worker in self._end_surplus():
            worker.join(deadline - time.monotonic())

    def _end_surplus(self, idle_seconds=None):
        """Tell the idle threads beyond the floor, the least recently used, to end (with
        idle_seconds: only once no more than `floor` have been busy at once that long).
        Returns them."""
        with self._lock:
            surplus = self._threads - self._floor
            if surplus <= 0 or (idle_seconds is not None
                                and time.monotonic() - self._wide_at < idle_seconds):
                return []
            leaving = self._idle[:surplus]
            del self._idle[:surplus]
            self._threads -= len(leaving)
        for worker in leaving:
            worker.give(False)
        return leaving

    @staticmethod
    def _spawn(worker):
        # _thread and _signal, not threading and signal: those import enum, functools and
        # collections, which would be most of a new connection's first call.
        previous = _signal.pthread_sigmask(_signal.SIG_BLOCK, _signal.valid_signals())
        try:
            worker._running.acquire()
            try:
                _thread.start_new_thread(worker.serve, ())
            except BaseException:
                worker._running.release()
                raise
        finally:
            _signal.pthread_sigmask(_signal.SIG_SETMASK, previous)

    @property
    def threads(self):
        """How many worker threads are running."""
        with self._lock:
            return self._threads
