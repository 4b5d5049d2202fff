"""Fault injection for testing a client's error handling.

Owns the fault table and the broken answers faults produce. Each fault names a
function (or ``*`` for every function) and applies to the next ``count``
Invoke requests for it (``count=None``: to all of them). A function's faults
apply in the order they were set: when one is used up, the next takes over.
A fault is applied before the request's signature is checked, and every kind
except ``delay`` answers instead of the handler (which then does not run).

Kinds and their parameters:

- ``close_before_response``: read the request, close the connection, answer nothing;
- ``drop_mid_response``: ``size`` (1024), ``sent`` (size // 2): send a 200 head
  announcing ``size`` bytes of JSON, only ``sent`` of them, then close;
- ``delay``: ``seconds`` (1.0): wait, then serve the request normally;
- ``status``: ``status`` (500), ``error_type``, ``message``, ``retry_after``:
  an AWS error answer. Defaults: 429 TooManyRequestsException with
  ``Retry-After: 1``, 413 RequestTooLargeException, 500/502/503 ServiceException;
- ``not_json``: ``body`` ("this is not JSON"), ``status`` (200): a body that is not JSON;
- ``huge``: ``size`` (6291457): a 200 whose body is ``size`` bytes of valid JSON.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

from .messages import Response, aws_error

ANY = "*"
PARAMS = {
    "close_before_response": {},
    "drop_mid_response": {"size": 1024, "sent": None},
    "delay": {"seconds": 1.0},
    "status": {"status": 500, "error_type": None, "message": None, "retry_after": None},
    "not_json": {"body": "this is not JSON", "status": 200},
    "huge": {"size": 6 * 1024 * 1024 + 1},
}
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
                if fault.function in (function, ANY):
                    fault.used += 1
                    if fault.count is not None and fault.used >= fault.count:
                        self._faults.remove(fault)
                    return fault
        return None


def _json_of_size(size):
    """Exactly size bytes (at least 2) of valid JSON: one string."""
    return b'"' + b"x" * max(0, size - 2) + b'"'


def response(fault, request_id):
    """The answer a fault gives instead of the normal one (None for ``delay``)."""
    p = fault.params
    ids = [("x-amzn-RequestId", request_id)]
    if fault.kind == "close_before_response":
        return Response(0, close=True)
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
        return Response(200, _json_of_size(int(p["size"])), ids + [("X-Amz-Executed-Version", "$LATEST")])
    return None
