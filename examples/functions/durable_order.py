"""A durable function (durable_order.json): places the order the event names.

Each call starts a durable execution; called again with the same execution name
(X-Amz-Durable-Execution-Name) and payload, Lambda returns that execution instead
of running this again, so ``placed`` does not grow and the order is placed once.
"""

placed = 0


def handler(event, context):
    global placed
    placed += 1
    print(f"durable_order: placing order {event.get('order_id')!r} (orders placed: {placed})")
    return {"order_id": event.get("order_id"), "status": "placed", "placed": placed,
            "function_version": context.function_version}
