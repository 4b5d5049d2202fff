"""Commit-time delivery: the checks of invoke_on_commit, and sending what was queued.

Queueing is SQL (aws_lambda.invoke_on_commit inserts into aws_lambda.deliveries in the
caller's transaction, so a rollback leaves nothing). This module checks the
arguments of a queued call exactly as invoke does, once per distinct set of
arguments, and delivers: it claims due rows (FOR UPDATE SKIP LOCKED, the claim
is not committed before sending, so a crash releases it and the rows are sent
again: at least once), sends them in parallel with the invoke_many machinery and
records each outcome with the retry policy below. The procedure
aws_lambda.deliver() commits after each batch. Rows that logical replication copied
here from another server (`replicated`) are that server's: never claimed, recorded or
removed here.

Retry policy (docs/delivery.md): an error that a later attempt may
cure (no connection, timeout, throttling, 5xx, lost connection, missing
credentials or configuration) is retried with exponential backoff and jitter until
aws_lambda.delivery_max_attempts attempts or aws_lambda.delivery_max_age, then
`dead`; one that cannot (not found, access denied, invalid request, too large) is
`dead` at once, and so is an answer that is not JSON the `response` column can hold
(answers.py; the function ran, and another attempt would run it again); a function error
is `failed` and never retried. A failed attempt records the function's log tail
(`log_result`) and a function error's payload, whole, in `response` when it is JSON.

Retention (prune): between batches, in a transaction of its own, deliver() removes expired
succeeded deliveries in chunks of PRUNE_CHUNK and sums up aws_lambda_internal.delivery_counts
(the counts of settled deliveries that statement triggers keep for delivery_status()).
"""

import time

from plpy_lambda import arguments, batch, errors, interrupts, invoke, settings
from plpy_lambda.errors import DEAD, FAILED, RETRY

BATCH_SIZE_MAX = 1000  # deliver(batch_size => ...): the most a crash can send twice
BACKOFF_BASE = 0.5  # seconds before the second attempt; doubles per attempt
BACKOFF_CAP = 300.0
PRUNE_CHUNK = 5000  # expired deliveries removed per transaction at most
SUCCEEDED = "succeeded"
COUNTED = (SUCCEEDED, FAILED, RETRY, DEAD)  # the columns of aws_lambda_internal._batch_counts
_LARGEST_DELIVERY_ID = 2**63 - 1  # aws_lambda.deliveries.id is a bigint


def check(state, function_name, region, invocation_type, log_type, context, qualifier,
          composite_region, from_composite, payload_size, tenant_id=None, tenant_setting=None,
          durable_execution_name=None):
    """The arguments of one invoke_on_commit, checked as invoke checks them, as stored; the
    tenant is the tenant_id argument, or else the session's aws_lambda.tenant_id."""
    cache = state.checked_for_queue
    key = (function_name, region, invocation_type, log_type, context, qualifier,
           composite_region, from_composite, tenant_id, tenant_setting, durable_execution_name)
    queued = cache.get(key)
    if queued is None:
        call = arguments.from_sql(function_name, "{}", region, invocation_type, log_type,
                                  context, qualifier, composite_region=composite_region,
                                  from_composite=from_composite)
        call = call.with_headers(arguments.tenant_id(tenant_id, tenant_setting),
                               arguments.durable_execution_name(durable_execution_name))
        if call.invocation_type == "RequestResponse":
            # the id must still fit Lambda's client-context limit
            arguments.client_context(
                arguments.with_delivery_id(call.context, _LARGEST_DELIVERY_ID))
        queued = state.remember(cache, key, call.queued())
    if payload_size is None:
        raise errors.BadArgument("payload", "must not be NULL; pass '{}' for an empty event",
                                 null=True)
    arguments.check_payload_size(payload_size, queued["invocation_type"])
    return queued


CLAIM = """
SELECT d.id, d.function_name, d.region, d.invocation_type, d.log_type, d.context::text AS context,
       d.qualifier, d.tenant_id, d.durable_execution_name, d.payload::text AS payload, d.attempts,
       extract(epoch FROM pg_catalog.now() - coalesce(d.redelivered_at, d.created_at))::float8 AS age
FROM aws_lambda.deliveries AS d
WHERE d.status = 'pending' AND NOT d.replicated
  AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= pg_catalog.now())
  AND (d.ordering_key IS NULL OR NOT EXISTS (
        SELECT FROM aws_lambda.deliveries AS e
        WHERE e.status = 'pending' AND NOT e.replicated AND e.ordering_key = d.ordering_key
          AND e.id < d.id))
ORDER BY d.id
LIMIT $1
FOR UPDATE OF d SKIP LOCKED
"""

RECORD = """
UPDATE aws_lambda.deliveries AS d
SET status = u.status,
    attempts = d.attempts + 1,
    next_attempt_at = CASE WHEN u.status = 'pending'
                           THEN pg_catalog.clock_timestamp() + u.delay * interval '1 second' END,
    delivered_at = CASE WHEN u.status IN ('succeeded', 'failed') THEN pg_catalog.clock_timestamp() END,
    status_code = u.status_code,
    response = u.response::json,
    executed_version = u.executed_version,
    log_result = u.log_result,
    last_error = coalesce(u.last_error, d.last_error),
    durable_execution_arn = coalesce(u.durable_execution_arn, d.durable_execution_arn),
    request_id = u.request_id
FROM unnest($1::bigint[], $2::text[], $3::float8[], $4::int[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::text[], $10::text[])
     AS u(id, status, delay, status_code, response, executed_version, log_result, last_error,
          durable_execution_arn, request_id)
WHERE d.id = u.id AND NOT d.replicated
"""
RECORD_TYPES = ["bigint[]", "text[]", "float8[]", "int[]", "text[]", "text[]", "text[]", "text[]",
                "text[]", "text[]"]

# One chunk of expired succeeded deliveries, oldest first, found role by role in
# deliveries_settled (a recursive CTE steps from one role to the next: one probe of the
# index each), removed; then the changes in delivery_counts summed up, one row per role
# and status. A succeeded row's delivered_at is never before its created_at.
PRUNE = """
WITH RECURSIVE roles(queued_by) AS (
    (SELECT d.queued_by FROM aws_lambda.deliveries AS d
     WHERE d.status = 'succeeded' AND NOT d.replicated ORDER BY d.queued_by LIMIT 1)
    UNION ALL
    SELECT (SELECT d.queued_by FROM aws_lambda.deliveries AS d
            WHERE d.status = 'succeeded' AND NOT d.replicated AND d.queued_by > r.queued_by
            ORDER BY d.queued_by LIMIT 1)
    FROM roles AS r WHERE r.queued_by IS NOT NULL
), expired AS (
    SELECT e.ctid FROM roles AS r
    CROSS JOIN LATERAL (
        SELECT d.ctid FROM aws_lambda.deliveries AS d
        WHERE d.status = 'succeeded' AND NOT d.replicated AND d.queued_by = r.queued_by
          AND d.created_at < pg_catalog.now() - $1 * interval '1 second'
          AND d.delivered_at < pg_catalog.now() - $1 * interval '1 second'
        ORDER BY d.created_at LIMIT $2) AS e
    LIMIT $2
), removed AS (
    DELETE FROM aws_lambda.deliveries AS d
    WHERE d.ctid = ANY (ARRAY(SELECT expired.ctid FROM expired))
      AND d.status = 'succeeded' AND NOT d.replicated
    RETURNING 1
)
SELECT count(*)::int AS pruned FROM removed
"""
SUM_COUNTS = """
WITH changes AS (
    DELETE FROM aws_lambda_internal.delivery_counts WHERE NOT replicated
    RETURNING queued_by, status, deliveries)
INSERT INTO aws_lambda_internal.delivery_counts (queued_by, status, deliveries)
SELECT queued_by, status, sum(deliveries) FROM changes
GROUP BY queued_by, status HAVING sum(deliveries) <> 0
"""
# One pruner at a time: another backend already at it is left to it.
PRUNE_LOCK = "SELECT pg_catalog.pg_try_advisory_xact_lock(-6176357101437650000) AS mine"


def deliver_batch(plpy, state, batch_size, max_concurrency, timeouts, operator_settings,
                  report=False):
    """Claim up to batch_size due deliveries, send them, record the outcomes.

    Returns the number of outcomes per status. Runs inside the caller's transaction;
    a cancel or crash before its commit leaves every claimed row pending. With report
    (aws_lambda.report_deliveries, which the relay sets), the outcomes go to the client in
    a NOTICE too (see report_batch).
    """
    if batch_size is None or not 1 <= batch_size <= BATCH_SIZE_MAX:
        raise errors.BadArgument("batch_size", f"{batch_size} is outside 1..{BATCH_SIZE_MAX}",
                                 null=batch_size is None)
    batch.check_concurrency(max_concurrency)
    plans = _plans(plpy, state)
    counts = dict.fromkeys(COUNTED, 0)
    rows = interrupts.execute(plpy, plans["claim"], [batch_size])
    claimed_at = time.monotonic()  # `age` is as of the transaction's start, just before
    durations = {} if report else None
    reported = []
    if rows:
        claimed_by_id = {row["id"]: row for row in rows}
        outcomes = batch.run(plpy, state, _calls(rows), timeouts, operator_settings,
                             max_concurrency, durations, release=False)
        record_columns = [[] for _ in RECORD_TYPES]  # RECORD's arrays, one value per delivery
        for delivery_id, outcome in outcomes:
            row = claimed_by_id[delivery_id]
            values = _recorded(row, outcome, operator_settings)
            counts[values[1]] += 1
            for column, value in zip(record_columns, values):
                column.append(value)
            if report:
                reported.append(_reported(row, values[1], durations.get(delivery_id),
                                          time.monotonic() - claimed_at))
        interrupts.execute(plpy, plans["record"], record_columns)
    else:  # nothing left to send: deliver() ends, or waits for more
        state.transport.release_surplus()
    if report:
        report_batch(plpy, state, plans, reported)
    return counts


REPORT = "aws_lambda: delivery report"
REPORT_OUTCOMES = {SUCCEEDED: "succeeded", FAILED: "failed", RETRY: "retried", DEAD: "dead"}
GAUGES = """
SELECT count(*)::bigint AS pending,
       coalesce(extract(epoch FROM pg_catalog.clock_timestamp() - min(d.created_at)), 0)::float8
           AS oldest_pending_seconds
FROM aws_lambda.deliveries AS d
WHERE d.status = 'pending' AND NOT d.replicated
"""
GAUGE_EVERY = 1.0  # seconds: the queue's gauges are read at most this often per backend


def _reported(row, status, seconds, since_claim):
    """One delivery in the report: function, outcome, the call's seconds (None when no call
    was made), and for a settled one the seconds from queueing to now. (Its queueing time
    as a number in the claim cost some 10% of deliver()'s rate against nginx: it is age +
    since_claim.)"""
    lag = None if status == RETRY else row["age"] + since_claim
    return [row["function_name"], REPORT_OUTCOMES[status], seconds, lag]


def report_batch(plpy, state, plans, deliveries):
    """The NOTICE aws_lambda.report_deliveries asks for: REPORT, with a DETAIL in JSON that
    has "deliveries" (see _reported) and, at most every GAUGE_EVERY seconds, "pending" and
    "oldest_pending_seconds" (every role's, read in deliveries_pending: the backlog only)."""
    import json

    report = {"deliveries": deliveries}
    now = time.monotonic()
    if state.gauged_at is None or now - state.gauged_at >= GAUGE_EVERY:
        state.gauged_at = now
        report.update(interrupts.execute(plpy, plans["gauges"], [])[0])
    if deliveries or "pending" in report:
        plpy.notice(REPORT, detail=json.dumps(report, separators=(",", ":")))


def _plans(plpy, state):
    if state.delivery_plans is None:
        state.delivery_plans = {
            "claim": plpy.prepare(CLAIM, ["int"]),
            "record": plpy.prepare(RECORD, RECORD_TYPES),
            "prune": plpy.prepare(PRUNE, ["float8", "int"]),
            "sum_counts": plpy.prepare(SUM_COUNTS),
            "prune_lock": plpy.prepare(PRUNE_LOCK),
            "gauges": plpy.prepare(GAUGES),
        }
    return state.delivery_plans


def prune(plpy, state, operator_settings, every):
    """Remove one chunk of the succeeded deliveries older than aws_lambda.delivery_retention
    and sum up the counts of settled ones, unless this backend did less than `every`
    seconds ago and that chunk was not full, or another backend is at it. Returns how many
    it removed."""
    now = time.monotonic()
    if state.pruned_at is not None and now - state.pruned_at < every and not state.prune_more:
        return 0
    plans = _plans(plpy, state)
    state.pruned_at, state.prune_more = now, False
    if not interrupts.execute(plpy, plans["prune_lock"], [])[0]["mine"]:
        return 0
    pruned = interrupts.execute(plpy, plans["prune"], [operator_settings.retention,
                                                       PRUNE_CHUNK])[0]["pruned"]
    interrupts.execute(plpy, plans["sum_counts"], [])
    state.prune_more = pruned >= PRUNE_CHUNK
    return pruned


def _calls(rows):
    """(id, Invocation or LambdaError) for each claimed row. Rows that share their arguments
    (all but RequestResponse, whose context carries the id) are checked once per batch."""
    # A row's arguments but its payload -> the Invocation checked for the first row with them.
    checked_calls = {}
    for row in rows:
        context = row["context"]
        row_arguments = (row["function_name"], row["region"], row["invocation_type"],
                         row["log_type"], context, row["qualifier"], row["tenant_id"],
                         row["durable_execution_name"])
        try:
            if row["invocation_type"] == "RequestResponse":
                context = arguments.with_delivery_id(context, row["id"])
                call = _invocation(row, context)
            else:
                first_call = checked_calls.get(row_arguments)
                if first_call is None:
                    first_call = checked_calls[row_arguments] = _invocation(row, context)
                call = first_call.with_payload(
                    arguments.payload_bytes(row["payload"], first_call.invocation_type))
        except errors.LambdaError as error:
            yield row["id"], error
            continue
        yield row["id"], call


def _invocation(row, context):
    """The claimed row as an Invocation, checked as invoke checks its arguments, for the
    tenant it was queued for (whatever the deliverer's session says)."""
    return arguments.from_sql(row["function_name"], row["payload"], row["region"],
                              row["invocation_type"], row["log_type"], context, row["qualifier"]
                              ).with_headers(arguments.tenant_id(row["tenant_id"]),
                                           arguments.durable_execution_name(
                                               row["durable_execution_name"]))


def _recorded(row, outcome, operator_settings):
    """The values RECORD writes for one delivery: id, status, delay, status_code,
    response, executed_version, log_result, last_error, durable_execution_arn, request_id."""
    if not isinstance(outcome, errors.LambdaError):
        return (row["id"], SUCCEEDED, None, outcome["status_code"], outcome["payload"],
                outcome["executed_version"], outcome["log_result"], None,
                outcome["durable_execution_arn"], outcome["request_id"])
    attempt = row["attempts"] + 1
    verdict = errors.delivery_verdict(outcome)
    delay = None
    if verdict == RETRY:
        if attempt >= operator_settings.max_attempts:
            verdict = DEAD
            next_step = (f"Gave up after {attempt} attempts "
                         f"({settings.MAX_ATTEMPTS} = {operator_settings.max_attempts}).")
        elif row["age"] >= operator_settings.max_age:
            verdict = DEAD
            next_step = (f"Gave up: queued {round(row['age'])} s ago, past "
                         f"{settings.MAX_AGE} ({round(operator_settings.max_age)} s).")
        else:
            delay = backoff(attempt)
            next_step = (f"Attempt {attempt} of at most {operator_settings.max_attempts} "
                         f"failed; the next is due in {delay:.1f} s.")
    elif isinstance(outcome, errors.InvalidResponse):
        next_step = "Not retried: the function ran, and its answer is unusable (see DETAIL)."
    elif verdict == DEAD:
        next_step = "Not retried: a later attempt cannot succeed."
    else:
        next_step = "The function ran and raised an error; not retried."
    if verdict != RETRY:
        next_step += f" SELECT aws_lambda.redeliver({row['id']}) sends it again."
    # A function error's payload, whole (last_error has it cut), when it is JSON.
    response = invoke.error_payload(outcome, "json")
    return (row["id"], verdict, delay, outcome.status_code, response, None, outcome.log_result,
            errors.delivery_error_text(outcome, next_step), None, outcome.request_id)


def backoff(attempt):
    """Seconds before the attempt after `attempt`: doubling from BACKOFF_BASE up to
    BACKOFF_CAP, with jitter (a random half to whole of it) so retries spread out."""
    import random  # only when a delivery failed: not on a backend's first call

    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
    return delay * random.uniform(0.5, 1.0)

