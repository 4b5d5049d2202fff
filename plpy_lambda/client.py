"""The HTTP call to the Lambda Invoke API: signing, connection reuse, retries.

Runs in a worker thread (see interrupts.py) and never touches plpy.
Connections are kept alive per endpoint across calls of the backend.

Retry policy: a request is sent again only when it cannot have reached the
service: the connection could not be made, or the service answered 429
(throttled, the function did not run). Retries back off exponentially with
jitter and never go past the call's deadline. A read timeout, a connection lost
after sending, or any other answer is final, so a function is never run twice
because of us.
"""

import random
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote

from plpy_lambda import errors

API_VERSION = "2015-03-31"
MAX_ATTEMPTS = 5
BACKOFF_BASE = 0.05  # seconds
BACKOFF_CAP = 1.0
POOL_SIZE = 8


@dataclass
class Response:
    status: int
    headers: dict  # lower-case names
    body: bytes


@dataclass(frozen=True)
class Request:
    endpoint: str  # scheme://host[:port]
    region: str
    function: str  # FunctionName as sent (name, partial ARN or ARN)
    qualifier: str | None
    headers: dict
    body: bytes

    @property
    def target(self):
        """The request target: path and query."""
        target = f"/{API_VERSION}/functions/{quote(self.function, safe='')}/invocations"
        if self.qualifier:
            target += "?Qualifier=" + quote(self.qualifier, safe="")
        return target


class Transport:
    """Connection pools per endpoint; one per backend."""

    def __init__(self, credentials):
        self._credentials = credentials
        self._pools = {}
        self._lock = threading.Lock()

    def _pool(self, endpoint):
        with self._lock:
            pool = self._pools.get(endpoint)
            if pool is None:
                import urllib3

                pool = urllib3.connection_from_url(
                    endpoint, maxsize=POOL_SIZE, block=False, retries=False
                )
                self._pools[endpoint] = pool
            return pool

    def send(self, request, role_arn, timeouts, deadline):
        """Sign and send, retrying only where it is safe. Returns a Response."""
        import urllib3
        from urllib3.exceptions import (
            ConnectTimeoutError,
            NewConnectionError,
            ProtocolError,
            ReadTimeoutError,
        )

        credentials = self._credentials.get(role_arn, request.region)
        pool = self._pool(request.endpoint)
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise errors.request_timed_out(request.endpoint, timeouts.request, sent=attempt > 1)
            headers = _signed_headers(request, credentials)
            try:
                answer = pool.urlopen(
                    "POST",
                    request.target,
                    body=request.body,
                    headers=headers,
                    timeout=urllib3.Timeout(
                        connect=min(timeouts.connect, remaining), read=remaining
                    ),
                    retries=False,
                    redirect=False,
                    assert_same_host=False,
                    preload_content=True,
                )
            except (NewConnectionError, ConnectTimeoutError) as error:
                if attempt < MAX_ATTEMPTS and _backoff(attempt, deadline):
                    continue
                raise errors.unable_to_connect(request.endpoint, _cause(error)) from None
            except ReadTimeoutError:
                raise errors.request_timed_out(request.endpoint, timeouts.request, sent=True) from None
            except ProtocolError as error:
                raise errors.connection_lost(request.endpoint, _cause(error)) from None
            except urllib3.exceptions.HTTPError as error:
                raise errors.unable_to_connect(request.endpoint, _cause(error)) from None
            response = Response(
                status=answer.status,
                headers={k.lower(): v for k, v in answer.headers.items()},
                body=answer.data,
            )
            if response.status == 429 and attempt < MAX_ATTEMPTS:
                if _backoff(attempt, deadline, response.headers.get("retry-after")):
                    continue
            return response


def _signed_headers(request, credentials):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    aws_request = AWSRequest(
        method="POST", url=request.endpoint + request.target, data=request.body, headers=dict(request.headers)
    )
    SigV4Auth(credentials, "lambda", request.region).add_auth(aws_request)
    return dict(aws_request.headers.items())


def _backoff(attempt, deadline, retry_after=None):
    """Sleep before the next attempt; False when that would pass the deadline."""
    delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))
    if retry_after:
        try:
            delay = max(delay, min(float(retry_after), BACKOFF_CAP))
        except ValueError:
            pass
    if time.monotonic() + delay >= deadline:
        return False
    time.sleep(delay)
    return True


def _cause(error):
    """A short, secret-free description of a transport error."""
    reason = getattr(error, "reason", None) or error
    text = str(reason)
    # urllib3 prefixes messages with the connection object's repr; keep the tail.
    if ": " in text and text.startswith("<"):
        text = text.split(": ", 1)[1]
    return text[:300]
