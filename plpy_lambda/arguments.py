"""The arguments of aws_lambda.invoke, checked and turned into one Invocation.

Pure code. Also home of the psql-variable rule: a composite passed through a psql
variable (`:'aws_lambda_arn_1'`) arrives as the text "(name,region)" in the text
overload, with every later positional argument shifted by one place.
"""

from plpy_lambda import names
from plpy_lambda.errors import BadArgument, BadSetting, TooLarge

INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
LOG_TYPES = ("None", "Tail")
DEFAULT_INVOCATION_TYPE = "RequestResponse"
DEFAULT_LOG_TYPE = "None"

SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024
ASYNC_PAYLOAD_LIMIT = 1024 * 1024
CONTEXT_LIMIT = 3583

_ALPHANUMERIC = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# Invoke's TenantId (botocore's model: [a-zA-Z0-9\._:\/=+\-@ ]+): 1 to 256 of these
# characters; sent as X-Amz-Tenant-Id.
TENANT_ID_SETTING = "aws_lambda.tenant_id"
_TENANT_ID = _ALPHANUMERIC + "._:/=+-@ "
# Invoke's DurableExecutionName ([a-zA-Z0-9-_]+): 1 to 64 of these; sent as
# X-Amz-Durable-Execution-Name.
DURABLE_NAME_SETTING = "aws_lambda.durable_execution_name"
_DURABLE_NAME = _ALPHANUMERIC + "_-"


class Invocation:
    """One call, validated: everything needed to build the request."""

    __slots__ = ("function", "region", "payload", "invocation_type", "log_type",
                 "client_context", "qualifier", "function_name", "context", "tenant_id",
                 "durable_execution_name")

    def __init__(self, function, region, payload, invocation_type, log_type, client_context,
                 qualifier, function_name="", context=None, tenant_id=None,
                 durable_execution_name=None):
        self.function = function  # names.FunctionRef
        self.region = region  # None: the server's region, resolved later
        self.payload = payload  # bytes, as sent
        self.invocation_type = invocation_type
        self.log_type = log_type
        self.client_context = client_context  # base64, as sent, or None
        self.qualifier = qualifier
        self.function_name = function_name  # as given, after the psql-variable rule
        self.context = context  # the client context's JSON text, or None
        self.tenant_id = tenant_id  # checked (tenant_id()), or None: no X-Amz-Tenant-Id
        # checked (durable_execution_name()), or None: no X-Amz-Durable-Execution-Name
        self.durable_execution_name = durable_execution_name

    def with_payload(self, payload):
        """The same call with another payload (bytes, checked): one of a batch's rows."""
        return Invocation(self.function, self.region, payload, self.invocation_type,
                          self.log_type, self.client_context, self.qualifier,
                          self.function_name, self.context, self.tenant_id,
                          self.durable_execution_name)

    def with_headers(self, tenant_id, durable_execution_name=None):
        """The same call with its X-Amz-Tenant-Id and X-Amz-Durable-Execution-Name headers:
        a tenant (checked with tenant_id()) and a durable execution name (checked with
        durable_execution_name()), each None for none."""
        if (tenant_id, durable_execution_name) == (self.tenant_id, self.durable_execution_name):
            return self
        return Invocation(self.function, self.region, self.payload, self.invocation_type,
                          self.log_type, self.client_context, self.qualifier,
                          self.function_name, self.context, tenant_id, durable_execution_name)

    def queued(self):
        """The arguments a queued delivery stores: checked, and read the same way again."""
        return {
            "function_name": self.function_name,
            "region": self.region,
            "invocation_type": self.invocation_type,
            "log_type": self.log_type,
            "context": self.context,
            "qualifier": self.qualifier,
            "tenant_id": self.tenant_id,
            "durable_execution_name": self.durable_execution_name,
        }

    def display_arn(self, region):
        return self.function.display(region, self.qualifier)


def from_sql(
    function_name,
    payload,
    region=None,
    invocation_type=DEFAULT_INVOCATION_TYPE,
    log_type=DEFAULT_LOG_TYPE,
    context=None,
    qualifier=None,
    composite_region=None,
    from_composite=False,
):
    """Check the SQL arguments of one invoke call.

    `function_name`/`composite_region` are the composite's fields when the composite
    overload was called (`from_composite`), else the text argument and None.
    """
    if not from_composite and function_name is not None:
        row = names.parse_row_literal(function_name)
        if row is not None:
            function_name, composite_region = row
            if region in INVOCATION_TYPES:
                region, invocation_type, log_type, context, qualifier = _unshift(
                    region, invocation_type, log_type, context, qualifier
                )
    function = names.parse_function_name(function_name)
    region = _one_region(function, region, composite_region)
    qualifier = _one_qualifier(function, qualifier)
    invocation_type = _choice("invocation_type", invocation_type, INVOCATION_TYPES)
    log_type = _choice("log_type", log_type, LOG_TYPES)
    return Invocation(
        function=function,
        region=region,
        payload=payload_bytes(payload, invocation_type),
        invocation_type=invocation_type,
        log_type=log_type,
        client_context=client_context(context),
        qualifier=qualifier,
        function_name=function_name,
        context=context,
    )


def tenant_id(argument, setting_text=None):
    """The tenant a call is for: the tenant_id argument when given, else the session's
    aws_lambda.tenant_id; None (no header) when that is unset or empty."""
    return _header_value(argument, setting_text, _TENANT_ID, 256, "tenant_id", TENANT_ID_SETTING,
                         "a tenant id", "letters, digits, spaces and . _ : / = + - @")


def durable_execution_name(argument, setting_text=None):
    """The durable execution name of a call: the argument when given, else the session's
    aws_lambda.durable_execution_name (invoke's only); None when unset or empty."""
    return _header_value(argument, setting_text, _DURABLE_NAME, 64, "durable_execution_name",
                         DURABLE_NAME_SETTING, "a durable execution name", "letters, digits, - and _")


def _header_value(argument, setting_text, allowed, longest, argument_name, setting, what, takes):
    """The argument when given, else the setting's text; None when empty. Checked against
    Invoke's member (1 to `longest` of the characters `allowed`): a bad argument is that
    argument's error, a bad setting the setting's."""
    value = argument if argument is not None else setting_text
    if not value:
        return None
    if len(value) <= longest and not value.strip(allowed):  # nothing left: all allowed
        return value
    if len(value) > longest:
        problem = f"is {len(value):,} characters long; {what} has 1 to {longest}"
    else:
        import json

        bad = next(character for character in value if character not in allowed)
        problem = f"{json.dumps(bad)} is not allowed; {what} takes {takes}"
    if argument is not None:
        raise BadArgument(argument_name, problem)
    raise BadSetting(setting, problem)


def _unshift(invocation_type, log_type, context, qualifier_json, qualifier):
    """Undo the shift of `invoke(:'composite', payload, 'Event', ...)`.

    The text overload received, in its region .. context places, the composite
    overload's invocation_type .. qualifier. A place left at its default holds the
    text overload's default, which stands for "not given".
    """
    if log_type == DEFAULT_INVOCATION_TYPE:
        log_type = DEFAULT_LOG_TYPE
    if context == DEFAULT_LOG_TYPE:
        context = None
    if qualifier_json is not None:
        import json

        shifted = json.loads(qualifier_json)
        if not isinstance(shifted, str):
            raise BadArgument(
                "qualifier",
                "with a composite passed as text, the sixth argument is the qualifier; "
                "pass it by name: qualifier => 'v1'",
            )
        if qualifier is not None and qualifier != shifted:
            raise BadArgument("qualifier", "given twice with different values")
        qualifier = shifted
    return None, invocation_type, log_type, context, qualifier


def _one_region(function, region, composite_region):
    """The region that the ARN, the region argument and the composite agree on, or None."""
    for value in (region, composite_region):
        if value is not None:
            names.check_region(value)
            if function.region and value != function.region:
                raise BadArgument(
                    "region", f'"{value}" contradicts the region "{function.region}" in the function ARN'
                )
    if region is not None and composite_region is not None and region != composite_region:
        raise BadArgument(
            "region", f'"{region}" contradicts the region "{composite_region}" of the composite'
        )
    return function.region or region or composite_region


def _one_qualifier(function, qualifier):
    names.check_qualifier(qualifier)
    if qualifier and function.qualifier and qualifier != function.qualifier:
        raise BadArgument(
            "qualifier",
            f'"{qualifier}" contradicts the qualifier "{function.qualifier}" in function_name',
        )
    return qualifier or function.qualifier


def _choice(argument, value, allowed):
    if value is None:
        raise BadArgument(argument, "must not be NULL", null=True)
    if value not in allowed:
        wanted = ", ".join(allowed)
        hint = None
        for candidate in allowed:
            if candidate.lower() == value.lower():
                hint = f'Values are case-sensitive: write "{candidate}".'
        raise BadArgument(argument, f'"{value[:40]}" is not one of {wanted}', hint=hint)
    return value


def payload_bytes(payload, invocation_type):
    """The payload as sent, refused when NULL or over Lambda's limit."""
    if payload is None:
        raise BadArgument("payload", "must not be NULL; pass '{}' for an empty event", null=True)
    data = payload.encode("utf-8")
    check_payload_size(len(data), invocation_type)
    return data


def check_payload_size(size, invocation_type):
    limit = ASYNC_PAYLOAD_LIMIT if invocation_type == "Event" else SYNC_PAYLOAD_LIMIT
    if size > limit:
        what = "asynchronous (Event)" if invocation_type == "Event" else "synchronous"
        raise TooLarge("payload", size, limit, f"{what} invocations")


def with_delivery_id(context, delivery_id):
    """The client context (JSON text) of a queued RequestResponse delivery: the caller's,
    with the delivery's id added under custom.delivery_id (so a handler can tell a retry)."""
    import json

    value = json.loads(context) if context is not None else {}
    custom = value.get("custom")
    value["custom"] = {**(custom if isinstance(custom, dict) else {}), "delivery_id": delivery_id}
    return json.dumps(value, separators=(",", ":"))


def client_context(context):
    """The client context as sent (base64), checked: a JSON object within Lambda's limit."""
    if context is None:
        return None
    import base64  # only for a call with a client context
    import json

    try:
        value = json.loads(context)
    except ValueError:
        raise BadArgument("context", "must be a JSON object") from None
    if not isinstance(value, dict):
        kind = {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")
        raise BadArgument("context", f"must be a JSON object, not a JSON {kind}")
    encoded = base64.b64encode(context.encode("utf-8")).decode("ascii")
    if len(encoded) > CONTEXT_LIMIT:
        raise TooLarge("context", len(encoded), CONTEXT_LIMIT, "a client context (base64-encoded)")
    return encoded
