"""Plain values passed between the HTTP layer and the APIs it serves.

Owns the Request/Response records, the case-insensitive header dict kept in the
request log, and the AWS JSON error shape: an ``x-amzn-ErrorType`` header plus a
body ``{"Type": "User"|"Service", "message": ..., "Message": ...}``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field


class HeaderDict(dict):
    """Received headers, names as sent, looked up without regard to case."""

    def __init__(self, pairs=()):
        super().__init__(pairs)
        self._names = {name.lower(): name for name in self}

    def _name(self, name):
        return self._names.get(name.lower(), name) if isinstance(name, str) else name

    def __getitem__(self, name):
        return super().__getitem__(self._name(name))

    def __contains__(self, name):
        return super().__contains__(self._name(name))

    def get(self, name, default=None):
        return super().get(self._name(name), default)


@dataclass
class Request:
    method: str
    path: str  # as received: still URL-encoded, without the query
    query: str  # as received, without "?"
    headers: object  # http.client.HTTPMessage: case-insensitive get() and get_all()
    body: bytes
    received: float  # time.time()


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list = field(default_factory=list)  # [(name, value), ...]
    content_type: str | None = "application/json"
    close: bool = False  # close the connection without answering at all
    truncate_at: int | None = None  # send the head and this many body bytes, then close


def new_request_id():
    return str(uuid.uuid4())


def aws_error(status, error_type, message, request_id, headers=(), **extra):
    """An error answer shaped like the Lambda REST API's (botocore parses it)."""
    body = {"Type": "User" if status < 500 else "Service", "message": message, "Message": message}
    body.update(extra)
    return Response(
        status,
        json.dumps(body).encode(),
        [("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", error_type), *headers],
    )
