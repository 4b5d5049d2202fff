"""aws_commons as RDS ships it: 1.2 by default, and 1.0 and 1.1 that update to the same 1.2.

Versions (public sources do not say what each RDS version added; this split follows the
order the services came to RDS): 1.0 the schema and _s3_uri_1 / create_s3_uri (aws_s3),
1.1 _aws_credentials_1 / create_aws_credentials, 1.2 _lambda_function_arn_1 /
create_lambda_function_arn (aws_lambda). The Makefile builds the one-script 1.2 from 1.0 and
the two updates; 1.0 and 1.1 reach 1.2 through aws_commons--1.0--1.1.sql and --1.1--1.2.sql.

The catalog snapshot lists every object of the extension with what a user can see of it
(signatures, defaults, volatility, security, settings, body, owner, privileges, columns,
comments, the update paths and psql's \\dx+). A fresh 1.2 and each updated one must give the
same snapshot, equal to tests/expected/<major>/aws_commons.txt for the server's PostgreSQL
major. After a deliberate change, rewrite it with UPDATE_EXPECTED=1 on each major and review
the diffs (tests/catalog.py takes the snapshot).
"""

import psycopg
import pytest

import catalog



def snapshot(cluster, dbname):
    return catalog.snapshot(cluster, dbname, "aws_commons", bodies=True)


@pytest.fixture
def database(cluster):
    """database(name) creates a fresh database (dropped afterwards) and returns a
    superuser connection to it."""
    made = []

    def create(name):
        cluster.psql(f"DROP DATABASE IF EXISTS {name}", check=True)
        cluster.psql(f"CREATE DATABASE {name}", check=True)
        conn = psycopg.connect(cluster.dsn(dbname=name), autocommit=True)
        made.append((name, conn))
        return conn

    yield create
    for name, conn in made:
        conn.close()
        cluster.psql(f"DROP DATABASE IF EXISTS {name}", check=True)


def versions_and_members(conn):
    version = conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'aws_commons'").fetchone()[0]
    return version, [what for _, _, what, _ in catalog.members(conn, "aws_commons")]


def test_each_version_has_its_objects(cluster, database):
    # PostgreSQL 17 and later also record each type's array type as a member of the extension.
    arrays = cluster.major >= 17
    conn = database("aws_commons_versions")
    conn.execute("CREATE EXTENSION aws_commons VERSION '1.0'")
    assert versions_and_members(conn) == ("1.0", [
        "function aws_commons.create_s3_uri(text,text,text)",
        "schema aws_commons",
        "type aws_commons._s3_uri_1",
        *(["type aws_commons._s3_uri_1[]"] if arrays else [])])
    conn.execute("ALTER EXTENSION aws_commons UPDATE TO '1.1'")
    assert versions_and_members(conn) == ("1.1", [
        "function aws_commons.create_aws_credentials(text,text,text)",
        "function aws_commons.create_s3_uri(text,text,text)",
        "schema aws_commons",
        "type aws_commons._aws_credentials_1",
        *(["type aws_commons._aws_credentials_1[]"] if arrays else []),
        "type aws_commons._s3_uri_1",
        *(["type aws_commons._s3_uri_1[]"] if arrays else [])])
    conn.execute("ALTER EXTENSION aws_commons UPDATE")
    assert versions_and_members(conn)[0] == "1.2"


@pytest.mark.parametrize("start", ["1.0", "1.1"])
def test_an_updated_aws_commons_is_a_fresh_1_2_and_the_expected_one(cluster, database, start):
    database("aws_commons_fresh").execute("CREATE EXTENSION aws_commons")
    updated = database("aws_commons_updated")
    updated.execute(f"CREATE EXTENSION aws_commons VERSION '{start}'")
    updated.execute("ALTER EXTENSION aws_commons UPDATE")

    fresh = snapshot(cluster, "aws_commons_fresh")
    assert snapshot(cluster, "aws_commons_updated") == fresh
    assert fresh == catalog.expected(cluster, "aws_commons", fresh)


def single_script_1_2(cluster, conn):
    """aws_commons 1.2 as the first releases' single script made it: the schema and the Lambda
    function ARN only (made here from a full 1.2 by taking the S3 and credentials types out)."""
    conn.execute("CREATE EXTENSION aws_commons")
    for function, type_ in [("create_s3_uri(text,text,text)", "_s3_uri_1"),
                            ("create_aws_credentials(text,text,text)", "_aws_credentials_1")]:
        conn.execute(f"ALTER EXTENSION aws_commons DROP FUNCTION aws_commons.{function}")
        conn.execute(f"DROP FUNCTION aws_commons.{function}")
        conn.execute(f"ALTER EXTENSION aws_commons DROP TYPE aws_commons.{type_}")  # and its array type
        conn.execute(f"DROP TYPE aws_commons.{type_}")
    assert versions_and_members(conn) == ("1.2", [
        "function aws_commons.create_lambda_function_arn(text,text)",
        "schema aws_commons",
        "type aws_commons._lambda_function_arn_1",
        *(["type aws_commons._lambda_function_arn_1[]"] if cluster.major >= 17 else [])])


def test_a_1_2_from_the_single_script_reaches_the_full_catalog_and_stays_1_2(cluster, database):
    database("aws_commons_fresh").execute("CREATE EXTENSION aws_commons")
    early = database("aws_commons_early")
    single_script_1_2(cluster, early)
    early.execute("ALTER EXTENSION aws_commons UPDATE TO '1.2-full'")  # as docs/install.md says
    early.execute("ALTER EXTENSION aws_commons UPDATE")
    assert versions_and_members(early)[0] == "1.2"
    assert snapshot(cluster, "aws_commons_early") == snapshot(cluster, "aws_commons_fresh")


def test_the_repair_changes_nothing_in_a_full_1_2(cluster, database):
    database("aws_commons_fresh").execute("CREATE EXTENSION aws_commons")
    full = database("aws_commons_full")
    full.execute("CREATE EXTENSION aws_commons")
    full.execute("ALTER EXTENSION aws_commons UPDATE TO '1.2-full'")
    full.execute("ALTER EXTENSION aws_commons UPDATE")
    assert snapshot(cluster, "aws_commons_full") == snapshot(cluster, "aws_commons_fresh")


def test_every_role_can_use_aws_commons_without_a_grant(cluster, database):
    conn = database("aws_commons_roles")
    conn.execute("CREATE EXTENSION aws_commons VERSION '1.0'")
    conn.execute("ALTER EXTENSION aws_commons UPDATE")
    conn.execute("DROP ROLE IF EXISTS commons_user")
    conn.execute("CREATE ROLE commons_user LOGIN")
    try:
        with psycopg.connect(cluster.dsn(dbname="aws_commons_roles", user="commons_user"),
                             autocommit=True) as user:
            row = user.execute("""SELECT
                aws_commons.create_s3_uri('bucket', 'path/file.csv', 'us-east-1')::text,
                aws_commons.create_aws_credentials('AKID', 'secret')::text,
                aws_commons.create_aws_credentials('AKID', 'secret', 'token')::text,
                aws_commons.create_lambda_function_arn('my-function')::text,
                aws_commons.create_lambda_function_arn('my-function', 'us-west-2')::text,
                (aws_commons.create_s3_uri('b', 'f', 'r')).file_path""").fetchone()
        assert row == ("(bucket,path/file.csv,us-east-1)", "(AKID,secret,)", "(AKID,secret,token)",
                       "(my-function,)", "(my-function,us-west-2)", "f")
    finally:
        conn.execute("DROP ROLE commons_user")


def test_invoke_takes_the_composite_of_an_aws_commons_updated_from_1_0(database, emulator):
    conn = database("aws_commons_invoke")
    conn.execute("CREATE EXTENSION aws_commons VERSION '1.0'")
    conn.execute("ALTER EXTENSION aws_commons UPDATE")
    conn.execute("CREATE EXTENSION aws_lambda CASCADE")
    emulator.reset()
    row = conn.execute("""SELECT status_code, payload::jsonb -> 'event', executed_version
        FROM aws_lambda.invoke(aws_commons.create_lambda_function_arn('echo', 'us-east-1'),
                               '{"from": "1.0"}'::json)""").fetchone()
    assert row == (200, {"from": "1.0"}, "$LATEST")
    row = conn.execute("""SELECT status_code, payload -> 'event'
        FROM aws_lambda.invoke(ROW('echo', NULL)::aws_commons._lambda_function_arn_1,
                               '{"jsonb": true}'::jsonb)""").fetchone()
    assert row == (200, {"jsonb": True})
    assert emulator.invocations("echo") == 2
