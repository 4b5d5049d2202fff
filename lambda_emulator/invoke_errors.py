"""Invoke's own errors (not function errors), raised on purpose by a handler or a NAME.json.

Owns the table of the errors the Lambda API model lists for Invoke, each with the
HTTP status the model gives it (the error shape's ``httpStatusCode``), and
``InvokeError``: an exception a handler raises to make the emulator answer the
Invoke call with that AWS error instead of a function error. Two of them cannot
otherwise be produced locally::

    from lambda_emulator import InvokeError

    def handler(event, context):
        raise InvokeError("RecursiveInvocationException")  # 400, as Lambda answers a loop

``NAME.json`` can do the same for every call of a function (``"invoke_error"``),
and ``"invocation_types"`` makes the others 400 ModeNotSupportedException; see
functions.py.
"""

from __future__ import annotations

# Lambda's Invoke errors and their HTTP statuses, as in the API model (botocore's
# ``operation_model("Invoke").error_shapes``, ``shape.metadata["error"]["httpStatusCode"]``).
INVOKE_ERRORS = {
    "InvalidParameterValueException": 400,
    "InvalidRequestContentException": 400,
    "ModeNotSupportedException": 400,
    "NoPublishedVersionException": 400,
    "RecursiveInvocationException": 400,
    "SnapStartException": 400,
    "ServiceQuotaExceededException": 402,
    "EFSMountFailureException": 403,
    "S3FilesMountFailureException": 403,
    "ResourceNotFoundException": 404,
    "EFSMountConnectivityException": 408,
    "EFSMountTimeoutException": 408,
    "S3FilesMountConnectivityException": 408,
    "S3FilesMountTimeoutException": 408,
    "SnapStartTimeoutException": 408,
    "CodeArtifactUserDeletedException": 409,
    "CodeArtifactUserFailedException": 409,
    "CodeArtifactUserPendingException": 409,
    "DurableExecutionAlreadyStartedException": 409,
    "ResourceConflictException": 409,
    "RuntimeAliasDeletedException": 409,
    "RuntimeVersionDeletedException": 409,
    "SnapStartNotReadyException": 409,
    "SnapStartRegenerationFailureException": 409,
    "EFSIOException": 410,
    "RequestTooLargeException": 413,
    "SerializedRequestEntityTooLargeException": 413,
    "UnsupportedMediaTypeException": 415,
    "TooManyRequestsException": 429,
    "ServiceException": 500,
    "EC2AccessDeniedException": 502,
    "EC2ThrottledException": 502,
    "EC2UnexpectedException": 502,
    "ENILimitReachedException": 502,
    "ENINotReadyException": 502,
    "InvalidRuntimeException": 502,
    "InvalidSecurityGroupIDException": 502,
    "InvalidSubnetIDException": 502,
    "InvalidZipFileException": 502,
    "KMSAccessDeniedException": 502,
    "KMSDisabledException": 502,
    "KMSInvalidStateException": 502,
    "KMSNotFoundException": 502,
    "ResourceNotReadyException": 502,
    "SubnetIPAddressLimitReachedException": 502,
}

DEFAULT_MESSAGES = {
    "RecursiveInvocationException": "Lambda has detected your function being invoked in a recursive loop with "
                                    "other AWS resources and stopped your function's invocation.",
    "ModeNotSupportedException": "The function doesn't support the invocation mode requested.",
}


class InvokeError(Exception):
    """Raised by a handler: the Invoke call is answered with this AWS error.

    ``error_type``: an Invoke error of the model (its status is the model's) or any
    other name, then with ``status`` (default 400). ``message``: the error's message
    (a default for RecursiveInvocationException and ModeNotSupportedException).
    The handler's run still counts as an invocation; for an Event call, which was
    answered 202 before it ran, the error only goes to the log.
    """

    def __init__(self, error_type, message=None, status=None):
        self.error_type = str(error_type)
        self.message = message if message is not None else DEFAULT_MESSAGES.get(
            self.error_type, f"{self.error_type} raised by the function's handler.")
        self.status = int(status) if status is not None else INVOKE_ERRORS.get(self.error_type, 400)
        super().__init__(self.message)


def from_config(value, name):
    """NAME.json's ``invoke_error``: ``"Type"`` or ``{"type", "message", "status"}``,
    as an InvokeError; ValueError when it is neither."""
    if isinstance(value, str):
        return InvokeError(value)
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        unknown = set(value) - {"type", "message", "status"}
        if unknown:
            raise ValueError(f"{name}.json: invoke_error takes no key {', '.join(sorted(unknown))}")
        return InvokeError(value["type"], value.get("message"), value.get("status"))
    raise ValueError(f'{name}.json: invoke_error must be an error type or {{"type": ..., "message": ...}}')
