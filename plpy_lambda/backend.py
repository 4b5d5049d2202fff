"""What one PostgreSQL backend keeps between calls, stored in PL/Python's GD.

Credentials, connection pools, worker threads, the interrupt check, checked
arguments and the operator's settings are built on first use and reused by every
later call of the same connection.
"""

from plpy_lambda.client import Transport
from plpy_lambda.credentials import CredentialSource
from plpy_lambda.interrupts import Checker, Workers

GD_KEY = "plpy_lambda.backend"
_KEPT = 256  # entries of each per-backend cache of checked arguments


class Backend:
    def __init__(self):
        self.credentials = CredentialSource()
        self.workers = Workers()
        self.transport = Transport(self.credentials, self.workers)
        self.settings_cache = {}
        self.checked_calls = {}  # invoke's arguments (all but the payload) -> Invocation
        self.requests = {}  # a checked call's endpoint, region, FunctionName and headers
        self.timeouts = {}  # the timeout settings' texts -> settings.Timeouts
        self.checked_for_queue = {}  # invoke_on_commit's argument sets already checked
        self.delivery_plans = None  # prepared statements of commit-time delivery
        self.enqueue_plan = None  # how aws_lambda.events_after_commit queues an Event
        self.pruned_at = None  # when this backend last removed expired deliveries
        self.prune_more = False  # whether that removal left more expired ones behind
        self.gauged_at = None  # when this backend last reported the queue's gauges
        self.failure = None  # error columns of the last invocation that failed (sql.failure)
        self._checker = None

    def checker(self, plpy):
        """The interrupt check (interrupts.Checker), run through plpy."""
        checker = self._checker
        if checker is None or checker.plpy is not plpy:
            checker = self._checker = Checker(plpy)
        return checker

    def remember(self, cache, key, value):
        """cache[key] = value, in a cache of at most _KEPT entries."""
        if len(cache) >= _KEPT:
            cache.clear()
        cache[key] = value
        return value


def state(GD):
    """This backend's Backend, made on its first call."""
    backend = GD.get(GD_KEY)
    if backend is None:
        backend = GD[GD_KEY] = Backend()
    return backend
