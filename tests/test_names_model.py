r"""names.py against Lambda's API model, property-based (pure code, no PostgreSQL).

The model is botocore's data/lambda/2015-03-31/service-2.json, read from the installed
botocore: the Invoke operation's FunctionName (shape NamespacedFunctionName) and
Qualifier (shape NumericLatestPublishedOrAliasQualifier), each a pattern plus length
limits. The service matches a pattern against the whole value, as Java's
String.matches does; translated to Python that is re.fullmatch with re.ASCII, because
Java's \d is [0-9] and Python's, without re.ASCII, is a digit of any script. Nothing
else needs translating: in a class, "0-9-_" is a range and then a literal hyphen, and
"$" is literal, in both languages; the test below pins that down. Regions and accounts
have no shape of their own in Invoke: they are checked inside an ARN.

The properties: whatever names.py accepts, the model accepts (for the text as given,
for the FunctionName we send, and for the qualifier we send); and names.py accepts
exactly what the model accepts minus the stricter rules listed in names.py's
docstring, written here again independently (regions from botocore's partitions.json,
not from names.PARTITIONS). Hypothesis runs derandomized: the same cases every run.
"""

import re
import string
from collections import Counter

import botocore.loaders
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from plpy_lambda import arguments, names
from plpy_lambda.errors import BadArgument

_LOADER = botocore.loaders.create_loader()
_MODEL = _LOADER.load_service_model("lambda", "service-2")
_INVOKE = _MODEL["shapes"][_MODEL["operations"]["Invoke"]["input"]["shape"]]["members"]
FUNCTION_NAME_SHAPE = _MODEL["shapes"][_INVOKE["FunctionName"]["shape"]]
QUALIFIER_SHAPE = _MODEL["shapes"][_INVOKE["Qualifier"]["shape"]]
BOTOCORE_PARTITIONS = [
    (p["id"], re.compile(p["regionRegex"], re.ASCII))
    for p in _LOADER.load_data("partitions")["partitions"]
]

PROFILE = settings(max_examples=600, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _java(pattern):
    """A Java pattern of the model as Python: ASCII classes; used with fullmatch."""
    return re.compile(pattern, re.ASCII)


_PATTERNS = {id(FUNCTION_NAME_SHAPE): _java(FUNCTION_NAME_SHAPE["pattern"]),
             id(QUALIFIER_SHAPE): _java(QUALIFIER_SHAPE["pattern"])}


def model_accepts(shape, text):
    return (shape.get("min", 0) <= len(text) <= shape.get("max", len(text))
            and _PATTERNS[id(shape)].fullmatch(text) is not None)


# -- the rules we state, written independently of names.py --------------------------

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
_QUALIFIER = re.compile(r"\$LATEST(\.PUBLISHED)?|[A-Za-z0-9_-]{1,128}", re.ASCII)
_ACCOUNT = re.compile(r"[0-9]{12}", re.ASCII)


def botocore_partition(region):
    found = [pid for pid, regex in BOTOCORE_PARTITIONS if regex.fullmatch(region)]
    assert len(found) <= 1, (region, found)
    return found[0] if found else None


def expected_region(region):
    """A region we accept: of a partition botocore knows, one DNS label, and one the
    model accepts in an ARN of that partition."""
    partition = botocore_partition(region)
    return (partition is not None and len(region) <= 63 and model_accepts(
        FUNCTION_NAME_SHAPE, f"arn:{partition}:lambda:{region}:123456789012:function:f"))


def expected_function_name(text):
    """What parse_function_name should accept: the model's language, narrowed to the
    four documented forms with our rules for each part."""
    if not model_accepts(FUNCTION_NAME_SHAPE, text):
        return False
    parts = text.split(":")
    if len(parts) in (1, 2):  # name, name:qualifier
        name, rest = parts[0], parts[1:]
    elif len(parts) in (3, 4):  # account:function:name[:qualifier]
        account, function, name, *rest = parts
        if function != "function" or not _ACCOUNT.fullmatch(account):
            return False
    elif len(parts) in (7, 8):  # arn:partition:lambda:region:account:function:name[:qualifier]
        arn, partition, service, region, account, function, name, *rest = parts
        if (arn, service, function) != ("arn", "lambda", "function"):
            return False
        if not _ACCOUNT.fullmatch(account) or not expected_region(region):
            return False
        if botocore_partition(region) != partition:
            return False
    else:
        return False
    if not _NAME.fullmatch(name):
        return False
    return not rest or _QUALIFIER.fullmatch(rest[0]) is not None


def expected_qualifier(qualifier):
    return _QUALIFIER.fullmatch(qualifier) is not None


# -- strategies ---------------------------------------------------------------------

OTHER_DIGITS = ("٠١٢٣٤٥٦٧٨٩"  # Arabic-Indic
                "۰۱۲۳۴۵۶۷۸۹"  # Extended Arabic-Indic (Persian)
                "०१२३४५६७८९"  # Devanagari
                "０１２３４５６７８９"  # fullwidth
                "𝟎𝟏𝟐𝟑")  # mathematical bold, outside the BMP
LOOKALIKES = ("ＡＢＣＸＹＺａｂｃｓｘｙｚ－＿：＄"  # fullwidth letters and punctuation
              "\u0131\u017f\u212a\u212b\u00e9\u00df"  # dotless i, long s, Kelvin, Angstrom: fold to ASCII
              "\u200b\u00a0\u2010\u2011\u2212\u0301"  # zero-width space, NBSP, hyphens, minus, accent
              "аеосрху")  # Cyrillic that looks Latin
ASCII_ODD = " \t\n/?#%.:$@[]^`{}\\\"'"
ODD_CHAR = st.one_of(st.sampled_from(OTHER_DIGITS), st.sampled_from(LOOKALIKES),
                     st.sampled_from(ASCII_ODD), st.characters())
NAME_CHARS = string.ascii_letters + string.digits + "-_"
LOWER = string.ascii_lowercase


@st.composite
def spoiled(draw, base):
    """A value from base, often as it is, else with one character replaced, inserted
    or deleted, or its case swapped."""
    text = draw(base)
    how = draw(st.sampled_from(("keep", "keep", "keep", "replace", "insert", "delete", "case")))
    if how == "keep" or not text:
        return text
    i = draw(st.integers(0, len(text) - 1))
    if how == "replace":
        return text[:i] + draw(ODD_CHAR) + text[i + 1:]
    if how == "insert":
        return text[:i] + draw(ODD_CHAR) + text[i:]
    if how == "delete":
        return text[:i] + text[i + 1:]
    return text.swapcase()


def _sized(alphabet, low, high):
    return st.integers(low, high).flatmap(
        lambda n: st.text(alphabet=alphabet, min_size=n, max_size=n))


def mostly(valid, odd):
    """Three valid values in four: a spoiled part is enough to refuse a whole ARN."""
    return st.one_of(valid, valid, valid, spoiled(st.one_of(valid, odd)))


REAL_REGIONS = sorted(region for partition in _LOADER.load_data("partitions")["partitions"]
                      for region in partition["regions"])
PREFIXES = ("us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx", "cn", "us-gov", "us-iso",
            "us-isob", "eu-isoe", "us-isof", "eusc-de", "eusc-fr", "xx", "aws", "u")
REGION = mostly(
    st.sampled_from(REAL_REGIONS),
    st.builds(lambda prefix, middle, number: f"{prefix}-{middle}-{number}",
              st.sampled_from(PREFIXES),
              st.one_of(st.text(LOWER, min_size=1, max_size=10), _sized(LOWER, 50, 60),
                        st.text(LOWER + "_-" + string.digits, min_size=1, max_size=6)),
              st.one_of(_sized(string.digits, 1, 1), _sized(string.digits, 0, 3),
                        st.sampled_from(OTHER_DIGITS))),
)
PARTITION = mostly(
    st.sampled_from([pid for pid, _ in BOTOCORE_PARTITIONS]),
    st.sampled_from(["", "AWS", "aws-CN", "awsx", "aws-", "aws-iso-z"]))
ACCOUNT = mostly(
    _sized(string.digits, 12, 12),
    st.one_of(_sized(string.digits, 11, 13), _sized(OTHER_DIGITS[:10], 12, 12),
              _sized(string.digits + OTHER_DIGITS, 12, 12)))
NAME = mostly(
    st.text(NAME_CHARS, min_size=1, max_size=20),
    st.one_of(_sized(NAME_CHARS, 62, 66), st.text(NAME_CHARS + ".", min_size=1, max_size=10)))
QUALIFIER = mostly(
    st.one_of(st.sampled_from(["$LATEST", "1", "prod"]), st.text(NAME_CHARS, min_size=1, max_size=12),
              _sized(string.digits, 1, 4)),
    st.one_of(st.sampled_from(["$LATEST.PUBLISHED", "$latest", "a$b", "$", "LATEST", ""]),
              _sized(NAME_CHARS, 126, 130)))
OPTIONAL_QUALIFIER = st.one_of(st.just(""), QUALIFIER.map(lambda q: ":" + q))


@st.composite
def full_arns(draw):
    """Mostly with the region's own partition: any other is refused."""
    region = draw(REGION)
    partition = draw(mostly(st.just(botocore_partition(region) or "aws"), PARTITION))
    return (f"arn:{partition}:lambda:{region}:{draw(ACCOUNT)}:function:{draw(NAME)}"
            f"{draw(OPTIONAL_QUALIFIER)}")


FULL_ARN = full_arns()
PARTIAL_ARN = st.builds(lambda a, n, q: f"{a}:function:{n}{q}", ACCOUNT, NAME, OPTIONAL_QUALIFIER)
BARE = st.builds(lambda n, q: n + q, NAME, OPTIONAL_QUALIFIER)
# Other combinations of the model's optional parts ("us-east-1:f" reads as name:qualifier).
OTHER_FORMS = st.one_of(
    st.builds(lambda r, n: f"{r}:{n}", REGION, NAME),
    st.builds(lambda n: f"function:{n}", NAME),
    st.builds(lambda r, a, n: f"{r}:{a}:function:{n}", REGION, ACCOUNT, NAME),
    st.builds(lambda p, n: f"arn:{p}:lambda:{n}", PARTITION, NAME),
    st.builds(lambda p, a, n: f"arn:{p}:lambda:{a}:function:{n}", PARTITION, ACCOUNT, NAME),
)
FUNCTION_TEXT = st.one_of(
    FULL_ARN, spoiled(FULL_ARN), PARTIAL_ARN, spoiled(PARTIAL_ARN), BARE, spoiled(BARE), OTHER_FORMS,
    st.text(alphabet=st.one_of(st.sampled_from(NAME_CHARS + ":$."), ODD_CHAR), max_size=80),
    st.text(max_size=40),
)

# A full ARN of exactly 256 and of 257 characters (a long, unreal region and a long
# qualifier): the model's limit on the whole text.
_LONG = "arn:aws:lambda:us-" + "a" * 40 + "-1:123456789012:function:" + "f" * 64 + ":"
AT_LIMIT, OVER_LIMIT = _LONG + "q" * (256 - len(_LONG)), _LONG + "q" * (257 - len(_LONG))


def _accepts(check, text):
    try:
        check(text)
    except BadArgument:
        return False
    return True


# -- the properties -----------------------------------------------------------------


def test_function_names_against_the_model():
    seen = Counter()

    @PROFILE
    @given(FUNCTION_TEXT)
    @example("us-east-١")
    @example("١٢٣٤٥٦٧٨٩٠١٢:function:f")
    @example("ｆ")
    @example("arn:aws:lambda:us-east-１:123456789012:function:f")
    @example("arn:aws:lambda:us-east-1:١٢٣٤٥٦٧٨٩٠١٢:function:f")
    @example(AT_LIMIT)
    @example(OVER_LIMIT)
    def check(text):
        try:
            ref = names.parse_function_name(text)
        except BadArgument:
            ref = None
        kind = ("arn" if text.startswith("arn:") else "partial" if ":function:" in text
                else "bare")
        seen[kind, ref is not None] += 1
        assert (ref is not None) == expected_function_name(text), text
        if ref is None:
            return
        assert text.isascii()
        assert model_accepts(FUNCTION_NAME_SHAPE, text), text
        assert model_accepts(FUNCTION_NAME_SHAPE, ref.path_name()), ref.path_name()
        if ref.qualifier is not None:
            assert model_accepts(QUALIFIER_SHAPE, ref.qualifier), ref.qualifier
        if ref.region is not None:
            assert expected_region(ref.region)

    check()
    # Not vacuous: every form was seen both accepted and refused.
    for kind in ("arn", "partial", "bare"):
        assert seen[kind, True] >= 10 and seen[kind, False] >= 10, seen


def test_qualifiers_against_the_model():
    seen = Counter()

    @PROFILE
    @given(st.one_of(QUALIFIER, st.text(max_size=10)))
    @example("١")
    @example("v１")
    @example("$LATEST.PUBLISHED")
    @example("q" * 128)
    @example("q" * 129)
    def check(qualifier):
        accepted = _accepts(names.check_qualifier, qualifier)
        seen[accepted] += 1
        assert accepted == expected_qualifier(qualifier), qualifier
        if accepted:
            assert qualifier.isascii() and model_accepts(QUALIFIER_SHAPE, qualifier)
            # and the same qualifier in a name, as the model reads it there
            assert model_accepts(FUNCTION_NAME_SHAPE, f"f:{qualifier}")

    check()
    assert seen[True] >= 50 and seen[False] >= 50, seen


def test_regions_against_the_model():
    seen = Counter()

    @PROFILE
    @given(st.one_of(REGION, st.text(max_size=20)))
    @example("us-east-١")
    @example("us-east-１")
    @example("us-east-10")
    @example("us-" + "a" * 58 + "-1")
    @example("us-" + "a" * 59 + "-1")
    def check(region):
        accepted = _accepts(names.check_region, region)
        seen[accepted] += 1
        assert accepted == expected_region(region), region
        if accepted:
            assert region.isascii()
            partition = names.partition_of(region)
            assert partition == botocore_partition(region)
            arn = f"arn:{partition}:lambda:{region}:123456789012:function:f"
            assert model_accepts(FUNCTION_NAME_SHAPE, arn)
            assert names.parse_function_name(arn).region == region

    check()
    assert seen[True] >= 50 and seen[False] >= 50, seen


def test_accounts_against_the_model():
    @PROFILE
    @given(ACCOUNT)
    @example("١٢٣٤٥٦٧٨٩٠١٢")
    @example("１２３４５６７８９０１２")
    @example("12345678901２")
    def check(account):
        accepted = _accepts(names.parse_function_name, f"{account}:function:f")
        assert accepted == (_ACCOUNT.fullmatch(account) is not None), account
        assert accepted == model_accepts(FUNCTION_NAME_SHAPE, f"{account}:function:f"), account

    check()


def test_invoke_arguments_send_only_what_the_model_accepts():
    """Through arguments.from_sql, the region, composite and qualifier arguments too."""

    @PROFILE
    @given(FUNCTION_TEXT, st.one_of(st.none(), REGION), st.one_of(st.none(), QUALIFIER))
    def check(text, region, qualifier):
        try:
            call = arguments.from_sql(text, "{}", region, qualifier=qualifier)
        except BadArgument:
            return
        assert model_accepts(FUNCTION_NAME_SHAPE, call.function.path_name())
        if call.qualifier is not None:
            assert model_accepts(QUALIFIER_SHAPE, call.qualifier)
        if call.region is not None:
            assert expected_region(call.region)

    check()


# -- the model as read, and where we differ from it -----------------------------------


def test_the_model_is_the_one_described_in_names_py():
    assert _INVOKE["FunctionName"]["shape"] == "NamespacedFunctionName"
    assert _INVOKE["Qualifier"]["shape"] == "NumericLatestPublishedOrAliasQualifier"
    assert (FUNCTION_NAME_SHAPE["min"], FUNCTION_NAME_SHAPE["max"]) == (1, names.FUNCTION_NAME_MAX)
    assert (QUALIFIER_SHAPE["min"], QUALIFIER_SHAPE["max"]) == (1, names.QUALIFIER_MAX)
    assert FUNCTION_NAME_SHAPE["pattern"] in names.__doc__.replace("\n  ", "")
    assert QUALIFIER_SHAPE["pattern"] in names.__doc__


def test_the_translation_from_java():
    # "0-9-_" is a range and a literal hyphen, not a range from "9" to "_"
    for ch in ";<=>?@[\\]^":
        assert not model_accepts(FUNCTION_NAME_SHAPE, f"a{ch}b"), ch
    assert model_accepts(FUNCTION_NAME_SHAPE, "a-_.b")
    # "$" in a class is literal; the top-level alternation is matched as a whole
    assert model_accepts(QUALIFIER_SHAPE, "a$b") and model_accepts(QUALIFIER_SHAPE, "$LATEST.PUBLISHED")
    assert not model_accepts(QUALIFIER_SHAPE, "$LATEST.") and not model_accepts(QUALIFIER_SHAPE, "")
    # \d is ASCII, as in Java
    assert not model_accepts(FUNCTION_NAME_SHAPE, "١٢٣٤٥٦٧٨٩٠١٢:function:f")
    assert re.compile(FUNCTION_NAME_SHAPE["pattern"]).fullmatch("١٢٣٤٥٦٧٨٩٠١٢:function:f")


@pytest.mark.parametrize("text, why", [
    ("my.function", "a dot in the name"),
    ("f" * 65, "a name over 64 characters"),
    ("us-east-1:f:1", "a region without an ARN"),  # "us-east-1:f" is a name and qualifier
    ("function:f:1", "function: without an account"),
    ("us-east-1:123456789012:function:f", "a region without an ARN"),
    ("arn:aws:lambda:f", "an ARN without region, account and function:"),
    ("arn::lambda:us-east-1:123456789012:function:f", "an empty partition"),
    ("arn:aws-cn:lambda:us-east-1:123456789012:function:f", "a partition not the region's"),
    ("arn:aws-CN:lambda:cn-north-1:123456789012:function:f", "a partition not in lower case"),
    ("arn:aws:lambda:zz-east-1:123456789012:function:f", "a region of no partition"),
    ("arn:aws:lambda:us-" + "a" * 59 + "-1:123456789012:function:f", "a region over 63 characters"),
    ("f:" + "q" * 129, "a qualifier over 128 characters"),
])
def test_where_we_are_stricter_than_the_model(text, why):
    assert model_accepts(FUNCTION_NAME_SHAPE, text), why
    with pytest.raises(BadArgument):
        names.parse_function_name(text)


@pytest.mark.parametrize("qualifier", ["$latest", "a$b", "$", "$LATEST$"])
def test_qualifiers_stricter_than_the_model(qualifier):
    assert model_accepts(QUALIFIER_SHAPE, qualifier)
    with pytest.raises(BadArgument):
        names.check_qualifier(qualifier)
