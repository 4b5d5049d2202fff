"""Waiting for network work without making the backend deaf to PostgreSQL.

A Python call blocked on a socket never reaches PostgreSQL's interrupt check, so
statement_timeout and pg_cancel_backend() would wait for it. The network work
runs in a worker thread instead; the backend's own thread waits in short slices
and, between them, runs a trivial prepared query, which checks for interrupts.
A cancel arrives there as plpy.SPIError and leaves as errors.Canceled.
An abandoned worker finishes on its own socket timeout; other workers carry on.
Only the backend's thread touches plpy; workers run with every signal blocked,
so PostgreSQL's signal handlers always run on the backend's thread.
"""

import signal
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
        """Start fn in a worker thread."""
        return self._executor.submit(fn, *args)

    def wait(self, plpy, future, deadline, on_deadline):
        """The future's result, checking for interrupts every SLICE seconds.

        Past the deadline (plus a grace for the worker's own timeout to fire),
        raises on_deadline() and leaves the worker behind.
        """
        while True:
            try:
                return future.result(timeout=SLICE)
            except FutureTimeout:
                pass
            self.check_interrupts(plpy)
            if time.monotonic() > deadline + 0.5:
                raise on_deadline()

    def check_interrupts(self, plpy):
        if self._check_plan is None:
            self._check_plan = plpy.prepare("SELECT 1")
        try:
            plpy.execute(self._check_plan)
        except plpy.SPIError as error:
            raise errors.Canceled(getattr(error, "sqlstate", None), str(error)) from None
