"""Settings: each value, where it may come from, and who may set it.

- aws_lambda.connect_timeout_ms, aws_lambda.request_timeout_ms: any session may set
  them (as on RDS); they only bound that session's own calls. The SQL layer passes
  their current values in.
- aws_lambda.endpoint_override, aws_lambda.role_arn: the operator's. They are read
  only from the server's configuration files (postgresql.conf, included files,
  postgresql.auto.conf) through aws_lambda._operator_settings(), never from a
  session, role or database setting, which any role could make. They are re-read
  when the server reloads its configuration.
"""

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from plpy_lambda.errors import BadConfiguration, BadSetting

CONNECT_TIMEOUT = "aws_lambda.connect_timeout_ms"
REQUEST_TIMEOUT = "aws_lambda.request_timeout_ms"
ENDPOINT_OVERRIDE = "aws_lambda.endpoint_override"
ROLE_ARN = "aws_lambda.role_arn"
DEFAULT_CONNECT_TIMEOUT_MS = 1000
DEFAULT_REQUEST_TIMEOUT_MS = 3000
TIMEOUT_RANGE_MS = (1, 900000)

_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}")


@dataclass(frozen=True)
class Timeouts:
    connect: float  # seconds
    request: float  # seconds

    @property
    def total(self):
        return self.connect + self.request


@dataclass(frozen=True)
class OperatorSettings:
    endpoint_override: str | None = None
    role_arn: str | None = None


def timeouts(connect_text, request_text):
    return Timeouts(
        connect=_milliseconds(CONNECT_TIMEOUT, connect_text, DEFAULT_CONNECT_TIMEOUT_MS) / 1000,
        request=_milliseconds(REQUEST_TIMEOUT, request_text, DEFAULT_REQUEST_TIMEOUT_MS) / 1000,
    )


def _milliseconds(setting, text, default):
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
        rows = plpy.execute("SELECT name, setting FROM aws_lambda._operator_settings()")
        values = {row["name"]: row["setting"] for row in rows}
        cache["operator"] = parse_operator_settings(values)
        cache["conf_load_time"] = conf_load_time
    return cache["operator"]


def parse_operator_settings(values):
    endpoint = (values.get(ENDPOINT_OVERRIDE) or "").strip() or None
    role_arn = (values.get(ROLE_ARN) or "").strip() or None
    if endpoint is not None:
        endpoint = _endpoint(endpoint)
    if role_arn is not None and not _ROLE_ARN.fullmatch(role_arn):
        raise BadConfiguration(
            f'{ROLE_ARN} in the server configuration is not an IAM role ARN: "{role_arn[:100]}"',
            hint="Use arn:aws:iam::123456789012:role/name, or remove the setting.",
        )
    return OperatorSettings(endpoint_override=endpoint, role_arn=role_arn)


def _endpoint(text):
    parts = urlsplit(text)
    try:
        parts.port
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise BadConfiguration(
            f'{ENDPOINT_OVERRIDE} in the server configuration is not an endpoint URL: "{text[:100]}"',
            hint="Use scheme://host[:port], for example https://lambda.us-east-1.amazonaws.com "
            "or http://127.0.0.1:9001.",
        )
    return f"{parts.scheme}://{parts.netloc}"
