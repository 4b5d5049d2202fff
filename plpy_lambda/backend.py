"""What one PostgreSQL backend keeps between calls, stored in PL/Python's GD.

Credentials, connection pools, worker threads and the operator's settings are
built on first use and reused by every later call of the same connection.
"""

from plpy_lambda.client import Transport
from plpy_lambda.credentials import CredentialSource
from plpy_lambda.interrupts import Waiter

GD_KEY = "plpy_lambda.backend"


class Backend:
    def __init__(self):
        self.credentials = CredentialSource()
        self.transport = Transport(self.credentials)
        self.waiter = Waiter()
        self.settings_cache = {}
        self.checked_for_queue = {}  # invoke_on_commit's argument sets already checked
        self.delivery_plans = None  # prepared statements of commit-time delivery
        self.enqueue_plan = None  # how aws_lambda.events_after_commit queues an Event
        self.pruned_at = None  # when this backend last removed expired deliveries


def of(GD):
    backend = GD.get(GD_KEY)
    if backend is None:
        backend = GD[GD_KEY] = Backend()
    return backend
