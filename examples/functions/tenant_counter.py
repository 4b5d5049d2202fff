"""Counts its calls in a module global: tenant-isolated (tenant_counter.json), so
each tenant has its own count, as each tenant has its own execution environments."""

calls = 0


def handler(event, context):
    global calls
    calls += 1
    print(f"tenant_counter: call {calls} for tenant {context.tenant_id}")
    return {"tenant": context.tenant_id, "calls": calls}
