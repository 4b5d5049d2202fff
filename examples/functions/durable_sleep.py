"""A durable function (durable_sleep.json) that takes "seconds" of the event (or of its
"record", the row trigger's payload) to run: while it runs, a deliverer can be killed with
the request in flight. Sent again with the same durable execution name and payload, Lambda
returns the execution already started."""
import time


def handler(event, context):
    source = event.get("record") or event
    time.sleep(float(source.get("seconds", 0)))
    return {"i": source.get("i", source.get("id")), "function_version": context.function_version}
