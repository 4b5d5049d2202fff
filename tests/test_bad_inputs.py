"""Bad input: every invoke argument checked before anything is sent.

BAD_INPUTS is the canonical table (docs/errors.md shows it): each
call is refused with a short error whose message names the argument, the
endpoint receives nothing, and the session goes on.
"""

import psycopg
import pytest

ARN = "arn:aws:lambda:us-east-1:123456789012:function:simple"
COMPOSITE = "aws_commons.create_lambda_function_arn('simple')"

# (argument, call, SQLSTATE)
BAD_INPUTS = [
    # NULL where a value is needed, in every overload
    ("function_name", "aws_lambda.invoke(NULL::text, '{}'::json)", "22004"),
    ("function_name", "aws_lambda.invoke(aws_commons.create_lambda_function_arn(NULL), '{}'::jsonb)", "22004"),
    ("function_name", "aws_lambda.invoke(NULL::aws_commons._lambda_function_arn_1, '{}'::json)", "22004"),
    ("payload", "aws_lambda.invoke('simple', NULL::jsonb)", "22004"),
    ("payloads", "aws_lambda.invoke_many('simple', ARRAY[['{}','{}'],['{}','{}']]::jsonb[])", "22023"),
    ("payloads", "aws_lambda.invoke_many('simple', '{{{\"{}\"}}}'::json[], invocation_type => 'Event')", "22023"),
    ("payload", f"aws_lambda.invoke({COMPOSITE}, NULL::json)", "22004"),
    ("invocation_type", "aws_lambda.invoke('simple', '{}'::jsonb, NULL, NULL)", "22004"),
    ("invocation_type", f"aws_lambda.invoke({COMPOSITE}, '{{}}'::json, NULL)", "22004"),
    ("log_type", "aws_lambda.invoke('simple', '{}'::json, log_type => NULL)", "22004"),
    ("log_type", f"aws_lambda.invoke({COMPOSITE}, '{{}}'::jsonb, 'RequestResponse', NULL)", "22004"),
    # names: empty, oversized, malformed
    ("function_name", "aws_lambda.invoke('', '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke(aws_commons.create_lambda_function_arn('', 'us-east-1'), '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke(repeat('x', 65), '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke(repeat('x', 1000000), '{}'::jsonb)", "22023"),
    ("function_name", "aws_lambda.invoke('bad name', '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke(' simple', '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke('sïmple', '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke('my.function', '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke('simple/../fail', '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke('simple?Qualifier=1', '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke('simple:', '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke('simple:1:2', '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke('simple:' || repeat('q', 129), '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke('(simple,us-east-1,extra)', '{}'::json)", "22023"),
    # malformed ARNs
    ("function_name", "aws_lambda.invoke('arn:aws:lambda:us-east-1:1234:function:simple', '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke('arn:aws:lambda:us-east-1:123456789012:simple', '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke('arn:aws:lambda:moon-1:123456789012:function:simple', '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke('arn:aws-cn:lambda:us-east-1:123456789012:function:simple', '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke('arn:aws:s3:::simple', '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke('ARN:AWS:LAMBDA:us-east-1:123456789012:function:simple', '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke('123456789012:function:', '{}'::json)", "22023"),
    # not ASCII: digits of other scripts, fullwidth forms, look-alikes (Python's \d and \w
    # would take them; Lambda's model does not)
    ("function_name", "aws_lambda.invoke('١٢٣٤٥٦٧٨٩٠١٢:function:simple', '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke('arn:aws:lambda:us-east-1:١٢٣٤٥٦٧٨٩٠١٢:function:simple', '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke('arn:aws:lambda:us-east-１:123456789012:function:simple', '{}'::jsonb)", "22023"),
    ("function_name", "aws_lambda.invoke('ｓｉｍｐｌｅ', '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke('simple' || chr(8203), '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke('simple:١', '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke(aws_commons.create_lambda_function_arn('s' || chr(1110) || 'mple', 'us-east-1'), '{}'::json)", "22023"),
    # what Lambda's model refuses: a region number of two digits, more than 256 characters
    ("function_name", "aws_lambda.invoke('arn:aws:lambda:us-east-10:123456789012:function:simple', '{}'::json)", "22023"),
    ("function_name", "aws_lambda.invoke('arn:aws:lambda:us-' || repeat('a', 50) || '-1:123456789012:function:'"
                      " || repeat('f', 64) || ':' || repeat('q', 128), '{}'::json)", "22023"),
    # regions: unknown, wrong case, empty, injected, conflicting
    ("region", "aws_lambda.invoke('simple', '{}'::json, 'moon-1')", "22023"),
    ("region", "aws_lambda.invoke('simple', '{}'::json, 'US-EAST-1')", "22023"),
    ("region", "aws_lambda.invoke('simple', '{}'::jsonb, '')", "22023"),
    ("region", "aws_lambda.invoke('simple', '{}'::json, 'us-east-1.evil.example')", "22023"),
    ("region", "aws_lambda.invoke(aws_commons.create_lambda_function_arn('simple', 'moon-1'), '{}'::json)", "22023"),
    ("region", f"aws_lambda.invoke('{ARN}', '{{}}'::json, 'us-west-2')", "22023"),
    ("region", f"aws_lambda.invoke(aws_commons.create_lambda_function_arn('{ARN}', 'us-west-2'), '{{}}'::jsonb)", "22023"),
    ("region", "aws_lambda.invoke('(simple,us-west-2)', '{}'::json, 'us-east-1')", "22023"),
    ("region", "aws_lambda.invoke('simple', '{}'::json, 'us-east-١')", "22023"),
    ("region", "aws_lambda.invoke('simple', '{}'::jsonb, 'us-east-１')", "22023"),
    ("region", "aws_lambda.invoke(aws_commons.create_lambda_function_arn('simple', 'us-east-१'), '{}'::json)", "22023"),
    ("region", "aws_lambda.invoke('simple', '{}'::json, 'us-east-10')", "22023"),
    ("region", "aws_lambda.invoke('simple', '{}'::json, 'us-' || repeat('a', 60) || '-1')", "22023"),
    # invocation and log types: unknown, wrong case, empty
    ("invocation_type", "aws_lambda.invoke('simple', '{}'::json, invocation_type => 'event')", "22023"),
    ("invocation_type", "aws_lambda.invoke('simple', '{}'::jsonb, invocation_type => 'REQUESTRESPONSE')", "22023"),
    ("invocation_type", f"aws_lambda.invoke({COMPOSITE}, '{{}}'::json, 'Async')", "22023"),
    ("invocation_type", "aws_lambda.invoke('simple', '{}'::json, invocation_type => '')", "22023"),
    ("invocation_type", "aws_lambda.invoke('simple', '{}'::json, invocation_type => 'DryRun ')", "22023"),
    ("log_type", "aws_lambda.invoke('simple', '{}'::json, log_type => 'tail')", "22023"),
    ("log_type", f"aws_lambda.invoke({COMPOSITE}, '{{}}'::jsonb, log_type => 'NONE')", "22023"),
    ("log_type", "aws_lambda.invoke('simple', '{}'::json, log_type => 'Full')", "22023"),
    ("log_type", "aws_lambda.invoke('(simple,us-east-1)', '{}'::json, 'Event', 'tail')", "22023"),
    # contexts: not an object, too large
    ("context", "aws_lambda.invoke('simple', '{}'::json, context => '[1]'::json)", "22023"),
    ("context", "aws_lambda.invoke('simple', '{}'::jsonb, context => '\"text\"'::jsonb)", "22023"),
    ("context", f"aws_lambda.invoke({COMPOSITE}, '{{}}'::json, context => 'null'::json)", "22023"),
    ("context", f"aws_lambda.invoke({COMPOSITE}, '{{}}'::jsonb, context => '42'::jsonb)", "22023"),
    ("context", "aws_lambda.invoke('simple', '{}'::json, context => json_build_object('k', repeat('v', 2700)))", "54000"),
    # qualifiers: empty, oversized, malformed, wrong case, conflicting
    ("qualifier", "aws_lambda.invoke('simple', '{}'::json, qualifier => '')", "22023"),
    ("qualifier", "aws_lambda.invoke('simple', '{}'::json, qualifier => repeat('q', 129))", "22023"),
    ("qualifier", "aws_lambda.invoke('simple', '{}'::jsonb, qualifier => 'v1.0')", "22023"),
    ("qualifier", f"aws_lambda.invoke({COMPOSITE}, '{{}}'::json, qualifier => 'bad qualifier')", "22023"),
    ("qualifier", "aws_lambda.invoke('simple', '{}'::json, qualifier => '$latest')", "22023"),
    ("qualifier", "aws_lambda.invoke('simple', '{}'::json, qualifier => '١')", "22023"),
    ("qualifier", f"aws_lambda.invoke({COMPOSITE}, '{{}}'::jsonb, qualifier => 'v１')", "22023"),
    ("qualifier", "aws_lambda.invoke('simple:1', '{}'::json, qualifier => '2')", "22023"),
    ("qualifier", f"aws_lambda.invoke('{ARN}:1', '{{}}'::jsonb, qualifier => 'custom_version')", "22023"),
    ("qualifier", "aws_lambda.invoke('(simple,us-east-1)', '{}'::json, 'Event', 'None', '{}', '5'::json)", "22023"),
    # payloads over Lambda's limits
    ("payload", "aws_lambda.invoke('simple', json_build_object('x', repeat('x', 6291456)))", "54000"),
    ("payload", f"aws_lambda.invoke({COMPOSITE}, jsonb_build_object('x', repeat('x', 6291456)))", "54000"),
    ("payload", "aws_lambda.invoke('simple', json_build_object('x', repeat('x', 6291456)), invocation_type => 'DryRun')", "54000"),
    ("payload", "aws_lambda.invoke('simple', json_build_object('x', repeat('x', 1048576)), invocation_type => 'Event')", "54000"),
]


@pytest.mark.parametrize("argument, call, sqlstate", BAD_INPUTS)
def test_bad_input_is_refused_naming_the_argument_and_nothing_is_sent(db, emulator, argument, call, sqlstate):
    with pytest.raises(psycopg.Error) as caught:
        db.execute(f"SELECT * FROM {call}")
    diag = caught.value.diag
    assert diag.sqlstate == sqlstate
    if sqlstate == "54000":
        assert diag.message_primary.startswith(f"{argument} is too large: ")
    else:
        assert diag.message_primary.startswith(f"invalid value for argument {argument}: ")
    assert len(diag.message_primary) < 300  # short, even for a megabyte of input
    assert "Traceback" not in (diag.context or "") and "Error" not in diag.message_primary
    assert emulator.requests == []
    assert db.execute("SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)").fetchone() == (200,)


@pytest.mark.parametrize("argument, value, character", [
    ("region", "us-east-١", "U+0661 ARABIC-INDIC DIGIT ONE"),
    ("region", "us-east-１", "U+FF11 FULLWIDTH DIGIT ONE"),
    ("function_name", "١٢٣٤٥٦٧٨٩٠١٢:function:simple", "U+0661 ARABIC-INDIC DIGIT ONE"),
    ("function_name", "ｓｉｍｐｌｅ", "U+FF53 FULLWIDTH LATIN SMALL LETTER S"),
    ("function_name", "s\u0456mple", "U+0456 CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I"),
    ("qualifier", "v１", "U+FF11 FULLWIDTH DIGIT ONE"),
])
def test_a_non_ascii_character_is_named_in_the_hint(db, emulator, argument, value, character):
    """'us-east-１' looks like us-east-1: the hint says which character is not."""
    args = {"function_name": "simple", "region": None, "qualifier": None, argument: value}
    with pytest.raises(psycopg.Error) as caught:
        db.execute("SELECT aws_lambda.invoke(%(function_name)s, '{}'::json, %(region)s, "
                   "qualifier => %(qualifier)s)", args)
    diag = caught.value.diag
    assert diag.sqlstate == "22023"
    assert diag.message_primary.startswith(f"invalid value for argument {argument}: ")
    assert character in diag.message_hint and "are ASCII" in diag.message_hint
    assert emulator.requests == []


def test_the_table_is_large_and_covers_every_argument():
    assert len(BAD_INPUTS) >= 30
    arguments = {argument for argument, _, _ in BAD_INPUTS}
    assert arguments == {"function_name", "payload", "payloads", "region", "invocation_type", "log_type",
                         "context", "qualifier"}


def test_null_in_an_optional_argument_means_its_default(db, emulator):
    row = db.execute("""SELECT status_code, executed_version FROM aws_lambda.invoke(
        'simple', '{}'::json, NULL, 'RequestResponse', 'None', NULL, NULL)""").fetchone()
    assert row == (200, "$LATEST")
    row = db.execute("""SELECT status_code FROM aws_lambda.invoke(
        aws_commons.create_lambda_function_arn('simple', NULL), '{}'::jsonb, context => NULL)""").fetchone()
    assert row == (200,)
    assert len(emulator.requests) == 2


@pytest.mark.parametrize("argument, value, right", [
    ("invocation_type", "event", "Event"), ("invocation_type", "dryrun", "DryRun"),
    ("log_type", "TAIL", "Tail"),
])
def test_a_wrong_case_value_gets_a_hint_with_the_right_one(db, argument, value, right):
    with pytest.raises(psycopg.Error) as caught:
        db.execute(f"SELECT aws_lambda.invoke('simple', '{{}}'::json, {argument} => %s)", (value,))
    assert caught.value.diag.message_hint == f'Values are case-sensitive: write "{right}".'


def test_payloads_at_the_limits_are_sent(db, emulator):
    # A JSON string of exactly the limit: the quotes count.
    row = db.execute("""SELECT status_code FROM aws_lambda.invoke('simple',
        ('"' || repeat('x', 6291456 - 2) || '"')::json, invocation_type => 'DryRun')""").fetchone()
    assert row == (204,)
    row = db.execute("""SELECT status_code FROM aws_lambda.invoke('simple',
        ('"' || repeat('x', 1048576 - 2) || '"')::jsonb, invocation_type => 'Event')""").fetchone()
    assert row == (202,)
    assert [len(r.body) for r in emulator.requests] == [6291456, 1048576]
