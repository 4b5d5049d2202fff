"""invoke_many: one function, many payloads, up to max_concurrency calls at a time.

Rows come back in input order, one per payload, each with its own result or its
own error columns: one failed item does not hide the others. At most
max_concurrency requests are in flight and at most BUFFER_FACTOR times that many
finished results wait for an earlier one, so a batch of 10,000 payloads holds
little beyond its input. A cancel or statement_timeout stops the whole batch: queued items are
never sent and the ERROR is the usual one.
"""

import dataclasses
from concurrent.futures import FIRST_COMPLETED, wait

from plpy_lambda import arguments, errors, invoke
from plpy_lambda.errors import BadArgument
from plpy_lambda.interrupts import MAX_WORKERS, SLICE

BUFFER_FACTOR = 8  # finished rows kept waiting for an earlier one, per unit of concurrency


def check_concurrency(max_concurrency):
    if max_concurrency is None:
        raise BadArgument("max_concurrency", "must not be NULL", null=True)
    if not 1 <= max_concurrency <= MAX_WORKERS:
        raise BadArgument("max_concurrency", f"{max_concurrency} is outside 1..{MAX_WORKERS}")
    return max_concurrency


def run(plpy, backend, template, payloads, timeouts, operator, max_concurrency):
    """Yield one row per payload, in order. `template` holds the checked shared arguments."""
    items = enumerate(payloads, start=1)
    buffer_limit = BUFFER_FACTOR * max_concurrency
    in_flight = {}  # future -> (ordinality, call, region)
    done = {}  # ordinality -> row, possibly finished ahead of an earlier item
    next_out, exhausted = 1, False
    try:
        while True:
            while not exhausted and len(in_flight) < max_concurrency and len(done) < buffer_limit:
                item = next(items, None)
                if item is None:
                    exhausted = True
                    break
                ordinality, payload = item
                try:
                    call = dataclasses.replace(
                        template, payload=arguments.payload_bytes(payload, template.invocation_type)
                    )
                    request, region = invoke.prepare(backend, call, operator)
                except errors.LambdaError as error:
                    done[ordinality] = _error_row(ordinality, error)
                    continue
                future, _deadline = invoke.start(backend, request, timeouts, operator)
                in_flight[future] = (ordinality, call, region)
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1
            if not in_flight:
                if exhausted and not done:
                    return
                continue
            finished, _ = wait(list(in_flight), timeout=SLICE, return_when=FIRST_COMPLETED)
            if not finished:
                backend.waiter.check_interrupts(plpy)
            for future in finished:
                ordinality, call, region = in_flight.pop(future)
                done[ordinality] = _row(ordinality, call, region, future)
    finally:
        for future in in_flight:
            future.cancel()


def _row(ordinality, call, region, future):
    try:
        result = invoke.result_of(call, region, future.result())
    except errors.LambdaError as error:
        return _error_row(ordinality, error)
    return {"ordinality": ordinality, **result, **errors.NO_ERROR}


def _error_row(ordinality, error):
    return {"ordinality": ordinality, **errors.NO_RESULT, **errors.as_row(error)}
