"""Per-thread capture of what handlers print.

``sys.stdout`` and ``sys.stderr`` are replaced (once, on first use, and again if
someone else replaces them later) by routers that write to the current thread's
capture buffer when it has one, and to the stream they replaced otherwise. So
concurrent invocations, each in its own thread, never mix their output, and
everything else in the process prints as before. The routers are left in place;
they are transparent. Output of threads a handler starts itself, and writes that
bypass ``sys.stdout`` (``os.write(1, ...)``), are not captured.
"""

import io
import sys
import threading
from contextlib import contextmanager

_local = threading.local()
_install_lock = threading.Lock()


class _Router:
    """Stands in for sys.stdout or sys.stderr."""

    def __init__(self, original):
        self.original = original

    def write(self, text):
        buffer = getattr(_local, "buffer", None)
        if buffer is not None:
            return buffer.write(text)
        if self.original is not None:
            return self.original.write(text)
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        if getattr(_local, "buffer", None) is None and self.original is not None:
            self.original.flush()

    def __getattr__(self, name):
        return getattr(self.original, name)


def _install():
    with _install_lock:
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router(sys.stdout)
        if not isinstance(sys.stderr, _Router):
            sys.stderr = _Router(sys.stderr)


@contextmanager
def captured():
    """Collect this thread's stdout and stderr output in a StringIO while inside."""
    if not (isinstance(sys.stdout, _Router) and isinstance(sys.stderr, _Router)):
        _install()
    buffer = io.StringIO()
    _local.buffer = buffer
    try:
        yield buffer
    finally:
        _local.buffer = None
