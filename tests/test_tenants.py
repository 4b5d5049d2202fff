"""Tenants: aws_lambda.tenant_id and the tenant_id arguments, sent as X-Amz-Tenant-Id.

A session (or one transaction, with SET LOCAL) names its tenant; invoke sends it, invoke_many
and invoke_on_commit take it as their tenant_id argument's default, a queued delivery keeps
the tenant it was queued with, and the row trigger queues with the tenant of the session that
changed the row. The endpoint records each request's headers; its function tenant_counter
is tenant-isolated (examples/functions/tenant_counter.json): each tenant has its own
execution environment, and so its own count of calls, and a call without a tenant is refused,
as a call with one to a function without tenant isolation (echo) is.
"""

import psycopg
import pytest


def tenants_sent(emulator):
    """The X-Amz-Tenant-Id of each request the endpoint received (None: no header), in order."""
    return [r.headers.get("X-Amz-Tenant-Id") for r in emulator.requests]


def test_invoke_sends_the_sessions_tenant(db, emulator):
    count = "SELECT payload->>'tenant', payload->>'calls' FROM aws_lambda.invoke('tenant_counter', '{}'::json)"
    db.execute("SET aws_lambda.tenant_id = 'acme corp:eu/1'")
    assert db.execute(count).fetchone() == ("acme corp:eu/1", "1")
    assert db.execute(count).fetchone() == ("acme corp:eu/1", "2")
    db.execute("SET aws_lambda.tenant_id = 'globex'")
    assert db.execute(count).fetchone() == ("globex", "1")  # another tenant, another environment
    db.execute("SET aws_lambda.tenant_id = ''")
    db.execute("SELECT status_code FROM aws_lambda.invoke('echo', '{}'::json)")
    db.execute("RESET aws_lambda.tenant_id")
    db.execute("SELECT status_code FROM aws_lambda.invoke('echo', '{}'::json)")
    assert tenants_sent(emulator) == ["acme corp:eu/1", "acme corp:eu/1", "globex", None, None]
    assert [r.status for r in emulator.requests] == [200] * 5  # the signature covers the header


def test_a_tenant_isolated_function_refuses_a_call_without_a_tenant(db, emulator):
    with pytest.raises(psycopg.Error) as caught:
        db.execute("SELECT * FROM aws_lambda.invoke('tenant_counter', '{}'::json)")
    assert caught.value.diag.sqlstate == "LM004"  # the service refused the request
    assert caught.value.diag.message_primary == "invoke API failed"
    assert "tenant" in caught.value.diag.message_detail.lower()
    db.execute("SET aws_lambda.tenant_id = 'acme'")
    with pytest.raises(psycopg.Error) as caught:
        db.execute("SELECT * FROM aws_lambda.invoke('echo', '{}'::json)")
    assert caught.value.diag.sqlstate == "LM004"
    assert "does not have tenant isolation enabled" in caught.value.diag.message_detail


def test_set_local_names_the_tenant_for_one_transaction(db, emulator):
    with db.transaction():
        db.execute("SET LOCAL aws_lambda.tenant_id = 'tenant-42'")
        db.execute("SELECT status_code FROM aws_lambda.invoke('tenant_counter', '{}'::jsonb)")
    db.execute("SELECT status_code FROM aws_lambda.invoke('echo', '{}'::jsonb)")
    assert tenants_sent(emulator) == ["tenant-42", None]


@pytest.mark.parametrize("value, problem", [
    ("acme!", '"!" is not allowed; a tenant id takes letters, digits, spaces and . _ : / = + - @'),
    ("t" * 257, "is 257 characters long; a tenant id has 1 to 256"),
])
def test_a_bad_tenant_setting_is_22023_naming_it_and_sends_nothing(db, emulator, value, problem):
    db.execute("SELECT set_config('aws_lambda.tenant_id', %s, false)", [value])
    for statement in ("SELECT * FROM aws_lambda.invoke('echo', '{}'::json)",
                      "SELECT * FROM aws_lambda.invoke_many('echo', ARRAY['{}']::json[])",
                      "SELECT aws_lambda.invoke_on_commit('echo', '{}'::json)"):
        with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
            db.execute(statement)
        assert caught.value.diag.message_primary == (
            f'invalid value for setting "aws_lambda.tenant_id": {problem}')
    assert emulator.requests == []


def test_a_bad_tenant_argument_is_22023_naming_it(db, emulator):
    for statement in ("SELECT * FROM aws_lambda.invoke_many('echo', ARRAY['{}']::json[], tenant_id => 'a\tb')",
                      "SELECT aws_lambda.invoke_on_commit('echo', '{}'::json, tenant_id => 'a\tb')"):
        with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
            db.execute(statement)
        assert caught.value.diag.message_primary == (
            'invalid value for argument tenant_id: "\\t" is not allowed; a tenant id takes letters, '
            "digits, spaces and . _ : / = + - @")
    assert emulator.requests == []


def test_invoke_many_takes_the_sessions_tenant_unless_told_otherwise(db, emulator):
    db.execute("SET aws_lambda.tenant_id = 'from-session'")
    many = ("SELECT count(*) FROM aws_lambda.invoke_many(%s, ARRAY['{}', '{}']::json[]%s) "
            "WHERE status_code = 200")
    assert db.execute(many % ("'tenant_counter'", "")).fetchone() == (2,)
    assert db.execute(many % ("'tenant_counter'", ", tenant_id => 'given'")).fetchone() == (2,)
    assert db.execute(many % ("'echo'", ", tenant_id => ''")).fetchone() == (2,)  # '': none
    assert tenants_sent(emulator) == ["from-session"] * 2 + ["given"] * 2 + [None] * 2


def test_a_delivery_keeps_the_tenant_it_was_queued_with(queue, emulator):
    """Whatever the deliverer's session says when it sends it."""
    queue.execute("SET aws_lambda.tenant_id = 'queued-for'")
    queue.execute("SELECT aws_lambda.invoke_on_commit('tenant_counter', '{\"n\": 1}'::json)")
    queue.execute("SELECT aws_lambda.invoke_on_commit('tenant_counter', '{\"n\": 2}'::json, "
                  "tenant_id => 'given')")
    queue.execute("SELECT aws_lambda.invoke_on_commit('echo', '{\"n\": 3}'::json, tenant_id => '')")
    queue.execute("RESET aws_lambda.tenant_id")
    queue.execute("SELECT aws_lambda.invoke_on_commit('echo', '{\"n\": 4}'::json)")
    assert queue.execute("SELECT payload->>'n', tenant_id FROM aws_lambda.deliveries ORDER BY id"
                         ).fetchall() == [("1", "queued-for"), ("2", "given"), ("3", None), ("4", None)]
    queue.execute("SET aws_lambda.tenant_id = 'the-deliverers-own'")
    queue.execute("CALL aws_lambda.deliver()")
    assert queue.execute("SELECT count(*) FROM aws_lambda.deliveries WHERE status = 'succeeded'"
                         ).fetchone() == (4,)
    sent = {r.body: r.headers.get("X-Amz-Tenant-Id") for r in emulator.requests}
    assert sent == {b'{"n": 1}': "queued-for", b'{"n": 2}': "given", b'{"n": 3}': None,
                    b'{"n": 4}': None}


def test_the_row_trigger_queues_with_the_tenant_of_the_session_that_changed_the_row(queue, emulator):
    queue.execute("DROP TABLE IF EXISTS invoices")
    queue.execute("CREATE TABLE invoices (id int PRIMARY KEY, total numeric)")
    queue.execute("CREATE TRIGGER invoices_to_lambda AFTER INSERT ON invoices FOR EACH ROW "
                  "EXECUTE FUNCTION aws_lambda.invoke_on_commit_trigger('tenant_counter')")
    with queue.transaction():
        queue.execute("SET LOCAL aws_lambda.tenant_id = 'tenant-a'")
        queue.execute("INSERT INTO invoices VALUES (1, 10)")
    with queue.transaction():
        queue.execute("SET LOCAL aws_lambda.tenant_id = 'tenant-b'")
        queue.execute("INSERT INTO invoices VALUES (2, 20)")
    queue.execute("DROP TABLE invoices")
    assert queue.execute("SELECT payload->'record'->>'id', tenant_id FROM aws_lambda.deliveries "
                         "ORDER BY id").fetchall() == [("1", "tenant-a"), ("2", "tenant-b")]
    queue.execute("CALL aws_lambda.deliver()")
    assert sorted(tenants_sent(emulator)) == ["tenant-a", "tenant-b"]
    assert queue.execute("SELECT count(*) FROM aws_lambda.deliveries WHERE status = 'succeeded'"
                         ).fetchone() == (2,)


def test_events_after_commit_queues_with_the_sessions_tenant(queue, emulator):
    queue.execute("SET aws_lambda.events_after_commit = on")
    queue.execute("SET aws_lambda.tenant_id = 'evented'")
    assert queue.execute("SELECT status_code FROM aws_lambda.invoke('tenant_counter', '{}'::json, "
                         "invocation_type => 'Event')").fetchone() == (202,)
    assert queue.execute("SELECT tenant_id FROM aws_lambda.deliveries").fetchall() == [("evented",)]
    queue.execute("RESET aws_lambda.tenant_id")
    queue.execute("CALL aws_lambda.deliver()")
    assert tenants_sent(emulator) == ["evented"]
