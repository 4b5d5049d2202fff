"""Sleeps event["seconds"] (default 1), for testing timeouts and concurrency."""
import time


def handler(event, context):
    seconds = float((event or {}).get("seconds", 1))
    time.sleep(seconds)
    return {"slept": seconds}
