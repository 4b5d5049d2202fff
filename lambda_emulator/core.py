"""The Emulator: configuration, start and stop, and the state tests look at.

Owns what the HTTP server shares between its threads: the function store, the
fault table, the key store, the record of received Invoke requests (the last
10000), per-function counts of handler runs (and per tenant, for tenant-isolated
functions), the durable executions started, AssumeRole calls, and the count of
Event invocations still running.
"""

import collections
import importlib
import sys
import threading
import time

from .durable import DurableExecutions
from .faults import FaultTable
from .functions import FunctionStore
from .server import EmulatorHTTPServer
from .request_auth import KeyStore

MAX_RECORDS = 10000


class Emulator:
    """A local AWS Lambda Invoke endpoint (and minimal STS) serving handler files.

    ``credentials``: ``{access_key_id: secret_access_key}``; when given, every
    request must be SigV4-signed with one of these keys or a key the emulator's
    STS issued. ``quiet=False`` logs each request and each invocation's log to
    stderr. ``ssl_context`` (a server-side ssl.SSLContext with its certificate loaded):
    serve HTTPS instead of HTTP; ``url`` then starts with https://.
    """

    def __init__(self, functions_dir, host="127.0.0.1", port=0, region="us-east-1",
                 account_id="123456789012", credentials=None, assume_role_duration=3600, quiet=True,
                 ssl_context=None):
        self.functions = FunctionStore(functions_dir)
        self.faults = FaultTable()
        self.keys = KeyStore(credentials)
        self.host, self.region, self.account_id = host, region, account_id
        self.assume_role_duration = assume_role_duration
        self.quiet = quiet
        self.ssl_context = ssl_context
        self._address = (host, port)
        self._server = None
        self._thread = None
        self._lock = threading.Lock()
        self._records = collections.deque(maxlen=MAX_RECORDS)
        self._invocations = collections.Counter()
        self._tenant_invocations = collections.defaultdict(collections.Counter)  # function -> tenant -> runs
        self.durable = DurableExecutions()
        self._assumed = []
        self._running = 0
        self._idle = threading.Condition(self._lock)

    # -- lifecycle ---------------------------------------------------------
    def start(self):
        """Listen and serve in a background thread; returns self at once."""
        if self._server is not None:
            return self
        if self.keys.verify:  # load botocore now rather than on the first request
            importlib.import_module(f"{__package__}.signature")
        self._server = EmulatorHTTPServer(self._address, self)
        if self.ssl_context is not None:
            # Each connection's handshake happens in its own thread, at its first read.
            self._server.socket = self.ssl_context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
            name=f"plpy_lambda-emulator-{self.port}", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self):
        """Stop listening, close open connections, unload handler modules.
        Handlers still running finish on their own."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        self._thread.join(timeout=5)
        self.functions.unload()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._server.server_address[1] if self._server else None

    @property
    def url(self):
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}" if self._server else None

    # -- faults --------------------------------------------------------------
    def set_fault(self, function, kind, count=None, **params):
        """Queue a fault for function ("*": any); see faults.py. Returns it as a dict."""
        return self.faults.add(function, kind, count, **params).as_dict()

    def clear_faults(self, function=None):
        self.faults.clear(function)

    # -- what happened -------------------------------------------------------
    @property
    def requests(self):
        """The recorded Invoke requests (InvokeRecord), oldest first."""
        with self._lock:
            return list(self._records)

    def invocations(self, function):
        """How many times function's handler has been run (any version)."""
        with self._lock:
            return self._invocations[function]

    def tenant_invocations(self, function):
        """A tenant-isolated function's handler runs by tenant: ``{tenant_id: runs}``."""
        with self._lock:
            return dict(self._tenant_invocations.get(function, {}))

    def executions(self, function):
        """How many durable executions function's calls have started (any version).
        A call that gets an existing execution back (same execution name and payload)
        starts none, and its handler does not run."""
        return self.durable.started(function)

    @property
    def durable_executions(self):
        """The durable executions started (durable.DurableExecution: arn, function,
        version, name, payload, invocation_type, request_id, tenant_id, started,
        status, ended, outcome), oldest first."""
        return self.durable.list()

    @property
    def assume_role_calls(self):
        """AssumeRole calls answered: dicts with role_arn, session_name,
        access_key_id (issued), source_access_key, expires, received."""
        with self._lock:
            return list(self._assumed)

    def reset(self):
        """Forget recorded requests, counts, durable executions (their names can be
        used again) and AssumeRole calls, and drop faults."""
        with self._lock:
            self._records.clear()
            self._invocations.clear()
            self._tenant_invocations.clear()
            self._assumed.clear()
        self.durable.clear()
        self.faults.clear()

    def wait_idle(self, timeout=5.0):
        """Wait until no Event invocation is running; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._running == 0, timeout)

    def summary(self):
        """Counts and request summaries, as GET /_emulator/requests returns them."""
        with self._lock:
            records = list(self._records)
            counts = {"total": len(records),
                      "by_function": dict(collections.Counter(r.function or r.path_name for r in records)),
                      "invocations": dict(self._invocations),
                      "tenant_invocations": {fn: dict(tenants) for fn, tenants in self._tenant_invocations.items()},
                      "assume_role": len(self._assumed)}
        counts.update(self.executions_summary())
        fields = ("request_id", "path_name", "function", "qualifier", "invocation_type", "log_type",
                  "received", "access_key", "role_arn", "fault", "status", "tenant_id", "durable_execution_name",
                  "durable_execution_arn")
        counts["requests"] = [
            {**{name: getattr(record, name) for name in fields}, "body_size": len(record.body)}
            for record in records
        ]
        return counts

    def executions_summary(self):
        """Durable executions started by function and one summary per execution, as
        GET /_emulator/executions returns them."""
        return {"executions": self.durable.started(),
                "durable_executions": [execution.summary() for execution in self.durable.list()]}

    def function_arn(self, name, qualifier=None):
        arn = f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"
        return f"{arn}:{qualifier}" if qualifier else arn

    # -- used by the server's threads ----------------------------------------
    def _record_request(self, record):
        with self._lock:
            self._records.append(record)

    def _count_invocation(self, function, tenant_id=None):
        with self._lock:
            self._invocations[function] += 1
            if tenant_id is not None:
                self._tenant_invocations[function][tenant_id] += 1

    def _record_assume_role(self, role_arn, session_name, access_key_id, source_access_key, expires):
        with self._lock:
            self._assumed.append({
                "role_arn": role_arn, "session_name": session_name, "access_key_id": access_key_id,
                "source_access_key": source_access_key, "expires": expires, "received": time.time(),
            })

    def _async_started(self):
        with self._lock:
            self._running += 1

    def _async_finished(self):
        with self._idle:
            self._running -= 1
            self._idle.notify_all()

    def _log(self, text):
        if not self.quiet:
            sys.stderr.write(text)
