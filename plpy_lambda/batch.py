"""Many invocations at once: up to max_concurrency calls in flight, outcomes in input order.

Serves invoke_many (one function, many payloads) and commit-time delivery (one
claimed batch of queued invocations). Each outcome stands alone: one failed call
does not hide the others. At most max_concurrency requests are in flight and at
most BUFFER_FACTOR times that many finished outcomes wait for an earlier one, so a
batch of 10,000 calls holds little beyond its input.

Each call has its own deadline (connect + request timeout from its start), as in
invoke: past it (and interrupts.GRACE), the call is abandoned and its outcome is
LM002. A cancel or statement_timeout stops the whole batch: interrupts are checked
before each call is started and at least every SLICE however the batch flows, so
calls not yet started are never sent and the ERROR is the usual one.
"""

import heapq
import time
from concurrent.futures import FIRST_COMPLETED, wait

from plpy_lambda import errors, invoke
from plpy_lambda.errors import BadArgument
from plpy_lambda.interrupts import GRACE, MAX_WORKERS, SLICE

BUFFER_FACTOR = 8  # finished outcomes kept waiting for an earlier one, per unit of concurrency


def check_concurrency(max_concurrency):
    if max_concurrency is None:
        raise BadArgument("max_concurrency", "must not be NULL", null=True)
    if not 1 <= max_concurrency <= MAX_WORKERS:
        raise BadArgument("max_concurrency", f"{max_concurrency} is outside 1..{MAX_WORKERS}")
    return max_concurrency


def run(plpy, backend, calls, timeouts, operator, max_concurrency):
    """Yield (key, outcome) in the order of `calls`.

    `calls` yields (key, Invocation) or (key, LambdaError) for a call that could not be
    built; an outcome is invoke's result dict or the LambdaError of that call.
    """
    items = enumerate(calls)
    buffer_limit = BUFFER_FACTOR * max_concurrency
    in_flight = {}  # future -> (position, key, call, region, endpoint)
    deadlines = []  # heap of (deadline, sequence, future) of the calls in flight
    done = {}  # position -> (key, outcome), possibly finished ahead of an earlier call
    next_out, exhausted = 0, False
    checked_at = time.monotonic()

    def check(plpy):
        nonlocal checked_at
        backend.waiter.check_interrupts(plpy)
        checked_at = time.monotonic()

    backend.transport.tidy()
    backend.waiter.release_idle()
    try:
        while True:
            if time.monotonic() - checked_at >= SLICE:  # however the batch flows
                check(plpy)
            while not exhausted and len(in_flight) < max_concurrency and len(done) < buffer_limit:
                item = next(items, None)
                if item is None:
                    exhausted = True
                    break
                position, (key, call) = item
                if isinstance(call, errors.LambdaError):
                    done[position] = (key, call)
                    continue
                try:
                    request, region = invoke.prepare(backend, call, operator)
                except errors.LambdaError as error:
                    done[position] = (key, error)
                    continue
                check(plpy)  # a cancel that has arrived stops the batch before this call
                future, deadline = invoke.start(backend, request, timeouts, operator)
                in_flight[future] = (position, key, call, region, request.endpoint)
                heapq.heappush(deadlines, (deadline, position, future))
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1
            if not in_flight:
                if exhausted and not done:
                    return
                continue
            while deadlines and deadlines[0][2] not in in_flight:
                heapq.heappop(deadlines)  # finished
            left = deadlines[0][0] + GRACE - time.monotonic()
            finished, _ = wait(list(in_flight), timeout=min(SLICE, max(left, 0)),
                               return_when=FIRST_COMPLETED)
            check(plpy)
            for future in finished:
                position, key, call, region, _endpoint = in_flight.pop(future)
                done[position] = (key, _outcome(call, region, future))
            now = time.monotonic()
            while deadlines and deadlines[0][0] + GRACE <= now:
                _deadline, _position, future = heapq.heappop(deadlines)
                if future not in in_flight:
                    continue
                position, key, call, region, endpoint = in_flight.pop(future)
                if future.done():
                    done[position] = (key, _outcome(call, region, future))
                    continue
                future.cancel()  # abandons it: its socket is shut down
                done[position] = (key, errors.request_timed_out(endpoint, timeouts.request,
                                                                sent=future.call.sent))
    finally:
        for future in in_flight:
            future.cancel()


def _outcome(call, region, future):
    try:
        return invoke.result_of(call, region, future.result())
    except errors.LambdaError as error:
        return error
