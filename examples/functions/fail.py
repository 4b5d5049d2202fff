"""Always fails, for testing how errors come back (X-Amz-Function-Error: Unhandled)."""


def handler(event, context):
    print("fail is about to raise")
    raise RuntimeError(f"fail.py always raises (event was {event!r})")
