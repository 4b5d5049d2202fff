"""Every member of Lambda's Invoke (botocore's model) has a documented SQL counterpart, or a
documented reason it has none: docs/invoke-api.md. A botocore upgrade that adds a member
fails here until the table says what SQL does with it; every SQL name the table gives
exists in the installed extension."""

import os
import re

import botocore.session

from conftest import ROOT

DOC = os.path.join(ROOT, "docs", "invoke-api.md")
ROW = re.compile(r"^\| (InvocationRequest|InvocationResponse) \| `(\w+)` \| ([^|]+) \| (.+) \|$")
# Words in backticks that are values, not SQL names.
VALUES = {"failed"}


def documented():
    with open(DOC) as doc:
        return {(m.group(1), m.group(2)): m.group(4) for m in map(ROW.match, doc.read().splitlines()) if m}


def model_members():
    operation = botocore.session.get_session().get_service_model("lambda").operation_model("Invoke")
    return {(shape.name, member) for shape in (operation.input_shape, operation.output_shape)
            for member in shape.members}


def test_every_member_of_invoke_in_botocores_model_is_in_the_table():
    assert set(documented()) == model_members()


def test_every_sql_name_the_table_gives_exists(db):
    functions = {name for (name,) in db.execute(
        "SELECT proname FROM pg_proc WHERE pronamespace = 'aws_lambda'::regnamespace")}
    parameters = {name for (names,) in db.execute(
        "SELECT proargnames FROM pg_proc WHERE pronamespace = 'aws_lambda'::regnamespace "
        "AND proargnames IS NOT NULL") for name in names}
    columns = {name for (name,) in db.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'aws_lambda.deliveries'::regclass "
        "AND attnum > 0 AND NOT attisdropped")}
    sources = "\n".join(source for (source,) in db.execute(
        "SELECT prosrc FROM pg_proc WHERE pronamespace IN ('aws_lambda'::regnamespace, "
        "'aws_lambda_internal'::regnamespace)"))
    checked = 0
    for member, counterpart in documented().items():
        for name in re.findall(r"`([^`]+)`", counterpart):
            if name == "aws_lambda.deliveries":
                assert columns, (member, name)
            elif name.startswith("aws_lambda.deliveries."):
                assert name.split(".")[2] in columns, (member, name)
            elif re.fullmatch(r"aws_lambda\.\w+", name):
                short = name.split(".")[1]
                assert short in functions or f"'{name}'" in sources, (member, name)
            elif re.fullmatch(r"[a-z_]+", name) and name not in VALUES:
                assert name in parameters, (member, name)
            else:
                continue
            checked += 1
    assert checked >= 30
