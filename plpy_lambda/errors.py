"""Every failure the extension reports, and its SQLSTATE, message, DETAIL and HINT.

Code raises these where it detects a problem; `as_row` turns one into the error
columns that the SQL layer raises as a PostgreSQL ERROR. This is the only place
where a failure is given its SQLSTATE and wording. No message built here ever
contains a credential: the values that reach these classes are names, URLs,
sizes, the service's own error text and, with log_type => 'Tail', the last lines of
the function's own log (which the caller asked for). A function's error payload is
cut to DETAIL_CHARS characters; NUL, which text cannot hold, reads as U+FFFD.
"""

# SQLSTATEs, documented in docs/errors.md's error table.
NULL_VALUE_NOT_ALLOWED = "22004"
INVALID_PARAMETER_VALUE = "22023"
PROGRAM_LIMIT_EXCEEDED = "54000"
QUERY_CANCELED = "57014"
UNABLE_TO_CONNECT = "LM001"
REQUEST_TIMED_OUT = "LM002"
THROTTLED = "LM003"
REJECTED_BY_SERVICE = "LM004"
SERVICE_FAILED = "LM005"
NO_CREDENTIALS = "LM006"
FUNCTION_ERROR = "LM010"
BAD_CONFIGURATION = "LM020"
NOT_INSTALLED = "LM090"

INVOKE_API_FAILED = "invoke API failed"

# A function's error payload is cut to this many characters in DETAIL (so in the server
# log and in last_error); the whole of it stays in invoke_many's payload column and in
# aws_lambda.deliveries.response. docs/errors.md: "Errors".
DETAIL_CHARS = 4000


class LambdaError(Exception):
    """Base: carries what PostgreSQL will print.

    `retryable`: a later attempt may succeed (commit-time delivery retries it).
    `may_have_run`: the request was sent, so the function may have run.
    """

    sqlstate = "LM000"
    retryable = False
    may_have_run = False
    status_code = None  # the HTTP status of the answer, when there was one
    error_type = None  # the service's error type (x-amzn-ErrorType), when it answered one
    request_id = None  # the service's x-amzn-RequestId, when it answered (AWS support asks for it)
    log_result = None  # X-Amz-Log-Result of the answer (base64), when the function ran
    log_tail = None  # its last lines, decoded: shown after the HINT
    answer = None  # the function's answer (answers.Answer), when it is part of the error

    def __init__(self, message, detail=None, hint=None):
        super().__init__(message)
        self.message = _printable(message)
        self.detail = _printable(detail)
        self.hint = _printable(hint)


def _printable(text):
    """PostgreSQL's text cannot hold NUL: a NUL from the service reads as U+FFFD."""
    return text.replace("\x00", "\ufffd") if text and "\x00" in text else text


def cut(text, size=None, limit=DETAIL_CHARS):
    """text, or its first `limit` characters and a note of its whole size in bytes."""
    if len(text) <= limit:
        return text
    if size is None:
        size = len(text.encode("utf-8", "replace"))
    return f"{text[:limit]}... [cut: {size:,} bytes in all]"


class BadArgument(LambdaError):
    """An argument of invoke/invoke_many is unusable. The message names it."""

    def __init__(self, argument, problem, hint=None, null=False):
        super().__init__(f"invalid value for argument {argument}: {problem}", hint=hint)
        self.argument = argument
        self.sqlstate = NULL_VALUE_NOT_ALLOWED if null else INVALID_PARAMETER_VALUE


class TooLarge(LambdaError):
    """A payload or client context over Lambda's limit; refused before sending."""

    sqlstate = PROGRAM_LIMIT_EXCEEDED

    def __init__(self, argument, size, limit, what):
        super().__init__(
            f"{argument} is too large: {size} bytes",
            detail=f"Lambda accepts at most {limit} bytes for {what}.",
        )
        self.argument = argument


class BadSetting(LambdaError):
    """A setting (GUC) holds a value we refuse. The message names the setting."""

    sqlstate = INVALID_PARAMETER_VALUE

    def __init__(self, setting, problem, hint=None):
        super().__init__(f'invalid value for setting "{setting}": {problem}', hint=hint)
        self.setting = setting


class BadConfiguration(LambdaError):
    """The operator's configuration (server files, environment) cannot be used."""

    sqlstate = BAD_CONFIGURATION
    retryable = True  # the operator can fix it; a queued delivery waits for that


class NotInstalled(LambdaError):
    """The server's Python cannot import something the extension needs."""

    sqlstate = NOT_INSTALLED

    def __init__(self, module):
        super().__init__(
            f'aws_lambda: the server\'s Python cannot import "{module}"',
            detail="plpy_lambda and its dependencies (botocore) are installed by "
            "the extension's \"make install\".",
            hint='Run "make install" as root in the aws_lambda source tree '
            "(or pgxn install aws_lambda), then reconnect.",
        )


class ApiFailed(LambdaError):
    """Anything between us and the service: RDS's "invoke API failed"."""

    def __init__(self, sqlstate, reason, hint=None, retryable=False, may_have_run=False):
        super().__init__(
            INVOKE_API_FAILED, detail=f"AWS Lambda client returned '{reason}'.", hint=hint
        )
        self.sqlstate = sqlstate
        self.reason = reason
        self.retryable = retryable
        self.may_have_run = may_have_run


def unable_to_connect(endpoint, cause):
    return ApiFailed(
        UNABLE_TO_CONNECT,
        "Unable to connect to endpoint",
        hint=f"Endpoint {endpoint}: {cause}. Check aws_lambda.endpoint_override, "
        "AWS_ENDPOINT_URL_LAMBDA, AWS_ENDPOINT_URL or the shared config's endpoint_url, "
        "proxies, DNS and outbound network access from the database server.",
        retryable=True,
    )


def request_timed_out(endpoint, seconds, sent):
    hint = (
        f"No complete answer from {endpoint} within aws_lambda.request_timeout_ms "
        f"({round(seconds * 1000)} ms)."
    )
    return ApiFailed(REQUEST_TIMED_OUT, "Request timeout", hint=hint, retryable=True,
                     may_have_run=sent)


def connection_lost(endpoint, cause):
    return ApiFailed(
        SERVICE_FAILED,
        "Connection lost before the response was complete",
        hint=f"Endpoint {endpoint}: {cause}.",
        retryable=True,
        may_have_run=True,
    )


def service_error(status, error_type, message, durable_execution_name=None, request_id=None):
    """An HTTP error answer from the service, classed by its status."""
    error = _service_error(status, error_type, message, durable_execution_name)
    error.status_code = status
    error.error_type = error_type
    error.request_id = request_id
    return error


def _service_error(status, error_type, message, durable_execution_name):
    reason = f"{error_type}: {message}" if message else error_type
    if status == 429:
        return ApiFailed(
            THROTTLED,
            reason,
            hint="Lambda throttled the invocation (HTTP 429) and retries within "
            "aws_lambda.request_timeout_ms did not get through. Lower the call rate or "
            "raise the function's concurrency.",
            retryable=True,
        )
    if status >= 500:
        return ApiFailed(SERVICE_FAILED, reason, hint=f"The service answered HTTP {status}.",
                         retryable=True)
    hint = f"The service answered HTTP {status}."
    if status in (401, 403):
        hint += (
            " Check the server's AWS credentials, aws_lambda.role_arn and the IAM policy "
            "(lambda:InvokeFunction on this function)."
        )
    elif status == 404:
        hint += " Check the function name, region, qualifier and aws_lambda.endpoint_override."
    elif error_type == DURABLE_NAME_TAKEN:
        hint += (f' The durable execution "{durable_execution_name}" was started before with '
                 "another payload or version, and a name starts one execution only: the function "
                 "did not run again. Use another durable_execution_name for another execution.")
    elif error_type in _REFUSALS:
        hint += " " + _REFUSALS[error_type]
    return ApiFailed(REJECTED_BY_SERVICE, reason, hint=hint)


# 409: a durable execution of that name exists, for another payload (commit-time delivery:
# `failed`, never retried; see delivery_verdict).
DURABLE_NAME_TAKEN = "DurableExecutionAlreadyStartedException"

# What to do about the refusals of today's Invoke (botocore's model) that say more than
# their status; DETAIL has the service's own message.
_REFUSALS = {
    "NoPublishedVersionException":
        "The function has no published version for $LATEST.PUBLISHED: publish one, or call "
        "$LATEST or a version.",
    "RecursiveInvocationException":
        "Lambda's recursive loop detection stopped the invocation: the function is invoked in a "
        "loop with other AWS resources. Break the loop, or change the function's recursive loop "
        "setting.",
    "ModeNotSupportedException":
        "The function does not support this invocation_type (RequestResponse on a function "
        "configured for asynchronous invocation only, or the other way round).",
}


class InvalidResponse(ApiFailed):
    """The function ran, but its answer cannot be returned (LM005, never retried)."""

    def __init__(self, problem, hint=None):
        super().__init__(SERVICE_FAILED, f"Invalid response: {problem}", hint=hint)


def invalid_response(problem, hint=None):
    return InvalidResponse(problem, hint)


def no_credentials(cause=None):
    hint = (
        "Give the server process credentials the standard AWS way: environment variables, "
        "the postgres OS user's ~/.aws files, web identity, or container or instance metadata."
    )
    return ApiFailed(
        NO_CREDENTIALS,
        "Unable to locate credentials" if cause is None else f"Credentials error: {cause}",
        hint=hint,
        retryable=True,  # the operator can fix it; a queued delivery waits for that
    )


class FunctionFailed(LambdaError):
    """The function ran and raised: RDS's "lambda invocation failed"."""

    sqlstate = FUNCTION_ERROR

    def __init__(self, function_arn, kind, details, size=None):
        super().__init__(
            "lambda invocation failed",
            detail=f'"{function_arn}" returned error "{cut(kind, limit=100)}", '
                   f'details: "{cut(details, size)}".',
        )
        self.details = details  # the function's error payload, whole


class Refused(LambdaError):
    """A statement of ours that PostgreSQL refused, passed on with its own SQLSTATE, message,
    DETAIL and HINT (hint, when given, replaces the HINT). plpy.SPIError keeps DETAIL and HINT
    in spidata: (sqlerrcode, detail, hint, ...)."""

    def __init__(self, error, hint=None):
        spidata = getattr(error, "spidata", None) or (None, None, None)
        super().__init__(str(error).strip(), spidata[1], hint or spidata[2])
        self.sqlstate = getattr(error, "sqlstate", None) or "XX000"


# aws_lambda.events_after_commit on a hot standby, where queueing fails with 25006.
EVENTS_ON_STANDBY = (
    "aws_lambda.events_after_commit is on, so invoke(..., invocation_type => 'Event') queues. "
    "SET aws_lambda.events_after_commit = off to invoke at once on a standby."
)


class Canceled(LambdaError):
    """PostgreSQL asked us to stop (statement_timeout, pg_cancel_backend)."""

    def __init__(self, sqlstate, message):
        super().__init__(message)
        self.sqlstate = sqlstate or QUERY_CANCELED


# The result columns of a call that failed, and the error columns of one that did not.
NO_RESULT = {"status_code": None, "payload": None, "executed_version": None, "log_result": None,
             "durable_execution_arn": None, "request_id": None}
NO_ERROR = {"error_sqlstate": None, "error_message": None, "error_detail": None, "error_hint": None}


_SENT_NOT_RETRIED = "The request was sent, so the function may have run; it was not retried."
_SENT_RETRIED = (
    "The request was sent, so the function may have run; the delivery is retried, so it may "
    "run more than once."
)


def _joined(*parts):
    """The parts that are not empty, as one text (a HINT), or None."""
    return " ".join(part for part in parts if part) or None


def _with_log(hint, error):
    """The HINT, then the last lines of the function's log (log_type => 'Tail'), then, on a
    line of its own, the Lambda request id of the answer the error came from."""
    hint = _with_log_tail(hint, error)
    if error.request_id is None:
        return hint
    line = f"Lambda request id: {error.request_id}"
    return f"{hint}\n{line}" if hint else line


def _with_log_tail(hint, error):
    if not error.log_tail:
        return hint
    log = f"Last lines of the function's log:\n{error.log_tail}"
    return f"{hint}\n{log}" if hint else log


def as_row(error):
    """The error columns the SQL layer raises from (invoke: a call is never retried)."""
    return {
        "error_sqlstate": error.sqlstate,
        "error_message": error.message,
        "error_detail": error.detail,
        "error_hint": _with_log(
            _joined(error.hint, _SENT_NOT_RETRIED if error.may_have_run else None), error),
    }


# What commit-time delivery does after a failed attempt (docs/errors.md: "Retries").
RETRY, DEAD, FAILED = "pending", "dead", "failed"


def delivery_verdict(error):
    """FAILED: the function ran and raised, or its durable execution name was taken by
    another payload (never retried); RETRY: a later attempt may succeed; DEAD: it cannot
    (a bad request, not found, access denied, too large)."""
    if isinstance(error, FunctionFailed) or error.error_type == DURABLE_NAME_TAKEN:
        return FAILED
    return RETRY if error.retryable else DEAD


def delivery_error_text(error, outcome):
    """`last_error` of a delivery: SQLSTATE, message, DETAIL and a HINT for a queued delivery.

    `outcome` says what happens next, e.g. "Attempt 2 of 10; the next is due at ...".
    """
    hint = _with_log(_joined(error.hint, _SENT_RETRIED if error.may_have_run and error.retryable
                             else None, outcome), error)
    lines = [f"{error.sqlstate}: {error.message}"]
    if error.detail:
        lines.append(f"DETAIL: {error.detail}")
    if hint:
        lines.append(f"HINT: {hint}")
    return "\n".join(lines)
