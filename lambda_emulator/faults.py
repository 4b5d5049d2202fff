"""Fault injection for testing a client's error handling.

Owns the fault table and the broken answers faults produce. Each fault names a
function (or ``*`` for every function) and applies to the next ``count``
Invoke requests for it (``count=None``: to all of them). A function's faults
apply in the order they were set: when one is used up, the next takes over.
A fault is applied before the request's signature is checked, and every kind
except ``delay`` answers instead of the handler (which then does not run).

Kinds and their parameters:

- ``close_before_response``: ``reset`` (False): read the request, close the
  connection, answer nothing (``reset``: an abortive close, a TCP reset instead of
  the orderly end);
- ``drop_mid_response``: ``size`` (1024), ``sent`` (size // 2): send a 200 head
  announcing ``size`` bytes of JSON, only ``sent`` of them, then close;
- ``delay``: ``seconds`` (1.0): wait, then serve the request normally;
- ``status``: ``status`` (500), ``error_type``, ``message``, ``retry_after``:
  an AWS error answer. Defaults: 429 TooManyRequestsException with
  ``Retry-After: 1``, 413 RequestTooLargeException, 500/502/503 ServiceException;
- ``not_json``: ``body`` ("this is not JSON"), ``status`` (200): a body that is not JSON;
- ``huge``: ``size`` (6291457), ``chunked`` (False): a 200 whose body is ``size``
  bytes of valid JSON, streamed in 64 KiB pieces (so any size costs the emulator
  nothing); ``chunked``: sent with ``Transfer-Encoding: chunked`` and no length;
- ``drip``: ``size`` (64), ``interval`` (0.5), ``chunk`` (1), ``head`` (False): a
  200 whose ``size`` bytes of JSON come ``chunk`` bytes every ``interval`` seconds
  (``head``: the status line and headers drip too);
- ``raw``: ``body`` (""), ``body_base64`` (None: ``body`` as UTF-8), ``status`` (200),
  ``function_error`` (None), ``log`` (None), ``log_base64`` (None): an answer with
  exactly this body, as a function's answer (``X-Amz-Executed-Version``), with
  ``X-Amz-Function-Error`` when ``function_error`` is given and ``X-Amz-Log-Result``
  (``log`` as UTF-8, or ``log_base64`` as it is) when either is given.

Two kinds are not answers but properties of the server's keep-alive connections
(``function`` is ignored, ``count`` counts the connections closed; requests are
otherwise served normally; the fault's ``closed`` counts the connections closed once
they are, for a test to wait on):

- ``idle_close``: ``seconds`` (0.3), ``reset`` (False): a connection left idle for
  ``seconds`` after an answer is closed, as servers and load balancers close idle
  connections (``reset``: with a TCP reset, as some load balancers do);
- ``close_unread``: the next request that arrives on a kept-alive connection is
  not read: the server closes the connection as it arrives (its TCP then resets
  it, as data was left unread), as when an idle timeout fires just as a request
  comes. The request is not recorded; the handler does not run.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass

from .messages import Response, aws_error

ANY = "*"
PARAMS = {
    "close_before_response": {"reset": False},
    "drop_mid_response": {"size": 1024, "sent": None},
    "delay": {"seconds": 1.0},
    "status": {"status": 500, "error_type": None, "message": None, "retry_after": None},
    "not_json": {"body": "this is not JSON", "status": 200},
    "huge": {"size": 6 * 1024 * 1024 + 1, "chunked": False},
    "drip": {"size": 64, "interval": 0.5, "chunk": 1, "head": False},
    "idle_close": {"seconds": 0.3, "reset": False},
    "close_unread": {},
    "raw": {"body": "", "body_base64": None, "status": 200, "function_error": None, "log": None,
            "log_base64": None},
}
CONNECTION_KINDS = ("idle_close", "close_unread")  # properties of connections, not answers
STREAM_PIECE = 64 * 1024
_STATUS_ERRORS = {
    400: ("InvalidRequestContentException", "Could not parse request body into json."),
    403: ("AccessDeniedException", "User is not authorized to perform: lambda:InvokeFunction"),
    404: ("ResourceNotFoundException", "Function not found."),
    413: ("RequestTooLargeException", "Request must be smaller than 6291456 bytes for the InvokeFunction operation"),
    429: ("TooManyRequestsException", "Rate Exceeded."),
}


@dataclass
class Fault:
    function: str
    kind: str
    count: int | None  # None: every request
    params: dict
    used: int = 0
    closed: int = 0  # connection faults: the connections closed so far (counted once closed)

    def as_dict(self):
        return asdict(self)


class FaultTable:
    def __init__(self):
        self._lock = threading.Lock()
        self._faults = []

    def add(self, function, kind, count=None, **params):
        """Queue a fault; raises ValueError for an unknown kind or parameter."""
        if kind not in PARAMS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(PARAMS)}")
        unknown = set(params) - set(PARAMS[kind])
        if unknown:
            raise ValueError(f"fault {kind!r} takes no parameter {', '.join(sorted(unknown))}")
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError("count must be a positive integer or None")
        fault = Fault(function or ANY, kind, count, {**PARAMS[kind], **params})
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self, function=None):
        """Drop the faults of one function, or all of them."""
        with self._lock:
            self._faults = [f for f in self._faults if function is not None and f.function != function]

    def list(self):
        with self._lock:
            return [fault.as_dict() for fault in self._faults]

    def take(self, function):
        """The fault that applies to this request for function, if any, used once."""
        with self._lock:
            for fault in self._faults:
                if fault.kind in CONNECTION_KINDS:
                    continue
                if fault.function in (function, ANY):
                    fault.used += 1
                    if fault.count is not None and fault.used >= fault.count:
                        self._faults.remove(fault)
                    return fault
        return None

    def connection_fault(self):
        """The first connection-level fault (idle_close, close_unread), or None."""
        with self._lock:
            for fault in self._faults:
                if fault.kind in CONNECTION_KINDS:
                    return fault
        return None

    def closed(self, fault):
        """A connection fault has closed its connection."""
        with self._lock:
            fault.closed += 1

    def use(self, fault):
        """A connection fault was applied: counts it, dropped when used up."""
        with self._lock:
            fault.used += 1
            if fault.count is not None and fault.used >= fault.count and fault in self._faults:
                self._faults.remove(fault)


@dataclass
class Closing(Response):
    """No answer: the connection is closed (``reset``: abortively, with a TCP reset)."""

    reset: bool = False


@dataclass
class Streamed(Response):
    """An answer whose body is produced while it is sent: ``pieces`` yields bytes.

    ``length``: sent as Content-Length (None: ``Transfer-Encoding: chunked``);
    ``head_interval``/``head_chunk``: the head itself is sent that slowly."""

    pieces: object = None
    length: int | None = None
    head_interval: float | None = None
    head_chunk: int = 1


def _json_pieces(size, piece, interval=None):
    """size bytes (at least 2) of valid JSON, one string, in pieces of piece bytes."""
    size = max(size, 2)
    sent = 0
    while sent < size:
        if interval and sent:
            time.sleep(interval)
        n = min(piece, size - sent)
        chunk = bytearray(b"x" * n)
        if sent == 0:
            chunk[0:1] = b'"'
        if sent + n == size:
            chunk[-1:] = b'"'
        sent += n
        yield bytes(chunk)


def _json_of_size(size):
    """Exactly size bytes (at least 2) of valid JSON: one string."""
    return b'"' + b"x" * max(0, size - 2) + b'"'


def response(fault, request_id):
    """The answer a fault gives instead of the normal one (None for ``delay``)."""
    p = fault.params
    ids = [("x-amzn-RequestId", request_id)]
    if fault.kind == "close_before_response":
        return Closing(0, close=True, reset=bool(p["reset"]))
    if fault.kind == "drop_mid_response":
        size = int(p["size"])
        sent = size // 2 if p["sent"] is None else int(p["sent"])
        return Response(200, _json_of_size(size), ids, truncate_at=min(sent, size))
    if fault.kind == "status":
        status = int(p["status"])
        error_type, message = _STATUS_ERRORS.get(status, ("ServiceException", "An error occurred and the request cannot be processed."))
        headers = []
        retry_after = p["retry_after"] if p["retry_after"] is not None else ("1" if status == 429 else None)
        if retry_after is not None:
            headers.append(("Retry-After", str(retry_after)))
        extra = {"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"} if status == 429 else {}
        return aws_error(status, p["error_type"] or error_type, p["message"] or message, request_id, headers, **extra)
    if fault.kind == "not_json":
        return Response(int(p["status"]), str(p["body"]).encode(), ids + [("X-Amz-Executed-Version", "$LATEST")])
    if fault.kind == "huge":
        size = int(p["size"])
        return Streamed(200, headers=ids + [("X-Amz-Executed-Version", "$LATEST")],
                        pieces=_json_pieces(size, STREAM_PIECE),
                        length=None if p["chunked"] else max(size, 2))
    if fault.kind == "drip":
        size = int(p["size"])
        return Streamed(200, headers=ids + [("X-Amz-Executed-Version", "$LATEST")],
                        pieces=_json_pieces(size, max(1, int(p["chunk"])), float(p["interval"])),
                        length=max(size, 2),
                        head_interval=float(p["interval"]) if p["head"] else None,
                        head_chunk=max(1, int(p["chunk"])))
    if fault.kind == "raw":
        return _raw(p, ids)
    return None


def _raw(p, ids):
    """The ``raw`` fault's answer: the body and headers as given."""
    import base64

    body = base64.b64decode(p["body_base64"]) if p["body_base64"] is not None else str(p["body"]).encode()
    headers = ids + [("X-Amz-Executed-Version", "$LATEST")]
    if p["function_error"] is not None:
        headers.append(("X-Amz-Function-Error", str(p["function_error"])))
    if p["log_base64"] is not None:
        headers.append(("X-Amz-Log-Result", str(p["log_base64"])))
    elif p["log"] is not None:
        headers.append(("X-Amz-Log-Result", base64.b64encode(str(p["log"]).encode()).decode()))
    return Response(int(p["status"]), body, headers)
