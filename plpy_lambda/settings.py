"""The extension's settings (GUCs) read and checked: each value, its source, who may set it.

- aws_lambda.connect_timeout_ms, aws_lambda.request_timeout_ms: any session may set
  them (as on RDS); they only bound that session's own calls. The SQL layer passes
  their current values in.
- aws_lambda.endpoint_override, aws_lambda.role_arn, aws_lambda.max_response_bytes,
  the server-log settings (aws_lambda.log_min_duration, aws_lambda.log_failures)
  and the delivery policy (aws_lambda.delivery_max_attempts,
  aws_lambda.delivery_max_age, aws_lambda.delivery_retention): the operator's. They are read only from the
  server's configuration files (postgresql.conf, included files,
  postgresql.auto.conf) through aws_lambda_internal._operator_settings(), never from a
  session, role or database setting, which any role could make. They are re-read
  when the server reloads its configuration.
- aws_lambda.events_after_commit: any role may set it for itself (or ALTER
  DATABASE ... SET it); the SQL layer passes its current value in.
"""

from plpy_lambda import endpoints, exchange
from plpy_lambda.errors import BadConfiguration, BadSetting

CONNECT_TIMEOUT = "aws_lambda.connect_timeout_ms"
REQUEST_TIMEOUT = "aws_lambda.request_timeout_ms"
ENDPOINT_OVERRIDE = "aws_lambda.endpoint_override"
ROLE_ARN = "aws_lambda.role_arn"
MAX_ATTEMPTS = "aws_lambda.delivery_max_attempts"
MAX_AGE = "aws_lambda.delivery_max_age"
RETENTION = "aws_lambda.delivery_retention"
EVENTS_AFTER_COMMIT = "aws_lambda.events_after_commit"
REPORT_DELIVERIES = "aws_lambda.report_deliveries"  # the relay's: a NOTICE per delivered batch
MAX_RESPONSE_BYTES = "aws_lambda.max_response_bytes"
LOG_MIN_DURATION = "aws_lambda.log_min_duration"
LOG_FAILURES = "aws_lambda.log_failures"
DEFAULT_MAX_RESPONSE_BYTES = exchange.MAX_RESPONSE_BYTES  # Lambda's own limit
MAX_RESPONSE_RANGE = (1024, 1073741823)  # up to the largest value PostgreSQL can hold
_SIZE_UNITS = {"": 1, "B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3}
DEFAULT_CONNECT_TIMEOUT_MS = 1000
DEFAULT_REQUEST_TIMEOUT_MS = 3000
TIMEOUT_RANGE_MS = (1, 900000)

# Compiled on first use (re keeps it): only an operator who sets aws_lambda.role_arn needs it.
_ROLE_ARN = r"arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}"


class Timeouts:
    """A session's aws_lambda.connect_timeout_ms and request_timeout_ms, in seconds."""

    __slots__ = ("connect", "request")

    def __init__(self, connect, request):
        self.connect = connect
        self.request = request

    @property
    def total(self):
        return self.connect + self.request

    def __repr__(self):
        return f"Timeouts(connect={self.connect!r}, request={self.request!r})"


class OperatorSettings:
    """The operator's settings, from the server's configuration files."""

    __slots__ = ("endpoint_override", "role_arn", "max_attempts", "max_age", "retention",
                 "max_response_bytes", "log_min_duration", "log_failures")

    def __init__(self, endpoint_override=None, role_arn=None, max_attempts=10,
                 max_age=6 * 3600.0, retention=3 * 86400.0,
                 max_response_bytes=DEFAULT_MAX_RESPONSE_BYTES, log_min_duration=None,
                 log_failures=False):
        self.endpoint_override = endpoint_override  # scheme://host[:port], or None
        self.role_arn = role_arn  # the IAM role to assume, or None
        # commit-time delivery: give up after this many attempts or this age (seconds);
        # keep succeeded deliveries this long (seconds)
        self.max_attempts = max_attempts
        self.max_age = max_age
        self.retention = retention
        # an answer larger than this is refused (LM005) without being read
        self.max_response_bytes = max_response_bytes
        # the server log: calls that took at least this many seconds (None: none), and
        # failed calls (calllog.py)
        self.log_min_duration = log_min_duration
        self.log_failures = log_failures

    @property
    def logs_calls(self):
        """Whether any call may be logged (calllog.note decides which)."""
        return self.log_min_duration is not None or self.log_failures

    def __repr__(self):
        return "OperatorSettings(" + ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self.__slots__) + ")"


_BOOLEANS = {"on": True, "true": True, "yes": True, "1": True,
             "off": False, "false": False, "no": False, "0": False}


def session_boolean(setting, text):
    """A session's boolean setting (aws_lambda.events_after_commit,
    aws_lambda.report_deliveries): PostgreSQL's boolean spellings; unset is off."""
    if text is None or text.strip() == "":
        return False
    value = _BOOLEANS.get(text.strip().lower())
    if value is None:
        raise BadSetting(setting, f'"{text[:40]}" is not a boolean (on or off)')
    return value


def timeouts(connect_text, request_text):
    """The session's Timeouts, from the texts of its two timeout settings."""
    return Timeouts(
        connect=_milliseconds(CONNECT_TIMEOUT, connect_text, DEFAULT_CONNECT_TIMEOUT_MS) / 1000,
        request=_milliseconds(REQUEST_TIMEOUT, request_text, DEFAULT_REQUEST_TIMEOUT_MS) / 1000,
    )


def _milliseconds(setting, text, default):
    """A timeout setting's value in milliseconds: unset is default."""
    if text is None or text.strip() == "":
        return default
    try:
        value = int(text.strip())
    except ValueError:
        raise BadSetting(setting, f'"{text[:40]}" is not an integer number of milliseconds') from None
    low, high = TIMEOUT_RANGE_MS
    if not low <= value <= high:
        raise BadSetting(setting, f"{value} is outside the range {low}..{high} (milliseconds)")
    return value


def operator_settings(plpy, cache, conf_load_time):
    """The operator's settings, re-read from the configuration files after each reload."""
    if cache.get("conf_load_time") != conf_load_time or "operator" not in cache:
        rows = plpy.execute("SELECT name, setting FROM aws_lambda_internal._operator_settings()")
        values = {row["name"]: row["setting"] for row in rows}
        cache["operator"] = parse_operator_settings(values, lambda text: _seconds(plpy, text))
        cache["conf_load_time"] = conf_load_time
    return cache["operator"]


def _seconds(plpy, text):
    """An interval as PostgreSQL reads one ('6 hours', '3 days', '90s'), in seconds."""
    try:
        rows = plpy.execute(
            plpy.prepare("SELECT extract(epoch FROM $1::interval)::float8 AS s", ["text"]), [text]
        )
    except plpy.SPIError:
        return None
    return rows[0]["s"]


def parse_operator_settings(values, seconds=None):
    """The operator's settings from their texts. `seconds` reads an interval text (None
    when it is not one)."""
    given = {}  # the settings the configuration sets; the others keep their defaults
    text = (values.get(MAX_ATTEMPTS) or "").strip()
    if text:
        if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 1000:
            raise BadConfiguration(
                f'{MAX_ATTEMPTS} in the server configuration is not an integer in 1..1000: '
                f'"{text[:40]}"'
            )
        given["max_attempts"] = int(text)
    for name, field in ((MAX_AGE, "max_age"), (RETENTION, "retention")):
        text = (values.get(name) or "").strip()
        if text:
            value = seconds(text) if seconds else None
            if value is None or value < 0:
                raise BadConfiguration(
                    f'{name} in the server configuration is not an interval: "{text[:40]}"',
                    hint="Use a PostgreSQL interval such as '6 hours' or '3 days'.",
                )
            given[field] = value
    text = (values.get(MAX_RESPONSE_BYTES) or "").strip()
    if text:
        given["max_response_bytes"] = _size_in_bytes(text)
    text = (values.get(LOG_MIN_DURATION) or "").strip()
    if text:
        given["log_min_duration"] = _log_min_duration(text)
    text = (values.get(LOG_FAILURES) or "").strip()
    if text:
        if text.lower() not in _BOOLEANS:
            raise BadConfiguration(
                f'{LOG_FAILURES} in the server configuration is not a boolean: "{text[:40]}"')
        given["log_failures"] = _BOOLEANS[text.lower()]
    endpoint = (values.get(ENDPOINT_OVERRIDE) or "").strip() or None
    role_arn = (values.get(ROLE_ARN) or "").strip() or None
    if endpoint is not None:
        endpoint = endpoints.checked_url(endpoint, f"{ENDPOINT_OVERRIDE} in the server configuration")
    if role_arn is not None and not _matches(_ROLE_ARN, role_arn):
        raise BadConfiguration(
            f'{ROLE_ARN} in the server configuration is not an IAM role ARN: "{role_arn[:100]}"',
            hint="Use arn:aws:iam::123456789012:role/name, or remove the setting.",
        )
    return OperatorSettings(endpoint_override=endpoint, role_arn=role_arn, **given)


def _log_min_duration(text):
    """aws_lambda.log_min_duration, as log_min_duration_statement reads it: milliseconds, or
    a number with ms, s or min; -1 turns it off (None). In seconds."""
    match = _matches(r"(-1|\d{1,9})\s*(ms|s|min)?", text)
    if match is None:
        raise BadConfiguration(
            f'{LOG_MIN_DURATION} in the server configuration is not a duration: "{text[:40]}"',
            hint="Use milliseconds, or a number with ms, s or min (250, 250ms, 2s); -1 is off.")
    if match[1] == "-1":
        return None
    return int(match[1]) * {"ms": 0.001, "s": 1.0, "min": 60.0}[match[2] or "ms"]


def _size_in_bytes(text):
    """aws_lambda.max_response_bytes: bytes, or PostgreSQL's memory units (kB, MB, GB)."""
    match = _matches(r"(\d{1,12})\s*(B|kB|MB|GB)?", text)
    value = int(match[1]) * _SIZE_UNITS[match[2] or ""] if match else None
    low, high = MAX_RESPONSE_RANGE
    if value is None or not low <= value <= high:
        raise BadConfiguration(
            f'{MAX_RESPONSE_BYTES} in the server configuration is not a size in '
            f'{low}..{high} bytes: "{text[:40]}"',
            hint="Use a number of bytes, or kB, MB or GB: for example 6291456 or 6MB "
            "(Lambda's own limit).",
        )
    return value


def _matches(pattern, text):
    """re.fullmatch, with re imported only when the configuration sets what needs it."""
    import re

    return re.fullmatch(pattern, text, re.ASCII)
