"""What the function answered, made fit for SQL: JSON that json or jsonb holds, a log tail.

A payload reaches SQL through a `payload::json` or `payload::jsonb` cast (invoke's in
aws_lambda_internal._invoke_json or _invoke_jsonb, invoke_many's in its shell). A
cast that fails would end the whole statement (in invoke_many: the whole batch) with
PostgreSQL's own error, so every answer is checked here first, the way PostgreSQL's
input functions check it, and refused as "Invalid response" (LM005) when it fails.

- json (and the `response` column of aws_lambda.deliveries) holds any JSON text
  (RFC 8259) in UTF-8 that is nested at most MAX_DEPTH deep. Not JSON: NaN, Infinity
  and -Infinity (Python's json writes them), trailing commas, single quotes, control
  characters in strings, bytes that are not UTF-8.
- jsonb also refuses `\\u0000`, an unpaired UTF-16 surrogate escape (`\\ud800`) and
  numbers outside numeric's range (more than 131,072 digits before the point, more
  than 16,383 after it).

Numbers are never converted (a valid 5,000-digit number is fine; Python would refuse
to convert it) and objects are not built. Nesting deeper than Python's json can
recurse is checked by a scanner that does not recurse. Also: the function's log
tail (X-Amz-Log-Result) decoded for a HINT.

A valid answer is checked by json's own C scanner (_json) alone: the json module
imports re, which imports enum, and the three would be a third of a new connection's
first call. The json module is imported only to say why an answer is refused.
"""

import sys

try:
    from _json import make_scanner as _make_scanner
except ImportError:  # a Python without json's C accelerator: the json module does it all
    _make_scanner = None

# Nesting of arrays and objects. PostgreSQL's json parser takes some 150 bytes of stack
# a level: at the default max_stack_depth (2 MB) it reaches about 13,000.
MAX_DEPTH = 5000
LOG_TAIL_LINES = 10  # what a HINT shows of the function's log
LOG_TAIL_CHARS = 1000

# numeric's limits (PostgreSQL's numeric.c): a decimal weight below 4 x 32768, a display
# scale of at most 16383, and an exponent from -(INT_MAX / 2) to INT_MAX / 2. Whether those
# two ends are in depends on the major: 16 and later read the exponent digit by digit and
# take both; 15 and earlier (strtol, then a range check) take neither. Only a zero can be
# held with such an exponent (0e1073741823): the major is looked up then, and only then.
_NUMERIC_WEIGHT = 131072
_NUMERIC_SCALE = 16383
_NUMERIC_EXPONENT = 1073741823
_EXPONENT_ENDS_FROM = 16  # the first major whose numeric takes an exponent of ±(INT_MAX / 2)

# The major of the PostgreSQL whose jsonb the checks follow: found on first need, in a
# backend, from its data directory (a backend's working directory); None outside one, which
# follows the stricter majors. The tests set it to their cluster's.
server_major = None

NOT_JSON = "the function's payload is not JSON"
_TOO_DEEP = f"the function's payload is nested deeper than {MAX_DEPTH:,} levels"
_NOT_UTF8 = "the function's payload is not UTF-8"
_NOT_JSONB = "jsonb cannot hold the function's payload"
_JSON_HINT = "The json overloads (a '...'::json payload) return it as it is."
_DEPTH_HINT = (f"aws_lambda returns JSON nested at most {MAX_DEPTH:,} levels deep "
               "(arrays and objects).")


class Problem:
    """Why an answer is refused: the reason (after "Invalid response: ") and a HINT."""

    __slots__ = ("reason", "hint")

    def __init__(self, reason, hint=None):
        self.reason = reason
        self.hint = hint

    def __repr__(self):
        return f"Problem({self.reason!r}, {self.hint!r})"


class Answer:
    """A response body, checked: its text (None when it is not UTF-8) and why json
    cannot hold it (problem, or None). Whether jsonb holds it is worked out on first use."""

    __slots__ = ("body", "text", "problem", "_jsonb_problem")

    def __init__(self, body):
        self.body = body
        try:
            self.text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            self.text = None
            self.problem = Problem(_NOT_UTF8, f"Byte {error.start:,} of {len(body):,} does not "
                                              "belong to a UTF-8 character.")
        else:
            self.problem = _json_problem(self.text)
        self._jsonb_problem = _UNCHECKED

    def problem_for(self, result_type):
        """Why the requested type ('json' or 'jsonb') cannot hold the answer, or None."""
        if self.problem is not None or result_type != "jsonb":
            return self.problem
        if self._jsonb_problem is _UNCHECKED:
            self._jsonb_problem = _jsonb_problem(self.text)
        return self._jsonb_problem


_UNCHECKED = object()


def check(body):
    """The Answer for a response body (bytes)."""
    return Answer(body)


def _jsonb_problem(text):
    """Why jsonb cannot hold JSON text that json holds, or None."""
    import re  # only for jsonb, and kept compiled by re

    number = _out_of_range(text) if re.search(_MAYBE_OUT_OF_RANGE, text) else None
    if number is not None:
        shown = number if len(number) <= 40 else (
            f"{number[:20]}...{number[-12:]} ({len(number):,} characters)")
        return Problem(f"{_NOT_JSONB}: the number {shown} is outside numeric's range",
                       _JSON_HINT)
    if "\\u" in text:
        escape = _escape_problem(text)
        if escape is not None:
            return Problem(f"{_NOT_JSONB}: {escape}", _JSON_HINT)
    return None


# Objects are checked, not built; numbers are never converted (str keeps their text);
# NaN and Infinity, which Python's json reads, are refused.
def _refuse_constant(name):
    raise _NotANumber(name)


def _no_object(_pairs):
    return None


class _Rules:
    """What json.JSONDecoder(parse_int=str, parse_float=str, ...) gives its C scanner."""

    strict = True
    object_hook = None
    object_pairs_hook = staticmethod(_no_object)
    parse_int = parse_float = str
    parse_constant = staticmethod(_refuse_constant)


_scan_value = _make_scanner(_Rules()) if _make_scanner is not None else None
_SPACE = " \t\n\r"  # JSON's whitespace
# Where a number jsonb may not hold can be: a run as long as numeric's scale (the
# weight's limit is longer), or an exponent. A match in a string is possible: the
# numbers are then looked at one by one.
_MAYBE_OUT_OF_RANGE = r"(?<![-+.0-9])[-+.0-9]{%d}|[0-9][eE]" % _NUMERIC_SCALE


def _valid(text):
    """True when text is JSON that json holds, as json.JSONDecoder.decode finds it with
    the hooks above, but by its C scanner alone; False when it is not, or when the
    scanner cannot tell (nested deeper than it recurses): the json module then says why."""
    if _scan_value is None:
        return False
    start = len(text) - len(text.lstrip(_SPACE))
    try:
        end = _scan_value(text, start)[1]
    except Exception:  # StopIteration (no value), _NotANumber, RecursionError, or, for
        return False   # what json.decoder would name, SystemError when it is not imported
    return end == len(text) or not text[end:].strip(_SPACE)


def _json_problem(text, numbers=None):
    """Why json cannot hold text, or None. numbers (a _Numbers): note in it the first
    number jsonb cannot hold."""
    # Python's json (its C scanner too) recurses a level per array or object, up to
    # Python's recursion limit: where that is above MAX_DEPTH and the text may be
    # nested deeper, only the scanner below, which keeps its own stack, is used.
    if (len(text) <= MAX_DEPTH or sys.getrecursionlimit() <= MAX_DEPTH
            or text.count("[") + text.count("{") <= MAX_DEPTH):
        if numbers is None and _valid(text):
            return None
        import json

        decoder = json.JSONDecoder(
            parse_int=str if numbers is None else numbers.integer,
            parse_float=str if numbers is None else numbers.decimal,
            parse_constant=_refuse_constant, object_pairs_hook=_no_object)
        try:
            decoder.decode(text)
            return None
        except _NotANumber as error:
            return Problem(f"{NOT_JSON}: {error.args[0]} is not a JSON number")
        except ValueError as error:
            return Problem(NOT_JSON, _position_hint(error))
        except RecursionError:
            pass  # deeper than Python's json recurses: scan without recursion
    return _scan(text, numbers if numbers is not None else _Numbers())


def _out_of_range(text):
    """The first number in JSON text (that json holds) that numeric cannot hold, or None."""
    numbers = _Numbers()
    _json_problem(text, numbers)
    return numbers.out_of_range


def _position_hint(error):
    """Where the JSON decoder stopped, as a HINT."""
    import json

    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno:,}, column {error.colno:,}."
    return None


class _NotANumber(Exception):
    pass


class _Numbers:
    """parse_int/parse_float hooks: never convert; note the first number jsonb cannot hold."""

    __slots__ = ("out_of_range",)

    def __init__(self):
        self.out_of_range = None  # the first number outside numeric's range

    def integer(self, text):
        if len(text) > _NUMERIC_WEIGHT and self.out_of_range is None and not numeric_holds(text):
            self.out_of_range = text

    def decimal(self, text):
        if ((len(text) > _NUMERIC_SCALE or "e" in text or "E" in text)
                and self.out_of_range is None and not numeric_holds(text)):
            self.out_of_range = text


def numeric_holds(number):
    """Whether PostgreSQL's numeric (so jsonb) can hold this JSON number."""
    mantissa, _, exponent = number.lower().partition("e")
    shift = 0
    if exponent:
        if len(exponent.lstrip("+-").lstrip("0")) > 10:
            return False
        shift = int(exponent)
        if not -_NUMERIC_EXPONENT <= shift <= _NUMERIC_EXPONENT:
            return False
        if abs(shift) == _NUMERIC_EXPONENT and (_major() or 0) < _EXPONENT_ENDS_FROM:
            return False
    whole, _, fraction = mantissa.lstrip("-").partition(".")
    if len(fraction) - shift > _NUMERIC_SCALE:
        return False
    digits = whole + fraction
    significant = digits.lstrip("0")
    if not significant:
        return True  # zero
    weight = len(whole) - 1 - (len(digits) - len(significant)) + shift
    return weight < _NUMERIC_WEIGHT


def _major():
    """server_major, read first (in a backend) from the data directory's PG_VERSION."""
    global server_major
    if server_major is None:
        try:
            with open("PG_VERSION") as file:
                server_major = int(file.read().strip())
        except (OSError, ValueError):
            return None
    return server_major


# The patterns below are compiled on first use (re keeps them): only a jsonb answer with
# \u escapes, or one nested deeper than Python's json recurses, needs them.
# \u escapes that are escapes: (?<!\\)(?:\\\\)* starts at a run of backslashes and
# steps over escaped ones.
_SURROGATE_OR_NUL = r"(?<!\\)(?:\\\\)*\\u([dD][89a-fA-F][0-9a-fA-F]{2}|0000)"
_PAIR = rb"\\ud[89ab][0-9a-f]{2}\\ud[c-f]"


def _escape_problem(text):
    """What jsonb refuses among the \\u escapes of valid JSON text, or None."""
    import re

    # First at C speed: with escaped backslashes out of the way every backslash starts an
    # escape; no \u0000, and as many surrogate pairs as high and as low halves: fine.
    escapes = text.replace("\\\\", "__").encode("utf-8").lower()
    if b"\\u0000" not in escapes:
        highs = sum(escapes.count(b"\\ud" + half) for half in (b"8", b"9", b"a", b"b"))
        lows = sum(escapes.count(b"\\ud" + half) for half in (b"c", b"d", b"e", b"f"))
        if highs == lows and (not highs or len(re.findall(_PAIR, escapes)) == highs):
            return None
    waiting = None  # (end, escape) of a high surrogate that needs its low half next
    for match in re.finditer(_SURROGATE_OR_NUL, text):
        code = int(match.group(1), 16)
        if waiting is not None:
            if match.start(1) - 2 == waiting[0] and code >= 0xDC00:
                waiting = None
                continue
            break
        if code == 0:
            return "it has \\u0000 (a NUL character)"
        if code >= 0xDC00:
            return f"it has \\u{match.group(1)}, an unpaired UTF-16 surrogate"
        waiting = (match.end(), match.group(1))
    if waiting is not None:
        return f"it has \\u{waiting[1]}, an unpaired UTF-16 surrogate"
    return None


# One JSON token after optional whitespace, for the scanner below: what PostgreSQL's
# json lexer accepts (strings without control characters, RFC 8259 numbers).
_TOKEN = (
    "[ \t\n\r]*(?:"
    r'(?P<string>"[^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*")'
    r"|(?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"
    r"|(?P<literal>true|false|null)"
    r"|(?P<open>[\[{])|(?P<close>[\]}])|(?P<comma>,)|(?P<colon>:))"
)
_WHITESPACE = "[ \t\n\r]*"
# What the scanner expects next.
_VALUE, _FIRST_VALUE, _FIRST_KEY, _KEY, _COLON, _NEXT = range(6)


def _scan(text, numbers):
    """Why json cannot hold text, or None, found by a scanner that keeps its own stack:
    for text nested deeper than Python's json recurses. numbers: as for _json_problem."""
    import re

    stack = []
    state = _VALUE
    position = 0
    scanner = re.compile(_TOKEN).scanner(text)
    while True:
        match = scanner.match()
        if match is None:
            break
        position = match.end()
        kind = match.lastgroup
        if kind == "open" or kind == "string" or kind == "number" or kind == "literal":
            if kind == "string" and (state == _FIRST_KEY or state == _KEY):
                state = _COLON
                continue
            if state != _VALUE and state != _FIRST_VALUE:
                return _unexpected_at(text, match.start(kind))
            if kind == "open":
                stack.append(match.group(kind))
                if len(stack) > MAX_DEPTH:
                    return Problem(_TOO_DEEP, _DEPTH_HINT)
                state = _FIRST_VALUE if match.group(kind) == "[" else _FIRST_KEY
                continue
            if kind == "number" and numbers.out_of_range is None:
                numbers.decimal(match.group(kind))
            state = _NEXT
        elif kind == "close":
            bracket = match.group(kind)
            opener = "[" if bracket == "]" else "{"
            if not stack or stack[-1] != opener or not (
                    state == _NEXT or state == (_FIRST_VALUE if opener == "[" else _FIRST_KEY)):
                return _unexpected_at(text, match.start(kind))
            stack.pop()
            state = _NEXT
        elif kind == "comma":
            if state != _NEXT or not stack:
                return _unexpected_at(text, match.start(kind))
            state = _VALUE if stack[-1] == "[" else _KEY
        else:  # colon
            if state != _COLON:
                return _unexpected_at(text, match.start(kind))
            state = _VALUE
    position = re.compile(_WHITESPACE).match(text, position).end()
    if position != len(text) or state != _NEXT or stack:
        return _unexpected_at(text, position)
    return None


def _unexpected_at(text, position):
    """The Problem of JSON text that goes wrong at position."""
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return Problem(NOT_JSON, f"Unexpected input at line {line:,}, column {column:,}.")


def log_tail(log_result):
    """The last lines of the function's log, from X-Amz-Log-Result (base64 of the last
    4 KB, which may begin inside a UTF-8 character): at most LOG_TAIL_LINES lines and
    LOG_TAIL_CHARS characters; None when there is none or it is not base64."""
    if not log_result:
        return None
    import base64  # only with log_type => 'Tail'
    import binascii

    try:
        raw = base64.b64decode(log_result, validate=True)
    except (binascii.Error, ValueError):
        return None
    start = 0
    while start < min(3, len(raw)) and 0x80 <= raw[start] <= 0xBF:
        start += 1  # the rest of a character cut off at the window's start
    text = raw[start:].decode("utf-8", "replace").replace("\x00", "\ufffd")
    lines = text.replace("\r\n", "\n").rstrip("\n").split("\n")
    tail = "\n".join(lines[-LOG_TAIL_LINES:])
    if len(tail) > LOG_TAIL_CHARS:
        tail = "..." + tail[-LOG_TAIL_CHARS:]
    return tail or None
