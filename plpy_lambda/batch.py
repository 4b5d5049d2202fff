"""Many invocations at once: up to max_concurrency in flight in one loop, outcomes in input order.

Serves invoke_many (one function, many payloads) and commit-time delivery (one
claimed batch of queued invocations). Each outcome stands alone: one failed call
does not hide the others. At most max_concurrency requests are in flight and at
most BUFFER_FACTOR times that many finished outcomes wait for an earlier one, so a
batch of 10,000 calls holds little beyond its input.

The calls (exchange.Call) run on the backend's own thread: one poll over all their
sockets, and over the pipe that worker threads write to when a connection they
were making is ready. Each call has its own deadline (connect + request timeout
from its start), as in invoke: past it, its outcome is LM002 (LM001 when no
connection was made). A cancel or statement_timeout stops the whole batch:
interrupts are checked before each round of calls is started and at least every
SLICE however the batch flows, so calls not yet started are never sent, the
connections of those in flight are closed, and the ERROR is the usual one.
"""

import heapq
import time

from plpy_lambda import calllog, client, errors, exchange, invoke
from plpy_lambda.errors import BadArgument
from plpy_lambda.interrupts import MAX_WORKERS, SLICE

BUFFER_FACTOR = 8  # finished outcomes kept waiting for an earlier one, per unit of concurrency

_ON_SOCKET = (exchange.SENDING, exchange.READING)


def check_concurrency(max_concurrency):
    if max_concurrency is None:
        raise BadArgument("max_concurrency", "must not be NULL", null=True)
    if not 1 <= max_concurrency <= MAX_WORKERS:
        raise BadArgument("max_concurrency", f"{max_concurrency} is outside 1..{MAX_WORKERS}")
    return max_concurrency


class _Loop:
    """The calls in flight: which socket is whose, and when each must be looked at."""

    def __init__(self, workers):
        self.waiter = client.Waiter()
        self.workers = workers
        self.waiter.set(workers.pipe(), exchange._IN)
        self.by_fd = {}  # fd -> Call on that socket
        self.registered = {}  # Call -> the fd it is registered with
        self.connecting = set()  # Calls whose connection a worker is making
        self.timers = []  # heap of (wake_at, sequence, Call)
        self.pushed = {}  # Call -> the wake_at in timers
        self.sequence = 0

    def track(self, call):
        """Note call's state after anything happened to it; True when it is done."""
        old = self.registered.get(call, -1)
        new = call.fd if call.outcome is None and call.state in _ON_SOCKET else -1
        if old != new:
            if old >= 0 and self.by_fd.get(old) is call:
                del self.by_fd[old]
                self.waiter.forget(old)
            if new >= 0:
                self.by_fd[new] = call
                self.registered[call] = new
            else:
                self.registered.pop(call, None)
        if new >= 0:
            self.waiter.set(new, call.events or exchange._IN)
        if call.job is not None:
            self.connecting.add(call)
        else:
            self.connecting.discard(call)
        if call.outcome is not None:
            self.pushed.pop(call, None)
            return True
        if self.pushed.get(call) != call.wake_at:
            self.pushed[call] = call.wake_at
            self.sequence += 1
            heapq.heappush(self.timers, (call.wake_at, self.sequence, call))
        return False

    def forget(self, call):
        fd = self.registered.pop(call, -1)
        if fd >= 0 and self.by_fd.get(fd) is call:
            del self.by_fd[fd]
            self.waiter.forget(fd)
        self.connecting.discard(call)
        self.pushed.pop(call, None)

    def next_wake(self):
        timers = self.timers
        while timers and self.pushed.get(timers[0][2]) != timers[0][0]:
            heapq.heappop(timers)  # stale
        return timers[0][0] if timers else None

    def due(self, now):
        """The calls whose wake_at has come."""
        timers, out = self.timers, []
        while timers and timers[0][0] <= now:
            wake_at, _sequence, call = heapq.heappop(timers)
            if self.pushed.get(call) == wake_at:
                del self.pushed[call]
                out.append(call)
        return out


def run(plpy, backend, calls, timeouts, operator_settings, max_concurrency, durations=None,
        release=True):
    """Yield (key, outcome) in the order of `calls`.

    `calls` yields (key, Invocation) or (key, LambdaError) for a call that could not be
    built; an outcome is invoke's result dict or the LambdaError of that call. With
    `durations` (a dict), each call that was made has its seconds there under its key.
    With release, the connections and threads beyond their floors are given back when the
    batch ends (Transport.release_surplus); deliver() keeps them from batch to batch.
    """
    transport = backend.transport
    checker = backend.checker(plpy)
    limit = operator_settings.max_response_bytes
    items = enumerate(calls)
    buffer_limit = BUFFER_FACTOR * max_concurrency
    loop = _Loop(transport.workers)
    in_flight = set()
    done = {}  # position -> (key, outcome), possibly finished ahead of an earlier call
    next_out, exhausted = 0, False

    def finished(call):
        in_flight.discard(call)
        loop.forget(call)
        position, key, invocation, region = call.key
        outcome = _outcome(invocation, region, call)
        done[position] = (key, outcome)
        if operator_settings.logs_calls or durations is not None:
            # the call's deadline is its start + timeouts.total
            seconds = time.monotonic() - (call.deadline - timeouts.total)
            if durations is not None:
                durations[key] = seconds
            if operator_settings.logs_calls:
                calllog.note(plpy, operator_settings, invocation, outcome, seconds)

    transport.tidy()
    try:
        while True:
            now = time.monotonic()
            checker.due(now)  # however the batch flows
            if not exhausted and len(in_flight) < max_concurrency and len(done) < buffer_limit:
                checker.check()  # a cancel that has arrived stops the batch before these calls
                while len(in_flight) < max_concurrency and len(done) < buffer_limit:
                    item = next(items, None)
                    if item is None:
                        exhausted = True
                        break
                    position, (key, invocation) = item
                    if isinstance(invocation, errors.LambdaError):
                        done[position] = (key, invocation)
                        continue
                    try:
                        request, region = invoke.prepare(backend, invocation, operator_settings)
                    except errors.LambdaError as error:
                        done[position] = (key, error)
                        continue
                    deadline = time.monotonic() + timeouts.total
                    call = exchange.Call(transport, request, operator_settings.role_arn, timeouts, deadline,
                                       limit)
                    call.key = (position, key, invocation, region)
                    in_flight.add(call)
                    call.begin(time.monotonic())
                    if loop.track(call):
                        finished(call)
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1
            if not in_flight:
                if exhausted and not done:
                    return
                continue
            now = time.monotonic()
            wake = loop.next_wake()
            wait = checker.checked_at + SLICE - now
            if wake is not None:
                wait = min(wait, wake - now)
            ready = loop.waiter.wait(wait) if wait > 0 else loop.waiter.wait(0)
            now = time.monotonic()
            for fd, events in ready:
                if fd == loop.workers.wake_fd:
                    loop.workers.drain()
                    for call in [c for c in loop.connecting if c.job.done]:
                        call.on_connected(now)
                        if loop.track(call):
                            finished(call)
                    continue
                call = loop.by_fd.get(fd)
                if call is None or call.outcome is not None or call.state not in _ON_SOCKET:
                    continue
                call.on_ready(now, events)
                if loop.track(call):
                    finished(call)
            for call in loop.due(time.monotonic()):
                if call.outcome is None:
                    call.on_timer(time.monotonic())
                if loop.track(call):
                    finished(call)
    finally:
        for call in in_flight:
            call.abandon()
        if release:
            transport.release_surplus()


def _outcome(invocation, region, call):
    try:
        return invoke.result_of(invocation, region, call.result())
    except errors.LambdaError as error:
        return error
