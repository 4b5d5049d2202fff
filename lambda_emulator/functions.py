"""The function directory: which functions, versions and aliases exist, and
loading their handlers.

Layout (files are looked up on every call, so adding or editing one needs no
restart):

- ``NAME.py`` defining ``handler(event, context)`` is function NAME, ``$LATEST``
  (NAME: letters, digits, ``-`` and ``_``, at most 64 characters);
- ``NAME@N.py`` is its published version N (N: digits);
- ``NAME.json`` (optional): ``{"aliases": {"ALIAS": "N" or "$LATEST"},
  "handler": "handler", "memory_size": 128, "timeout": 3}``, and for today's
  Lambda features (see lambda_api.py for what Invoke does with them):

  - ``"tenancy": {"tenant_isolation_mode": "PER_TENANT"}`` (Lambda's
    ``TenancyConfig.TenantIsolationMode``): tenant isolation. Every call must name
    a tenant (``X-Amz-Tenant-Id``), and each tenant gets execution environments of
    its own: a separate module instance per (function version, tenant), so module
    state one tenant's calls keep is never seen by another's;
  - ``"durable": true`` (or an object, like Lambda's ``DurableConfig``, whose
    settings are accepted and ignored): a durable function; each call starts a
    durable execution, and ``X-Amz-Durable-Execution-Name`` makes starts idempotent;
  - ``"invocation_types": ["Event"]`` (RequestResponse, Event or both): the
    invocation types the function supports; a call of the other is answered 400
    ModeNotSupportedException (DryRun is always accepted);
  - ``"invoke_error": "RecursiveInvocationException"`` (or ``{"type": ...,
    "message": ..., "status": ...}``): every call is answered with that Invoke
    error (its status from the API model, see invoke_errors.py) before the handler
    would run.

The qualifier ``$LATEST.PUBLISHED`` resolves to the highest published version N
(NoPublishedVersion when there is none).

Each FunctionStore (one per Emulator) compiles handler files into modules of its
own, with names unique to it, so two emulators never share module state. A
module is kept (warm, like a Lambda execution environment) until its file
changes; a file that failed to load is tried again on the next call. As on
Lambda, handlers share their process; but the functions directory is not put on
sys.path, so helper modules beside the handlers import only if it is on
PYTHONPATH.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
import threading
import time
import traceback
import types
from dataclasses import dataclass

from . import invoke_errors

NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
VERSION_RE = re.compile(r"[0-9]+")
_store_numbers = itertools.count(1)


@dataclass(frozen=True)
class Target:
    """One resolved function version: what a call will run."""

    name: str
    version: str  # "$LATEST" or a version number
    path: str
    handler_name: str
    memory_size: int
    timeout: float
    tenant_isolation_mode: str | None = None  # "PER_TENANT": calls need a tenant id
    durable: bool = False
    invocation_types: tuple | None = None  # None: all of them
    invoke_error: invoke_errors.InvokeError | None = None  # answered instead of running


TENANT_ISOLATION_MODES = ("PER_TENANT",)
LATEST_PUBLISHED = "$LATEST.PUBLISHED"


class NoPublishedVersion(Exception):
    """``$LATEST.PUBLISHED`` was asked for a function that has no published version."""


class InitError(Exception):
    """The handler could not be loaded; carries the Python runtime's error type."""

    def __init__(self, error_type, message, stack_trace):
        super().__init__(message)
        self.error_type = error_type
        self.stack_trace = stack_trace


def stack_trace(error):
    """The runtime's stackTrace list: the frames below the caller's."""
    tb = error.__traceback__.tb_next if error.__traceback__ else None
    return traceback.format_list(traceback.extract_tb(tb))


class FunctionStore:
    def __init__(self, directory):
        self.directory = os.path.abspath(directory)
        if not os.path.isdir(self.directory):
            raise NotADirectoryError(f"functions directory not found: {directory}")
        self._prefix = f"_plpy_lambda_fn{next(_store_numbers)}_"
        self._generation = itertools.count(1)
        self._lock = threading.Lock()
        self._handlers = {}  # (path, handler name, tenant id) -> (mtime_ns, module name, handler)
        self._configs = {}  # path -> (mtime_ns, dict)

    def names(self):
        """The functions in the directory, sorted."""
        return sorted(
            entry[:-3] for entry in os.listdir(self.directory)
            if entry.endswith(".py") and NAME_RE.fullmatch(entry[:-3])
        )

    def config(self, name):
        """NAME.json as a dict; {} when there is none."""
        path = os.path.join(self.directory, name + ".json")
        try:
            mtime = os.stat(path).st_mtime_ns
        except FileNotFoundError:
            return {}
        cached = self._configs.get(path)
        if cached and cached[0] == mtime:
            return cached[1]
        try:
            with open(path, encoding="utf-8") as file:
                config = json.load(file)
        except ValueError as error:
            raise ValueError(f"{name}.json is not valid JSON: {error}") from None
        if not isinstance(config, dict):
            raise ValueError(f"{name}.json must hold a JSON object")
        self._configs[path] = (mtime, config)
        return config

    def resolve(self, name, qualifier=None):
        """The Target for NAME and an optional version or alias; None if there is none."""
        if not NAME_RE.fullmatch(name):
            return None
        latest = os.path.join(self.directory, name + ".py")
        if not os.path.isfile(latest):
            return None
        config = self.config(name)
        version = qualifier or "$LATEST"
        if version == LATEST_PUBLISHED:
            published = self.published_versions(name)
            if not published:
                raise NoPublishedVersion(name)
            version = str(published[-1])
        elif version != "$LATEST" and not VERSION_RE.fullmatch(version):
            version = config.get("aliases", {}).get(version)
            if version is None:
                return None
            version = str(version)
        path = latest if version == "$LATEST" else os.path.join(self.directory, f"{name}@{version}.py")
        if not os.path.isfile(path):
            return None
        return Target(
            name, version, path,
            config.get("handler", "handler"),
            int(config.get("memory_size", 128)),
            float(config.get("timeout", 3)),
            **_features(name, config),
        )

    def published_versions(self, name):
        """The published version numbers of NAME (its NAME@N.py files), ascending."""
        prefix = name + "@"
        return sorted(
            int(entry[len(prefix):-3]) for entry in os.listdir(self.directory)
            if entry.startswith(prefix) and entry.endswith(".py") and VERSION_RE.fullmatch(entry[len(prefix):-3])
        )

    def load(self, target, tenant_id=None):
        """(handler, init duration in ms); the duration is None when already loaded.

        ``tenant_id``: the tenant's own module instance (its own execution
        environment), loaded on its first call. Raises InitError like the Python
        runtime would report it.
        """
        key = (target.path, target.handler_name, tenant_id)
        mtime = os.stat(target.path).st_mtime_ns
        cached = self._handlers.get(key)
        if cached and cached[0] == mtime:
            return cached[2], None
        with self._lock:
            cached = self._handlers.get(key)
            if cached and cached[0] == mtime:
                return cached[2], None
            started = time.perf_counter()
            module = self._import(target.path)
            handler = getattr(module, target.handler_name, None)
            if not callable(handler):
                sys.modules.pop(module.__name__, None)
                label = os.path.basename(target.path)[:-3]
                raise InitError(
                    "Runtime.HandlerNotFound",
                    f"Handler '{target.handler_name}' missing on module '{label}'", [])
            if cached:
                sys.modules.pop(cached[1], None)
            self._handlers[key] = (mtime, module.__name__, handler)
            return handler, (time.perf_counter() - started) * 1000

    def unload(self):
        """Forget the loaded modules (and take them out of sys.modules)."""
        with self._lock:
            for _, module_name, _ in self._handlers.values():
                sys.modules.pop(module_name, None)
            self._handlers.clear()

    def _import(self, path):
        label = os.path.basename(path)[:-3]
        module_name = self._prefix + str(next(self._generation)) + "_" + re.sub(r"\W", "_", label)
        module = types.ModuleType(module_name)
        module.__file__ = path
        sys.modules[module_name] = module  # dataclasses and pickle look modules up there
        try:
            with open(path, "rb") as file:
                code = compile(file.read(), path, "exec")  # no __pycache__ next to the functions
            exec(code, module.__dict__)
        except SyntaxError as error:
            sys.modules.pop(module_name, None)
            raise InitError(
                "Runtime.UserCodeSyntaxError",
                f"Syntax error in module '{label}': {error}",
                [f'  File "{error.filename}" Line {error.lineno}\n    {error.text}'],
            ) from None
        except ImportError as error:
            sys.modules.pop(module_name, None)
            raise InitError(
                "Runtime.ImportModuleError", f"Unable to import module '{label}': {error}", []
            ) from None
        except Exception as error:
            sys.modules.pop(module_name, None)
            raise InitError(type(error).__name__, str(error), stack_trace(error)) from None
        return module


def _features(name, config):
    """Target's fields for NAME.json's tenancy, durable, invocation_types and invoke_error."""
    features = {}
    tenancy = config.get("tenancy")
    if tenancy is not None:
        mode = tenancy.get("tenant_isolation_mode") if isinstance(tenancy, dict) else None
        if mode not in TENANT_ISOLATION_MODES:
            raise ValueError(f'{name}.json: tenancy must be {{"tenant_isolation_mode": "PER_TENANT"}}')
        features["tenant_isolation_mode"] = mode
    durable = config.get("durable", False)
    if not isinstance(durable, (bool, dict)):
        raise ValueError(f"{name}.json: durable must be true, false or an object")
    features["durable"] = durable is True or isinstance(durable, dict)
    types = config.get("invocation_types")
    if types is not None:
        if not isinstance(types, list) or not all(t in ("RequestResponse", "Event") for t in types):
            raise ValueError(f"{name}.json: invocation_types must list RequestResponse, Event or both")
        features["invocation_types"] = tuple(types)
    if config.get("invoke_error") is not None:
        features["invoke_error"] = invoke_errors.from_config(config["invoke_error"], name)
    return features
