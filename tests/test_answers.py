"""The function's answer: every valid JSON answer comes back, every other one is LM005.

BAD_ANSWERS is the canonical table of answers that are refused (docs/errors.md's error
section lists them): json and jsonb each refuse what PostgreSQL's json or jsonb input
refuses, with a DETAIL saying why, and invoke_many makes each one that item's error
row. A function error's text is cut in DETAIL (and so in the server log) and kept
whole in invoke_many's payload column and aws_lambda.deliveries.response; with
log_type => 'Tail' the last lines of the function's log reach the HINT, and
log_result is kept in invoke_many's error rows and in aws_lambda.deliveries.
"""

import base64
import json
import sys

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plpy_lambda import answers, errors
from conftest import request_id_line

DEEP = 3000  # deeper than Python's json recurses
NOT_JSON = "the function's payload is not JSON"
NOT_JSONB = "jsonb cannot hold the function's payload"
UNPAIRED = "an unpaired UTF-16 surrogate"

# (answer, refused by, Invalid response reason): "both" json and jsonb, or "jsonb" only.
BAD_ANSWERS = [
    (b"NaN", "both", f"{NOT_JSON}: NaN is not a JSON number"),
    (b"Infinity", "both", f"{NOT_JSON}: Infinity is not a JSON number"),
    (b'{"total": -Infinity}', "both", f"{NOT_JSON}: -Infinity is not a JSON number"),
    (b'{"a": 1,}', "both", NOT_JSON),
    (b"{'a': 1}", "both", NOT_JSON),
    (b'"tab\there"', "both", NOT_JSON),
    (b"\xef\xbb\xbf{}", "both", NOT_JSON),  # a UTF-8 byte order mark
    (b"1 2", "both", NOT_JSON),
    (b'"caf\xe9"', "both", "the function's payload is not UTF-8"),  # Latin-1
    (b"[" * 5001 + b"]" * 5001, "both", "the function's payload is nested deeper than 5,000 levels"),
    (b'"a\\u0000b"', "jsonb", f"{NOT_JSONB}: it has \\u0000 (a NUL character)"),
    (b'"\\ud800"', "jsonb", f"{NOT_JSONB}: it has \\ud800, {UNPAIRED}"),
    (b'"\\udc00"', "jsonb", f"{NOT_JSONB}: it has \\udc00, {UNPAIRED}"),
    (b'"\\ud800\\u0041"', "jsonb", f"{NOT_JSONB}: it has \\ud800, {UNPAIRED}"),
    (b"1e131072", "jsonb", f"{NOT_JSONB}: the number 1e131072 is outside numeric's range"),
    (b"[1e-16384]", "jsonb", f"{NOT_JSONB}: the number 1e-16384 is outside numeric's range"),
]

# Valid JSON that Python's json refuses or stumbles on, and jsonb holds.
GOOD_ANSWERS = [
    b"9" * 5000,  # over Python's 4,300-digit int conversion limit
    b"-1." + b"2" * 5000 + b"e-7",
    b'{"n": ' + b"1" * 131072 + b"}",
    b"[" * DEEP + b"]" * DEEP,
    b'{"a":' * 5000 + b"1" + b"}" * 5000,  # the documented depth
    b'"\\ud83d\\ude00 \\\\ud800 \\\\u0000"',  # a surrogate pair; escaped backslashes
    b'"\xf0\x9f\x98\x80"',
]


@pytest.fixture(autouse=True)
def no_faults_left(emulator):
    yield
    emulator.clear_faults()


def answers_with(emulator, body, function="simple", count=1, **params):
    """The next call of function gets exactly this body (bytes) as its answer."""
    emulator.set_fault(function, "raw", count=count,
                       body_base64=base64.b64encode(body).decode(), **params)


def error_of(conn, sql, *params):
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(sql, params)
    return caught.value.diag


def reason_of(detail):
    prefix, suffix = "AWS Lambda client returned 'Invalid response: ", "'."
    assert detail.startswith(prefix) and detail.endswith(suffix), detail
    return detail[len(prefix):-len(suffix)]


# -- what comes back -------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["json", "jsonb"])
@pytest.mark.parametrize("body", GOOD_ANSWERS, ids=lambda b: f"{b[:12]!r}..{len(b)}")
def test_every_valid_json_answer_comes_back(db, emulator, body, kind):
    answers_with(emulator, body)
    (payload, same) = db.execute(
        f"SELECT r.payload::text, r.payload::text = %s::{kind}::text "
        f"FROM aws_lambda.invoke('simple', '{{}}'::{kind}) AS r", [body.decode()]).fetchone()
    assert same
    if kind == "json":
        assert payload == body.decode()


@pytest.mark.parametrize("body, refused_by, reason", BAD_ANSWERS,
                         ids=[f"{b[:14]!r}" for b, _, _ in BAD_ANSWERS])
def test_every_bad_answer_is_lm005_with_its_reason(db, emulator, body, refused_by, reason):
    for kind in ("json", "jsonb"):
        answers_with(emulator, body)
        sql = f"SELECT payload::text FROM aws_lambda.invoke('simple', '{{}}'::{kind})"
        if refused_by == "jsonb" and kind == "json":
            assert db.execute(sql).fetchone() == (body.decode(),)
            continue
        diag = error_of(db, sql)
        assert (diag.sqlstate, diag.message_primary) == ("LM005", "invoke API failed")
        assert reason_of(diag.message_detail) == reason
        if refused_by == "jsonb":
            assert "json overloads" in diag.message_hint
    assert db.execute("SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)").fetchone() == (200,)


def test_a_syntax_error_says_where_in_the_hint(db, emulator):
    answers_with(emulator, b'{\n  "a" 1\n}')
    diag = error_of(db, "SELECT aws_lambda.invoke('simple', '{}'::json)")
    assert reason_of(diag.message_detail) == NOT_JSON
    assert diag.message_hint == "Expecting ':' delimiter at line 2, column 7.\n" + request_id_line(emulator)
    answers_with(emulator, b"[" * DEEP + b"1,]" + b"]" * (DEEP - 1))  # found by the deep scanner
    diag = error_of(db, "SELECT aws_lambda.invoke('simple', '{}'::json)")
    assert reason_of(diag.message_detail) == NOT_JSON
    assert diag.message_hint == (f"Unexpected input at line 1, column {DEEP + 3:,}.\n"
                                 + request_id_line(emulator))


# The check agrees with PostgreSQL's own json and jsonb input, case by case.
EDGES = [b for b, _, _ in BAD_ANSWERS if b != b'"caf\xe9"'] + GOOD_ANSWERS + [
    b"-0", b"-", b"01", b"1.", b".5", b"1E+5", b"1e", b"tru", b"[1,]", b"[]]", b'{"a" 1}', b"{1:2}",
    b'"\\x"', b'"\\u12"', b'"\\/"', b'"\x7f"', b" \t\n\r1 \n", b'"\\\\u0000"', b'"\\\\\\u0000"',
    b'"\\ud800\\\\udc00"', b'"\\uD83D\\uDE00"', b"1e1073741822", b"0e1073741822", b"0e1073741823",
    b"-0.0E+1073741823", b"0e1073741824", b"0e-1073741823", b"0e-1073741822", b"1e+0000000000001",
    b"12e131070", b"0.01e131074", b"0.01e131073",
    b"1.5e-16382", b"1.5e-16383", b"0." + b"0" * 16383, b"0." + b"0" * 16384 + b"e1",
    b"1" + b"0" * 131072, b"-" + b"9" * 131072, b"[" * 5000 + b"1" + b"]" * 4999,
    b'["' + b"9" * 20000 + b'", "1e999999999999"]',  # numbers' look-alikes in strings
]


def test_the_check_agrees_with_postgresql(db, cluster, monkeypatch):
    """Except for depth: PostgreSQL goes as deep as max_stack_depth allows (some 13,000
    levels at 2 MB), the extension to MAX_DEPTH. The check follows the cluster's major
    (in a backend it finds the major itself: see the next test)."""
    monkeypatch.setattr(answers, "server_major", cluster.major)
    for body in EDGES:
        answer = answers.check(body)
        for kind in ("json", "jsonb"):
            try:
                db.execute(f"SELECT %s::{kind} IS NULL", [body.decode()])
                holds = True
            except psycopg.Error:
                holds = False
            problem = answer.problem_for(kind)
            if problem is not None and "deeper than" in problem.reason:
                continue
            assert (problem is None) == holds, (body[:40], kind)


# JSON as Python writes it (NaN included), the same with one character changed, and text
# made of JSON's characters.
DUMPED = st.builds(
    lambda value, indent: json.dumps(value, indent=indent),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                             max_size=3),
                 max_leaves=8),
    st.sampled_from([None, 0, 1, "\t"]))
EDITED = st.builds(lambda text, at, put: text[:at % (len(text) + 1)] + put + text[at % (len(text) + 1) + 1:],
                   DUMPED, st.integers(0, 60), st.sampled_from(["", ",", "]", "}", "\\", '"', "\x01", " ", "e"]))
JSONISH = st.one_of(DUMPED, EDITED, st.text(alphabet='{}[]:," \t\n\\u0aeE.-+19truefalsnNI\x01\u00e9',
                                            max_size=24))


@settings(max_examples=3000, deadline=None, derandomize=True, database=None)
@given(JSONISH)
def test_json_is_checked_without_the_json_module_as_the_json_module_checks_it(text):
    """answers._valid, json's C scanner alone, accepts what json.JSONDecoder with the same
    hooks accepts, and nothing else."""
    decoder = json.JSONDecoder(parse_int=str, parse_float=str, parse_constant=answers._refuse_constant,
                               object_pairs_hook=answers._no_object)
    try:
        decoder.decode(text)
        expected = True
    except (ValueError, answers._NotANumber):
        expected = False
    assert answers._valid(text) == expected


def test_the_depth_limit_holds_whatever_python_s_recursion_limit(monkeypatch):
    """A function of the same backend may raise Python's recursion limit: JSON nested
    deeper than MAX_DEPTH is still refused, and is never handed to json's recursive C
    scanner."""
    monkeypatch.setattr(sys, "getrecursionlimit", lambda: 20_000)
    deep = answers.MAX_DEPTH + 1
    calls = []
    monkeypatch.setattr(answers, "_valid", lambda text: calls.append(len(text)) or False)
    problem = answers.check(b"[" * deep + b"]" * deep).problem_for("json")
    assert problem is not None and "deeper than 5,000" in problem.reason
    assert calls == []
    assert answers.check(b"[" * 4000 + b"]" * 4000).problem_for("json") is None


def test_jsonb_takes_an_exponent_of_int_max_over_2_from_postgresql_16_on(db, cluster, emulator):
    """numeric takes 0e1073741823 from 16 on (its exponent is read digit by digit, up to
    INT_MAX / 2 included), not before: the check in the server follows the server's major."""
    answers_with(emulator, b"0e1073741823")
    sql = "SELECT payload::text FROM aws_lambda.invoke('simple', '{}'::jsonb)"
    if cluster.major >= 16:
        assert db.execute(sql).fetchone() == ("0",)
    else:
        diag = error_of(db, sql)
        assert (diag.sqlstate, reason_of(diag.message_detail)) == (
            "LM005", f"{NOT_JSONB}: the number 0e1073741823 is outside numeric's range")


# -- invoke_many: each bad answer is that item's error row --------------------------------

@pytest.mark.parametrize("kind", ["json", "jsonb"])
def test_invoke_many_gives_a_bad_answer_its_own_row(db, emulator, kind):
    bodies = [b"NaN", b"9" * 5000, b'"\\u0000"', b"[" * DEEP + b"]" * DEEP]
    for body in bodies:
        answers_with(emulator, body)  # in this order, one call at a time
    rows = db.execute(f"""
        SELECT ordinality, status_code, octet_length(payload::text), error_sqlstate, error_detail
        FROM aws_lambda.invoke_many('simple', array_fill('{{}}'::{kind}, ARRAY[5]),
                                    max_concurrency => 1)""").fetchall()
    nan = "AWS Lambda client returned 'Invalid response: the function's payload is not JSON: " \
          "NaN is not a JSON number'."
    nul = ("AWS Lambda client returned 'Invalid response: jsonb cannot hold the function's "
           "payload: it has \\u0000 (a NUL character)'.")
    assert rows[0] == (1, None, None, "LM005", nan)
    assert rows[1] == (2, 200, 5000, None, None)
    assert rows[2] == ((3, None, None, "LM005", nul) if kind == "jsonb" else (3, 200, 8, None, None))
    assert rows[3] == (4, 200, 2 * DEEP, None, None)
    assert rows[4][:2] == (5, 200)


# -- function errors: cut in DETAIL, whole where they are kept ----------------------------

BIG = 2 * 1024 * 1024  # characters of the function's error message


def test_a_long_function_error_is_cut_in_detail_and_the_server_log(db, cluster, emulator):
    event = json.dumps({"size": BIG // 2, "char": "é"})  # 2 bytes each in UTF-8
    (size, message) = db.execute(f"""
        SELECT octet_length(payload::text), length(payload ->> 'errorMessage')
        FROM aws_lambda.invoke_many('raises', ARRAY['{event}']::json[])""").fetchone()
    assert message == BIG // 2 and size > BIG  # the whole payload, in the error row
    logged = len(cluster.server_log())
    diag = error_of(db, "SELECT aws_lambda.invoke('raises', %s::json)", event)
    assert diag.sqlstate == "LM010"
    start = '{"errorMessage": "'
    tail = f'... [cut: {size:,} bytes in all]".'
    assert diag.message_detail == ('"raises" returned error "Unhandled", details: "' + start
                                   + "é" * (errors.DETAIL_CHARS - len(start)) + tail)
    log = cluster.server_log()[logged:]
    assert tail in log and len(log) < 3 * errors.DETAIL_CHARS + 2000


def test_invoke_many_keeps_the_error_payload_when_its_type_holds_it(db, emulator):
    body = b'{"errorMessage": "bad \\u0000", "errorType": "ValueError"}'
    for kind, expected in [("json", body.decode()), ("jsonb", None)]:
        answers_with(emulator, body, function_error="Unhandled")
        answers_with(emulator, b"not JSON \x00 at all", function_error="Unhandled")
        rows = db.execute(f"""
            SELECT payload::text, error_sqlstate, error_detail
            FROM aws_lambda.invoke_many('simple', array_fill('{{}}'::{kind}, ARRAY[2]),
                                        max_concurrency => 1)""").fetchall()
        assert rows[0][:2] == (expected, "LM010")
        assert rows[1][:2] == (None, "LM010")
        assert rows[1][2].endswith('details: "not JSON \ufffd at all".')  # NUL cannot be text


# -- the function's log -----------------------------------------------------------------

def test_a_failing_functions_log_reaches_psql(psql, emulator):
    out = psql("SELECT * FROM aws_lambda.invoke('fail', '{}'::json, log_type => 'Tail');")
    lines = out.rstrip("\n").split("\n")
    assert lines[0] == "ERROR:  lambda invocation failed"
    assert lines[1].startswith('DETAIL:  "fail" returned error "Unhandled", details: "{"errorMessage": ')
    assert lines[2] == "HINT:  Last lines of the function's log:"
    context = next(n for n, line in enumerate(lines) if line.startswith(
        "CONTEXT:  PL/pgSQL function aws_lambda_internal._no_error(text,text,text,text) line "))
    log = lines[3:context - 1]
    assert lines[context - 1] == request_id_line(emulator)  # the HINT's last line
    assert 3 <= len(log) <= answers.LOG_TAIL_LINES
    assert "fail is about to raise" in log
    assert "[ERROR] RuntimeError: fail.py always raises (event was {})" in log
    assert log[-2].startswith("END RequestId: ") and log[-1].startswith("REPORT RequestId: ")
    assert lines[context + 1:] == [
        "PL/pgSQL function aws_lambda_internal._raise_failure() line 6 at RETURN",
        "while creating return value", 'PL/Python function "_invoke_json"',
        'SQL function "invoke" statement 1']


def test_without_tail_there_is_no_log_in_the_hint(db, emulator):
    diag = error_of(db, "SELECT aws_lambda.invoke('fail', '{}'::json)")
    assert diag.sqlstate == "LM010" and diag.message_hint == request_id_line(emulator)


def test_the_log_in_the_hint_is_bounded(db):
    diag = error_of(db, """SELECT aws_lambda.invoke('raises', '{"lines": 50}'::json, log_type => 'Tail')""")
    log = diag.message_hint.split("\n")[1:-1]  # between the header and the request id
    assert len(log) == answers.LOG_TAIL_LINES
    assert "raises: log line 50 " in log and "raises: log line 40 " not in log
    diag = error_of(db, """SELECT aws_lambda.invoke('raises', '{"size": 100000}'::json, log_type => 'Tail')""")
    log = diag.message_hint.split("\n", 1)[1].rsplit("\n", 1)[0]
    assert len(log) == 3 + answers.LOG_TAIL_CHARS and log.startswith("...")


def test_a_log_window_that_starts_inside_a_character_is_decoded(db, emulator):
    text = ("é" * 3000 + "\nthe last line\n").encode()
    window = text[-4096:]  # what Lambda sends is the last 4 KB: here it starts mid-character
    assert 0x80 <= window[0] <= 0xBF
    answers_with(emulator, b'{"errorMessage": "x"}', function_error="Unhandled",
                 log_base64=base64.b64encode(window).decode())
    diag = error_of(db, "SELECT aws_lambda.invoke('simple', '{}'::json, log_type => 'Tail')")
    header, first, last, request_id = diag.message_hint.split("\n")
    assert request_id == request_id_line(emulator)
    assert header == "Last lines of the function's log:"
    assert first == "..." + "é" * (answers.LOG_TAIL_CHARS - len("\nthe last line"))
    assert last == "the last line"
    answers_with(emulator, b'{"errorMessage": "x"}', function_error="Unhandled", log_base64="not base64!")
    diag = error_of(db, "SELECT aws_lambda.invoke('simple', '{}'::json, log_type => 'Tail')")
    assert diag.sqlstate == "LM010" and diag.message_hint == request_id_line(emulator)


def test_invoke_many_error_rows_keep_the_log(db):
    (log,) = db.execute("""
        SELECT convert_from(decode(log_result, 'base64'), 'utf-8')
        FROM aws_lambda.invoke_many('fail', ARRAY['{}']::json[], log_type => 'Tail')""").fetchone()
    assert "fail is about to raise" in log and "[ERROR] RuntimeError" in log


def test_a_bad_answer_also_shows_the_log(db, emulator):
    answers_with(emulator, b"NaN", log="returning NaN\n")
    diag = error_of(db, "SELECT aws_lambda.invoke('simple', '{}'::json, log_type => 'Tail')")
    assert diag.sqlstate == "LM005"
    assert diag.message_hint == ("Last lines of the function's log:\nreturning NaN\n"
                                 + request_id_line(emulator))


# -- commit-time delivery ---------------------------------------------------------------

def queued(conn, function="simple", payload="{}", log_type="None"):
    (delivery_id,) = conn.execute(
        "SELECT aws_lambda.invoke_on_commit(%s, %s::json, invocation_type => 'RequestResponse', "
        "log_type => %s)", [function, payload, log_type]).fetchone()
    return delivery_id


def delivered(conn, delivery_id):
    conn.execute("CALL aws_lambda.deliver()")
    return conn.execute("""
        SELECT status, attempts, status_code, octet_length(response::text), last_error,
               convert_from(decode(log_result, 'base64'), 'utf-8')
        FROM aws_lambda.deliveries WHERE id = %s""", [delivery_id]).fetchone()


def test_deliveries_store_every_valid_json_answer(queue, emulator):
    for body in (b"9" * 5000, b"[" * DEEP + b"]" * DEEP, b'"\\u0000"'):
        answers_with(emulator, body)
        assert delivered(queue, queued(queue))[:5] == ("succeeded", 1, 200, len(body), None)


def test_a_delivery_whose_answer_is_not_json_is_dead_and_says_why(queue, emulator):
    answers_with(emulator, b"NaN", log="returning NaN\n")
    delivery_id = queued(queue, log_type="Tail")
    status, attempts, code, size, last_error, log = delivered(queue, delivery_id)
    assert (status, attempts, code, size, log) == ("dead", 1, 200, None, "returning NaN\n")
    assert last_error == (
        "LM005: invoke API failed\n"
        "DETAIL: AWS Lambda client returned 'Invalid response: the function's payload is not JSON: "
        "NaN is not a JSON number'.\n"
        "HINT: Not retried: the function ran, and its answer is unusable (see DETAIL). "
        f"SELECT aws_lambda.redeliver({delivery_id}) sends it again.\n"
        "Last lines of the function's log:\nreturning NaN\n" + request_id_line(emulator))


def test_a_failed_delivery_keeps_the_whole_error_and_the_log(queue):
    delivery_id = queued(queue, "raises", json.dumps({"size": BIG}), log_type="Tail")
    status, attempts, code, size, last_error, log = delivered(queue, delivery_id)
    assert (status, attempts, code) == ("failed", 1, 200)
    assert size > BIG
    (message,) = queue.execute("SELECT length(response ->> 'errorMessage') FROM aws_lambda.deliveries "
                               "WHERE id = %s", [delivery_id]).fetchone()
    assert message == BIG
    assert f"... [cut: {size:,} bytes in all]\"." in last_error
    assert len(last_error) < errors.DETAIL_CHARS + 2 * answers.LOG_TAIL_CHARS
    assert "Traceback (most recent call last):" in log
    assert "Last lines of the function's log:" in last_error


def test_a_deep_error_payload_is_kept_too(queue, emulator):
    body = b"[" * DEEP + b"]" * DEEP
    answers_with(emulator, body, function_error="Unhandled")
    assert delivered(queue, queued(queue))[:4] == ("failed", 1, 200, len(body))
