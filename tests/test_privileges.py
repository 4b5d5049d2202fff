"""Who may invoke, and what an unprivileged role cannot change."""

import psycopg
import pytest



@pytest.fixture
def app_role(db, cluster):
    """A fresh login role with no grants; yields a function that connects as it."""
    db.execute("DROP ROLE IF EXISTS app_user")
    db.execute("CREATE ROLE app_user LOGIN")
    connections = []

    def connect(dbname="postgres", **kwargs):
        conn = psycopg.connect(cluster.dsn(dbname=dbname, user="app_user"), autocommit=True, **kwargs)
        connections.append(conn)
        return conn

    yield connect
    for conn in connections:
        conn.close()
    db.execute("DROP OWNED BY app_user")
    db.execute("DROP ROLE app_user")


def sqlstate_and_message(conn, sql):
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(sql)
    return caught.value.diag.sqlstate, caught.value.diag.message_primary


def test_only_the_administrator_can_invoke_after_install(db, app_role):
    app = app_role()
    assert sqlstate_and_message(app, "SELECT * FROM aws_lambda.invoke('simple', '{}'::json)") == (
        "42501", "permission denied for schema aws_lambda")
    db.execute("GRANT USAGE ON SCHEMA aws_lambda TO app_user")
    assert sqlstate_and_message(app, "SELECT * FROM aws_lambda.invoke('simple', '{}'::json)") == (
        "42501", "permission denied for function invoke")


def test_the_guides_two_grants_are_all_an_application_role_needs(db, app_role):
    db.execute("GRANT USAGE ON SCHEMA aws_lambda TO app_user")
    db.execute("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA aws_lambda TO app_user")
    app = app_role()
    row = app.execute("""SELECT status_code FROM aws_lambda.invoke(
        aws_commons.create_lambda_function_arn('simple'), '{}'::json)""").fetchone()
    assert row == (200,)


def test_no_aws_lambda_function_is_executable_by_public(db):
    rows = db.execute("""
        SELECT p.oid::regprocedure::text FROM pg_proc p
        WHERE p.pronamespace = 'aws_lambda'::regnamespace
          AND (p.proacl IS NULL OR EXISTS (
                SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0))""").fetchall()
    assert rows == []


def test_only_what_deliver_runs_as_its_caller_is_executable_in_the_internal_schema(db):
    rows = db.execute("""
        SELECT p.oid::regprocedure::text FROM pg_proc p
        WHERE p.pronamespace = 'aws_lambda_internal'::regnamespace
          AND (p.proacl IS NULL OR EXISTS (
                SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0))
        ORDER BY 1""").fetchall()
    assert rows == [
        ("aws_lambda_internal._deliver_batch(integer,integer,text,text,timestamp with time zone,text)",),
        ("aws_lambda_internal._needs_primary(text)",),
        ("aws_lambda_internal._no_error(text,text,text,text)",),
        ("aws_lambda_internal._prune_deliveries(timestamp with time zone,double precision)",),
    ]


def test_one_grant_on_one_overload_is_enough_to_call_it(db, app_role):
    db.execute("GRANT USAGE ON SCHEMA aws_lambda TO app_user")
    db.execute("""GRANT EXECUTE ON FUNCTION
        aws_lambda.invoke(text, json, text, text, text, json, varchar) TO app_user""")
    app = app_role()
    assert app.execute("SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)").fetchone() == (200,)
    assert sqlstate_and_message(app, "SELECT * FROM aws_lambda.invoke('simple', '{}'::jsonb)") == (
        "42501", "permission denied for function invoke")
    db.execute("""GRANT EXECUTE ON FUNCTION aws_lambda.invoke_on_commit(
        text, jsonb, text, text, text, jsonb, varchar, text, text, text) TO app_user""")
    assert app.execute("SELECT aws_lambda.invoke_on_commit('simple', '{}'::jsonb)").fetchone()[0] > 0
    db.execute("DELETE FROM aws_lambda.deliveries")


@pytest.mark.parametrize("sql", [
    "SELECT * FROM aws_lambda_internal._operator_settings()",
    "SELECT * FROM aws_lambda_internal._invoke_json('simple', '{}', NULL, 'RequestResponse', 'None', "
    "NULL, NULL, NULL, false, NULL, NULL, now(), NULL, NULL, NULL)",
    "SELECT * FROM aws_lambda_internal._failure()",
    "SELECT aws_lambda_internal._check_queued('simple', NULL, 'Event', 'None', NULL, NULL, NULL, false, 2, NULL, NULL, NULL)",
    "SELECT aws_lambda_internal._load()",
    "SELECT aws_lambda_internal._redeliver(1)",
])
def test_internal_functions_stay_uncallable_with_the_guides_grants(db, app_role, sql):
    db.execute("GRANT USAGE ON SCHEMA aws_lambda TO app_user")
    db.execute("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA aws_lambda TO app_user")
    app = app_role()
    sqlstate, message = sqlstate_and_message(app, sql)
    assert sqlstate == "42501" and message.startswith("permission denied for function _")


def test_the_guides_grants_do_not_reveal_the_operators_settings(db, app_role):
    db.execute("GRANT USAGE ON SCHEMA aws_lambda TO app_user")
    db.execute("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA aws_lambda TO app_user")
    app = app_role()
    for sql in ["SELECT setting FROM pg_file_settings WHERE name = 'aws_lambda.endpoint_override'",
                "SELECT * FROM aws_lambda_internal._operator_settings()"]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(sql)


def test_public_functions_are_volatile_and_parallel_unsafe(db):
    rows = db.execute("""
        SELECT DISTINCT p.provolatile, p.proparallel, l.lanname FROM pg_proc p
        JOIN pg_language l ON l.oid = p.prolang
        WHERE p.pronamespace = 'aws_lambda'::regnamespace AND p.proname = 'invoke'""").fetchall()
    assert rows == [("v", "u", "sql")]


# A procedure that commits cannot carry a SET clause; it runs as its caller and every name
# in its body is schema-qualified. What invoke runs under its SECURITY DEFINER shells, which
# pin search_path (no role is granted these), has none: a SET clause costs every warm call
# some 5 us.
UNDER_INVOKE = {"aws_lambda_internal._invoke_json", "aws_lambda_internal._invoke_jsonb"}
# The default of aws_lambda.deliveries.origin: a SET clause would keep PostgreSQL from inlining
# it into every queued row's INSERT (some 9 us a row instead of 2); its one name is qualified.
INLINED = {"aws_lambda_internal._system_identifier"}
UNPINNED_CALLER_FUNCTIONS = {"aws_lambda.deliver"} | UNDER_INVOKE | INLINED


def test_the_default_of_origin_is_inlined_into_the_insert(db):
    """EXPLAIN VERBOSE shows the expression an INSERT evaluates: the function's body, not a
    call of it."""
    db.execute("CREATE TEMP TABLE origins (origin bigint DEFAULT aws_lambda_internal._system_identifier())")
    plan = "\n".join(row[0] for row in db.execute("EXPLAIN VERBOSE INSERT INTO origins DEFAULT VALUES"))
    db.execute("DROP TABLE origins")
    assert "pg_control_system()" in plan and "_system_identifier" not in plan, plan


def test_every_function_pins_its_search_path(db):
    rows = db.execute("""
        SELECT p.oid::regprocedure::text, p.pronamespace::regnamespace || '.' || p.proname,
               p.prosecdef
        FROM pg_proc p
        WHERE p.pronamespace IN ('aws_lambda'::regnamespace, 'aws_commons'::regnamespace,
                                 'aws_lambda_internal'::regnamespace)
          AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)""").fetchall()
    assert {name for _, name, _ in rows} == UNPINNED_CALLER_FUNCTIONS
    assert [signature for signature, _, definer in rows if definer] == []
    # Each runs under invoke's shells only: its callers are those shells, or each other.
    for name in UNDER_INVOKE:
        callers = db.execute("""
            SELECT p.pronamespace::regnamespace || '.' || p.proname, p.prosecdef
                   AND 'search_path=pg_catalog, pg_temp' = ANY (p.proconfig)
            FROM pg_proc p
            WHERE p.prosrc LIKE '%%' || %s || '(%%'""", [name]).fetchall()
        assert callers and all(pinned or caller in UNDER_INVOKE for caller, pinned in callers), \
            (name, callers)
        assert {caller for caller, pinned in callers if pinned} <= {"aws_lambda.invoke"}, callers


@pytest.mark.parametrize("how", ["SET", "ALTER ROLE", "ALTER DATABASE", "PGOPTIONS"])
def test_an_unprivileged_role_cannot_redirect_invocations(db, cluster, emulator, app_role, how):
    evil = "http://127.0.0.1:9"
    dbname = "postgres"
    if how == "ALTER DATABASE":
        dbname = "redirect_db"
        db.execute("DROP DATABASE IF EXISTS redirect_db (FORCE)")
        db.execute("CREATE DATABASE redirect_db OWNER app_user")
    with psycopg.connect(cluster.dsn(dbname=dbname), autocommit=True) as admin:
        admin.execute("CREATE EXTENSION IF NOT EXISTS aws_lambda CASCADE")
        admin.execute("GRANT USAGE ON SCHEMA aws_lambda TO app_user")
        admin.execute("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA aws_lambda TO app_user")
    try:
        first = app_role(dbname=dbname)
        if how in ("ALTER ROLE", "ALTER DATABASE"):
            # PostgreSQL itself refuses these to a non-superuser for a placeholder setting.
            target = "ROLE app_user" if how == "ALTER ROLE" else "DATABASE redirect_db"
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                first.execute(f"ALTER {target} SET aws_lambda.endpoint_override = '{evil}'")
        options = f"-c aws_lambda.endpoint_override={evil}" if how == "PGOPTIONS" else ""
        app = app_role(dbname=dbname, options=options)
        if how == "SET":
            app.execute(f"SET aws_lambda.endpoint_override = '{evil}'")
        if how in ("SET", "PGOPTIONS"):
            assert app.execute("SHOW aws_lambda.endpoint_override").fetchone() == (evil,)
        row = app.execute("SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)").fetchone()
        assert row == (200,)
        assert emulator.invocations("simple") == 1
    finally:
        db.execute("ALTER ROLE app_user RESET ALL")
        db.execute("DROP DATABASE IF EXISTS redirect_db (FORCE)")


def test_search_path_tricks_do_not_reach_our_code(db, app_role, emulator):
    db.execute("GRANT USAGE ON SCHEMA aws_lambda TO app_user")
    db.execute("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA aws_lambda TO app_user")
    db.execute("DROP SCHEMA IF EXISTS evil CASCADE")
    db.execute("CREATE SCHEMA evil AUTHORIZATION app_user")
    app = app_role()
    app.execute("""CREATE FUNCTION evil.current_setting(text, boolean) RETURNS text
                   LANGUAGE sql AS $$ SELECT 'hijacked' $$""")
    app.execute("""CREATE FUNCTION evil.pg_conf_load_time() RETURNS timestamptz
                   LANGUAGE sql AS $$ SELECT now() $$""")
    app.execute("""CREATE TABLE evil.pg_file_settings (name text, setting text, error text, seqno int)""")
    app.execute("""INSERT INTO evil.pg_file_settings VALUES ('aws_lambda.endpoint_override', 'http://127.0.0.1:9', NULL, 1)""")
    app.execute("SET search_path = evil, pg_catalog, public")
    row = app.execute("SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)").fetchone()
    assert row == (200,)
    db.execute("DROP SCHEMA evil CASCADE")
