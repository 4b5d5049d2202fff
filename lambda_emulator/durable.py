"""Durable executions: what a durable function's Invoke calls start, and their names.

Owns the execution records and the rule for execution names (Lambda's
``X-Amz-Durable-Execution-Name``, 1 to 64 characters of ``[a-zA-Z0-9-_]``): a name
is an idempotency key within its function. The first call with a name starts an
execution (the handler runs); a later call with the same name, the same payload
and the same version gets that execution back (the handler does not run again);
any other call with the name is a conflict (409
DurableExecutionAlreadyStartedException). A call without a name always starts an
execution, named by a generated id, as Lambda names it.

Each execution's ARN is
``arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME:VERSION/durable-execution/EXECUTION_NAME/ID``
(the pattern of the API model's DurableExecutionArn), VERSION the version that ran.
The emulator keeps executions until reset; it has no steps, waits or checkpoints:
an execution is one run of the handler, SUCCEEDED or FAILED when it returns.
"""

from __future__ import annotations

import collections
import re
import threading
import time
import uuid
from dataclasses import dataclass, field

NAME_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}", re.ASCII)
NAME_PATTERN = "[a-zA-Z0-9-_]+"  # as the API model writes it
ARN_PATTERN = (r"arn:([a-zA-Z0-9-]+):lambda:([a-zA-Z0-9-]+):(\d{12}):function:([a-zA-Z0-9_-]+):"
               r"(\$LATEST(?:\.PUBLISHED)?|[0-9]+)/durable-execution/([a-zA-Z0-9_-]+)/([a-zA-Z0-9_-]+)")


@dataclass
class DurableExecution:
    """One durable execution. ``status``: RUNNING, then SUCCEEDED or FAILED (the
    handler raised, or its answer was an Invoke error)."""

    arn: str
    function: str
    version: str
    name: str
    payload: bytes  # the input payload, as received
    invocation_type: str  # of the call that started it
    request_id: str  # of the call that started it
    tenant_id: str | None
    started: float  # time.time()
    status: str = "RUNNING"
    ended: float | None = None
    outcome: object = None  # the run's runtime.Outcome, once it ended (answered again to repeats)
    done: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def summary(self):
        return {"arn": self.arn, "function": self.function, "version": self.version, "name": self.name,
                "status": self.status, "invocation_type": self.invocation_type, "request_id": self.request_id,
                "tenant_id": self.tenant_id, "started": self.started, "ended": self.ended,
                "payload_size": len(self.payload)}


class AlreadyStarted(Exception):
    """The name belongs to an execution started with another payload or version."""

    def __init__(self, execution, message):
        super().__init__(message)
        self.execution = execution


class DurableExecutions:
    """The executions of one emulator, by (function, execution name)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by_name = {}  # (function, name) -> DurableExecution
        self._all = []
        self._started = collections.Counter()  # function -> executions started

    def start(self, function_arn, function, version, name, payload, invocation_type, request_id, tenant_id=None):
        """(execution, started): a new execution (started True; the caller runs it and
        calls finish), or the existing one of that name (started False).
        Raises AlreadyStarted when the name's execution differs in payload or version."""
        with self._lock:
            if name is not None:
                existing = self._by_name.get((function, name))
                if existing is not None:
                    if existing.payload != payload or existing.version != version:
                        differs = "payload" if existing.payload != payload else f"version ({existing.version})"
                        raise AlreadyStarted(existing, (
                            f"Durable execution '{name}' has already been started for function {function} "
                            f"with a different {differs}: {existing.arn}"))
                    return existing, False
            name = name if name is not None else str(uuid.uuid4())
            execution = DurableExecution(
                f"{function_arn}:{version}/durable-execution/{name}/{uuid.uuid4()}", function, version, name,
                payload, invocation_type, request_id, tenant_id, time.time())
            self._by_name[(function, name)] = execution
            self._all.append(execution)
            self._started[function] += 1
            return execution, True

    def finish(self, execution, outcome):
        """The execution's run ended with outcome (a runtime.Outcome)."""
        with self._lock:
            execution.outcome = outcome
            execution.status = "FAILED" if outcome.function_error or outcome.invoke_error else "SUCCEEDED"
            execution.ended = time.time()
        execution.done.set()

    def started(self, function=None):
        """Executions started for function (all functions: a dict)."""
        with self._lock:
            return dict(self._started) if function is None else self._started[function]

    def list(self):
        with self._lock:
            return list(self._all)

    def clear(self):
        with self._lock:
            self._by_name.clear()
            self._all.clear()
            self._started.clear()
