"""Everything the extension defines is documented: each function, setting, column, SQLSTATE
and relay metric appears, by its exact name, in the README or a file of docs/."""

import glob
import os
import re

import pytest

from conftest import ROOT

DOCS = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
TEXT = "\n".join(open(path, encoding="utf-8").read() for path in DOCS)
CODE = {name: open(os.path.join(ROOT, name), encoding="utf-8").read()
        for name in ("plpy_lambda/errors.py", "plpy_lambda/settings.py", "plpy_lambda/relay.py",
                     "sql/aws_lambda.sql")}


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
