"""Published version 1 of echo (alias custom_version, see echo.json): same code."""
import json


def handler(event, context):
    print(f"echo got {json.dumps(event)}")
    cc = context.client_context
    client_context = None if cc is None else {
        "custom": cc.custom,
        "env": cc.env,
        "client": None if cc.client is None else {k: getattr(cc.client, k) for k in type(cc.client).__slots__},
    }
    return {"event": event, "client_context": client_context, "function_version": context.function_version}
