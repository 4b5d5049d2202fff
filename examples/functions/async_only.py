"""Supports the Event invocation type only (async_only.json): a RequestResponse call
is answered 400 ModeNotSupportedException."""


def handler(event, context):
    print(f"async_only got {event!r}")
    return None
