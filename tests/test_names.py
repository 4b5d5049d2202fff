"""Function names, regions and the psql-variable rule, without PostgreSQL (pure code)."""

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plpy_lambda import arguments, names
from plpy_lambda.errors import BadArgument, TooLarge


@pytest.mark.parametrize(
    "text, name, qualifier, region, account",
    [
        ("my-function", "my-function", None, None, None),
        ("my-function:v1", "my-function", "v1", None, None),
        ("my_function:$LATEST", "my_function", "$LATEST", None, None),
        ("111122223333:function:my-function", "my-function", None, None, "111122223333"),
        ("111122223333:function:my-function:7", "my-function", "7", None, "111122223333"),
        ("arn:aws:lambda:us-west-2:111122223333:function:my-function",
         "my-function", None, "us-west-2", "111122223333"),
        ("arn:aws:lambda:us-west-2:111122223333:function:my-function:prod",
         "my-function", "prod", "us-west-2", "111122223333"),
        ("arn:aws-cn:lambda:cn-north-1:111122223333:function:f", "f", None, "cn-north-1",
         "111122223333"),
        ("arn:aws-us-gov:lambda:us-gov-west-1:111122223333:function:f", "f", None,
         "us-gov-west-1", "111122223333"),
    ],
)
def test_every_rds_name_form_parses(text, name, qualifier, region, account):
    ref = names.parse_function_name(text)
    assert (ref.name, ref.qualifier, ref.region, ref.account) == (name, qualifier, region, account)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "bad name",
        "x" * 65,
        "f:" + "q" * 129,
        "arn:aws:lambda:us-west-2:1111:function:f",
        "arn:aws:lambda:aws-region:111122223333:function:f",
        "arn:aws-cn:lambda:us-east-1:111122223333:function:f",
        "arn:aws:s3:::bucket",
        "f/../../admin",
        "f?Qualifier=x",
    ],
)
def test_bad_names_are_refused_naming_the_argument(text):
    with pytest.raises(BadArgument) as caught:
        names.parse_function_name(text)
    assert "argument function_name" in caught.value.message


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-2", "cn-northwest-1", "us-gov-east-1"])
def test_real_regions_are_accepted(region):
    assert names.check_region(region) == region


@pytest.mark.parametrize("region", ["aws-region", "US-EAST-1", "us-east-1.evil.example",
                                    "us-east-1/x", "", "localhost"])
def test_region_cannot_move_the_endpoint_host(region):
    with pytest.raises(BadArgument):
        names.check_region(region)


def test_partition_table_matches_botocore():
    import botocore.loaders

    data = botocore.loaders.create_loader().load_data("partitions")
    theirs = {(p["id"], p["regionRegex"].strip("^$").replace("\\-", "-"), p["outputs"]["dnsSuffix"])
              for p in data["partitions"]}
    assert set(names.PARTITIONS) <= theirs


# Regions near the partitions' patterns: their prefixes, the word and the number, with
# what should make them fail (no word, a hyphen in it, Unicode letters and digits).
REGIONS = st.builds(
    lambda prefix, word, number: f"{prefix}{word}{number}",
    st.sampled_from(["us-", "eu-", "cn-", "eusc-de-", "us-iso-", "us-isob-", "eu-isoe-",
                     "us-isof-", "us-gov-", "mx-", "eusc-", "u-", "us", "xx-", "US-", ""]),
    st.text(alphabet="abzAZ09_-\u00e9", max_size=8),
    st.sampled_from(["-1", "-12", "-", "1", "-\u0661", "-1a", ""]))


def test_every_partition_pattern_is_one_the_matcher_reads():
    for _, pattern, _ in names.PARTITIONS:
        assert pattern.endswith(names.REGION_TAIL) and pattern.count("(") <= 1, pattern


@settings(max_examples=2000, deadline=None, derandomize=True, database=None)
@given(REGIONS)
def test_regions_are_matched_as_botocore_patterns_match_them(region):
    """names.py matches PARTITIONS without re; here re says what each pattern matches."""
    expected = next((partition for partition, pattern, _ in names.PARTITIONS
                     if re.fullmatch(pattern, region, re.ASCII)), None)
    assert names.partition_of(region) == expected


@pytest.mark.parametrize(
    "literal, expected",
    [
        ("(my-function,us-east-1)", ("my-function", "us-east-1")),
        ("(my-function,)", ("my-function", None)),
        ('("arn:aws:lambda:us-east-1:111122223333:function:f",)',
         ("arn:aws:lambda:us-east-1:111122223333:function:f", None)),
        ('("a""b",us-east-1)', ('a"b', "us-east-1")),
        ("my-function", None),
        ("(a,b,c)", None),
    ],
)
def test_row_literals(literal, expected):
    assert names.parse_row_literal(literal) == expected


def test_psql_variable_event_call_is_read_as_the_composite_overload():
    # invoke(:'aws_lambda_arn_1', '{}'::json, 'Event') reaches the text overload as:
    call = arguments.from_sql("(my-function,us-west-2)", "{}", "Event")
    assert (call.function.name, call.region, call.invocation_type, call.log_type) == (
        "my-function", "us-west-2", "Event", "None")


def test_psql_variable_tail_call_shifts_every_argument():
    call = arguments.from_sql("(my-function,us-west-2)", "{}", "RequestResponse", "Tail")
    assert (call.invocation_type, call.log_type) == ("RequestResponse", "Tail")


def test_psql_variable_with_context_and_qualifier():
    call = arguments.from_sql("(my-function,us-west-2)", "{}", "RequestResponse", "None",
                              '{"a": 1}', json.dumps("custom_version"))
    assert call.qualifier == "custom_version"
    assert call.client_context is not None


def test_row_literal_with_named_arguments_is_not_shifted():
    call = arguments.from_sql("(my-function,us-west-2)", "{}", None, "Event")
    assert (call.region, call.invocation_type) == ("us-west-2", "Event")


def test_region_contradicting_the_arn_is_an_error():
    with pytest.raises(BadArgument, match="contradicts"):
        arguments.from_sql("arn:aws:lambda:us-east-1:111122223333:function:f", "{}", "us-west-2")


def test_qualifier_contradicting_the_name_is_an_error():
    with pytest.raises(BadArgument, match="argument qualifier"):
        arguments.from_sql("f:v1", "{}", qualifier="v2")


def test_payload_limits_depend_on_invocation_type():
    big = '"' + "x" * (arguments.ASYNC_PAYLOAD_LIMIT) + '"'
    arguments.from_sql("f", big, invocation_type="RequestResponse")
    with pytest.raises(TooLarge):
        arguments.from_sql("f", big, invocation_type="Event")


def test_context_must_be_a_small_json_object():
    with pytest.raises(BadArgument, match="JSON object"):
        arguments.from_sql("f", "{}", context="[1, 2]")
    with pytest.raises(TooLarge):
        arguments.from_sql("f", "{}", context=json.dumps({"k": "v" * 3000}))
