"""The emulator's own HTTP endpoints, under ``/_emulator/``, so that a process
that did not start the emulator can drive it. They are never signed.

- ``GET /_emulator/health``: ``{"ok": true}``;
- ``GET /_emulator/requests``: counts (``total``, ``by_function``,
  ``invocations``, ``tenant_invocations``, ``executions``, ``assume_role``),
  ``durable_executions`` (one summary per durable execution started) and
  ``requests``: one summary per recorded Invoke request (no body or headers; with
  its ``tenant_id``, ``durable_execution_name`` and ``durable_execution_arn``);
- ``GET /_emulator/executions``: ``executions`` (durable executions started, by
  function) and ``durable_executions``;
- ``GET /_emulator/faults``: the queued faults;
- ``POST /_emulator/faults`` with ``{"function": "fn" or "*", "kind": "...",
  "count": N or null, ...parameters}``: queue a fault (400 if invalid);
- ``DELETE /_emulator/faults[?function=fn]``: drop faults;
- ``POST /_emulator/reset``: forget requests, counts, durable executions and faults.
"""

import json
from urllib.parse import parse_qs

from .messages import Response


def _json(status, value):
    return Response(status, json.dumps(value).encode())


def handle(emu, request):
    route = (request.method, request.path.rstrip("/"))
    if route == ("GET", "/_emulator/health"):
        return _json(200, {"ok": True})
    if route == ("GET", "/_emulator/requests"):
        return _json(200, emu.summary())
    if route == ("GET", "/_emulator/executions"):
        return _json(200, emu.executions_summary())
    if route == ("GET", "/_emulator/faults"):
        return _json(200, {"faults": emu.faults.list()})
    if route == ("POST", "/_emulator/faults"):
        try:
            spec = json.loads(request.body or b"{}")
            if not isinstance(spec, dict):
                raise ValueError("the body must be a JSON object")
            function, kind, count = spec.pop("function", "*"), spec.pop("kind", None), spec.pop("count", None)
            fault = emu.set_fault(function, kind, count, **spec)
        except (ValueError, TypeError) as error:
            return _json(400, {"error": str(error)})
        return _json(200, {"fault": fault})
    if route == ("DELETE", "/_emulator/faults"):
        function = parse_qs(request.query).get("function", [None])[0]
        emu.clear_faults(function)
        return _json(200, {"faults": emu.faults.list()})
    if route == ("POST", "/_emulator/reset"):
        emu.reset()
        return _json(200, {"ok": True})
    return _json(404, {"error": f"no such control endpoint: {request.method} {request.path}"})
