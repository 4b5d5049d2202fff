"""The documentation: every SQL example in the README and docs/ runs against a real cluster
and the local endpoint, and everything the extension defines (each function, setting,
column, SQLSTATE and relay metric) appears, by its exact name, in the README or docs/."""

import glob
import os
import re
import subprocess

import pytest

from conftest import ROOT

DOCS = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
TEXT = "\n".join(open(path, encoding="utf-8").read() for path in DOCS)
CODE = {name: open(os.path.join(ROOT, name), encoding="utf-8").read()
        for name in ("plpy_lambda/errors.py", "plpy_lambda/settings.py", "plpy_lambda/relay.py",
                     "sql/aws_lambda.sql")}


NOT_RUN = "<!-- example not run by tests/test_docs.py: "
# What the examples take for granted: the extension, a role app, and tables orders and
# customers (an order 7 that is new), and a database shop; each example has a database of
# its own.
PRELUDE = """
CREATE EXTENSION aws_lambda CASCADE;
CREATE TABLE orders (id int PRIMARY KEY, state text);
INSERT INTO orders VALUES (7, 'new');
CREATE TABLE customers (id int PRIMARY KEY, email text, plan text);
"""


def sql_examples():
    """(file, number, SQL, reason it is not run or None) for each ```sql block."""
    for path in DOCS:
        text = open(path, encoding="utf-8").read()
        for number, match in enumerate(re.finditer(r"```sql\n(.*?)```", text, re.S), start=1):
            before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            reason = before[len(NOT_RUN):].rstrip(" ->") if before.startswith(NOT_RUN) else None
            yield os.path.relpath(path, ROOT), number, match.group(1), reason


EXAMPLES = list(sql_examples())


@pytest.mark.parametrize("path, number, sql, reason", EXAMPLES,
                         ids=[f"{path}#{number}" for path, number, _, _ in EXAMPLES])
def test_every_sql_example_runs(cluster, emulator, path, number, sql, reason):
    if reason:
        pytest.skip(reason)
    database = "docs_" + re.sub(r"\W", "_", os.path.splitext(path)[0].lower()) + f"_{number}"
    cluster.psql(f"DROP DATABASE IF EXISTS {database}", check=True)
    cluster.psql(f"CREATE DATABASE {database}", check=True)
    cluster.psql("DO $$ BEGIN CREATE ROLE app; EXCEPTION WHEN duplicate_object THEN END $$;", check=True)
    if "DATABASE shop" in sql:
        cluster.psql("DROP DATABASE IF EXISTS shop", check=True)
        cluster.psql("CREATE DATABASE shop", check=True)
    try:
        cluster.psql(PRELUDE + sql, dbname=database, variables={"ON_ERROR_STOP": "1"}, check=True)
    except subprocess.CalledProcessError as failed:
        pytest.fail(f"{path}, SQL example {number} failed:\n{failed.output}")
    finally:
        cluster.psql(f"DROP DATABASE IF EXISTS {database}")


def test_the_examples_are_found_and_most_run():
    assert len(EXAMPLES) >= 15
    assert sum(reason is None for _, _, _, reason in EXAMPLES) >= len(EXAMPLES) - 2


def quoted(name):
    """Whether the documentation names it in code quotes (`name`, `name(...)` or `a.name`)."""
    return re.search(r"`[^`\n]*\b" + re.escape(name) + r"\b[^`\n]*`", TEXT) is not None


def test_every_public_function_is_documented(db):
    functions = [name for (name,) in db.execute("""
        SELECT DISTINCT n.nspname || '.' || p.proname FROM pg_proc AS p
        JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE n.nspname IN ('aws_lambda', 'aws_commons') ORDER BY 1""")]
    assert len(functions) >= 8
    assert [name for name in functions if not quoted(name)] == []


def test_every_setting_is_documented():
    settings = set(re.findall(r"\baws_lambda\.[a-z_]+(?=\W)", CODE["plpy_lambda/settings.py"])) | set(
        re.findall(r"current_setting\('(aws_lambda\.[a-z_]+)'", CODE["sql/aws_lambda.sql"]))
    assert len(settings) >= 12
    undocumented = [name for name in sorted(settings)
                    if not re.search(r"\|\s*`" + re.escape(name) + r"`\s*\|", TEXT)]
    assert undocumented == [], "not in a settings table"


@pytest.mark.parametrize("relation", ["aws_lambda.deliveries"])
def test_every_column_of_the_log_is_documented(db, relation):
    columns = [name for (name,) in db.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        [relation])]
    assert [name for name in columns if not re.search(r"\|\s*`" + name + r"`\s*\|", TEXT)] == []


def test_every_out_column_is_documented(db):
    columns = {name for (name,) in db.execute("""
        SELECT DISTINCT unnest(p.proargnames[array_length(p.proargtypes, 1) + 1:])
        FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE n.nspname = 'aws_lambda' AND p.proallargtypes IS NOT NULL""")}
    assert {"status_code", "payload", "request_id", "oldest_age"} <= columns
    assert sorted(name for name in columns if not quoted(name)) == []


def test_every_sqlstate_is_documented():
    codes = set(re.findall(r'^[A-Z_]+ = "([0-9A-Z]{5})"', CODE["plpy_lambda/errors.py"], re.M)) | set(
        re.findall(r"ERRCODE = '([0-9A-Z]{5})'", CODE["sql/aws_lambda.sql"]))
    assert {"LM001", "LM010", "22023", "25006"} <= codes
    assert sorted(code for code in codes if not quoted(code)) == []


def test_every_relay_metric_is_documented():
    metrics = {name + ("_total" if kind == "Counter" else "")
               for kind, name in re.findall(r'prom\.(Counter|Histogram|Gauge)\(\s*"(aws_lambda_[a-z_]+)"',
                                            CODE["plpy_lambda/relay.py"])}
    assert len(metrics) == 7
    assert sorted(name for name in metrics if not re.search(r"\|\s*`" + name + r"`\s*\|", TEXT)) == []
