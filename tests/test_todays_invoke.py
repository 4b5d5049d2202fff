"""Today's Invoke beyond RDS's: the $LATEST.PUBLISHED qualifier, and the refusals that came
with it (NoPublishedVersionException, RecursiveInvocationException, ModeNotSupportedException),
each an LM004 with the service's message in DETAIL and what to do in HINT.

The local endpoint: echo has a published version 1 (echo@1.py); noop has none;
recursive_loop is always stopped as a recursive loop; async_only takes Event calls only.
"""

import psycopg
import pytest

from conftest import request_id_line


def test_latest_published_runs_the_newest_published_version(db, emulator):
    for call in ("aws_lambda.invoke('echo:$LATEST.PUBLISHED', '{}'::json)",
                 "aws_lambda.invoke('echo', '{}'::json, qualifier => '$LATEST.PUBLISHED')",
                 "aws_lambda.invoke(aws_commons.create_lambda_function_arn("
                 "'arn:aws:lambda:us-east-1:123456789012:function:echo:$LATEST.PUBLISHED'), '{}'::json)"):
        assert db.execute(f"SELECT status_code, executed_version FROM {call}").fetchone() == (200, "1")
    assert [r.qualifier for r in emulator.requests] == ["$LATEST.PUBLISHED"] * 3


def test_latest_published_works_for_invoke_many_and_deliveries(queue, emulator):
    db = queue
    assert db.execute("SELECT executed_version FROM aws_lambda.invoke_many('echo', "
                      "ARRAY['{}']::json[], qualifier => '$LATEST.PUBLISHED')").fetchall() == [("1",)]
    db.execute("SELECT aws_lambda.invoke_on_commit('echo:$LATEST.PUBLISHED', '{}'::json, "
               "invocation_type => 'RequestResponse')")
    db.execute("CALL aws_lambda.deliver()")
    assert db.execute("SELECT status, qualifier, executed_version FROM aws_lambda.deliveries"
                      ).fetchall() == [("succeeded", "$LATEST.PUBLISHED", "1")]


REFUSALS = {
    "no published version": (
        "SELECT * FROM aws_lambda.invoke('noop', '{}'::json, qualifier => '$LATEST.PUBLISHED')",
        "NoPublishedVersionException",
        "The function has no published version for $LATEST.PUBLISHED: publish one, or call "
        "$LATEST or a version."),
    "recursive loop": (
        "SELECT * FROM aws_lambda.invoke('recursive_loop', '{}'::json)",
        "RecursiveInvocationException",
        "Lambda's recursive loop detection stopped the invocation: the function is invoked in a "
        "loop with other AWS resources. Break the loop, or change the function's recursive loop "
        "setting."),
    "mode not supported": (
        "SELECT * FROM aws_lambda.invoke('async_only', '{}'::json)",
        "ModeNotSupportedException",
        "The function does not support this invocation_type (RequestResponse on a function "
        "configured for asynchronous invocation only, or the other way round)."),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_todays_refusals_are_lm004_with_the_services_message_and_a_hint(db, emulator, case):
    statement, error_type, advice = REFUSALS[case]
    with pytest.raises(psycopg.Error) as caught:
        db.execute(statement)
    diag = caught.value.diag
    assert (diag.sqlstate, diag.message_primary) == ("LM004", "invoke API failed")
    assert diag.message_detail.startswith(f"AWS Lambda client returned '{error_type}: ")
    assert diag.message_hint == f"The service answered HTTP 400. {advice}\n{request_id_line(emulator)}"
    assert db.execute("SELECT 1").fetchone() == (1,)  # the session goes on


def test_the_mode_a_function_supports_is_the_one_that_works(db, emulator):
    assert db.execute("SELECT status_code FROM aws_lambda.invoke('async_only', '{}'::json, "
                      "invocation_type => 'Event')").fetchone() == (202,)


def test_a_refused_delivery_is_dead_at_once(queue, emulator):
    queue.execute("SELECT aws_lambda.invoke_on_commit('async_only', '{}'::json, "
                  "invocation_type => 'RequestResponse')")
    queue.execute("CALL aws_lambda.deliver()")
    status, attempts, last_error = queue.execute(
        "SELECT status, attempts, last_error FROM aws_lambda.deliveries").fetchone()
    assert (status, attempts) == ("dead", 1)
    assert last_error.startswith("LM004: invoke API failed\nDETAIL: AWS Lambda client returned "
                                 "'ModeNotSupportedException: ")
