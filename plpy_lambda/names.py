r"""Function names, ARNs, qualifiers and regions: parsing and validation.

Pure code: no PostgreSQL, no network. Every check here runs before anything is
sent, and every failure names the SQL argument it came from.

What we accept is a subset of what Lambda's API model (botocore's
data/lambda/2015-03-31/service-2.json, operation Invoke) accepts, so nothing we send
fails the service's own validation:

- FunctionName, shape NamespacedFunctionName: 1 to 256 characters matching
  (arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?
  (\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?
- Qualifier, shape NumericLatestPublishedOrAliasQualifier: 1 to 128 characters matching
  \$(LATEST(\.PUBLISHED)?)|[a-zA-Z0-9-_$]+

The model's patterns are Java regular expressions, matched against the whole value;
Java's \d is [0-9]. Python's \d and \w match digits and letters of every script, and
str.isdigit() takes them too, so every class here is ASCII-only, spelled out: a region
'us-east-\u0661' or an account of Arabic-Indic digits is refused here, not sent.

Where we are stricter than the model, on purpose:
- only the four documented forms (name, name:qualifier, partial ARN, full ARN), not
  every combination of the model's optional parts ("us-east-1:123456789012:function:f",
  "function:f:1", "arn:aws:lambda:f");
- a function name of at most 64 letters, digits, hyphens and underscores, in every
  form (Lambda's limit on the name itself; no dots, which CreateFunction's FunctionName
  shape does not allow, so no function has one);
- a full ARN names its partition, in lower case, and it is the partition of its region;
- a region, in an ARN or given apart, has the model's shape (one final digit) and is of
  a known partition (PARTITIONS), at most 63 characters: the endpoint's host name is
  built from it, one DNS label;
- a qualifier is $LATEST, $LATEST.PUBLISHED (the newest published version), or letters,
  digits, hyphens and underscores: not a "$" inside an alias, which the model's Alias
  shape does not allow.
"""

from plpy_lambda.errors import BadArgument

NAME_MAX = 64
QUALIFIER_MAX = 128
FUNCTION_NAME_MAX = 256  # the model's NamespacedFunctionName: the whole text, qualifier included
REGION_MAX = 63  # one DNS label

# The forms, read without re (whose import, with enum's, would be a large part of a new
# connection's first call): split at ":", which no part may hold, and each part checked
# against its class of ASCII characters.
#   full ARN     arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]
#   partial ARN  <account>:function:<name>[:<qualifier>]
#   name         <name>[:<qualifier>]
# name [A-Za-z0-9_-]+; qualifier $LATEST, $LATEST.PUBLISHED or [A-Za-z0-9_-]+;
# account [0-9]{12}; partition aws[a-z-]*; region [a-z0-9-]+ (then checked as a region).
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_DIGITS = "0123456789"
_WORD = _LOWER + _LOWER.upper() + _DIGITS + "_"  # \w with re.ASCII
_NAME = _WORD + "-"
_LATEST = ("$LATEST", "$LATEST.PUBLISHED")

# Region names by partition, as botocore's partitions.json has them (its regionRegex,
# matched with re.ASCII); kept here so that validating a region needs no import. The
# test suite checks this table against the installed botocore, and that every pattern
# has the form _region_prefixes reads: <prefix>-\w+-\d+, the prefix literal but for one
# group of alternatives at most.
PARTITIONS = (
    ("aws", r"(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+", "amazonaws.com"),
    ("aws-cn", r"cn-\w+-\d+", "amazonaws.com.cn"),
    ("aws-eusc", r"eusc-(de)-\w+-\d+", "amazonaws.eu"),
    ("aws-iso", r"us-iso-\w+-\d+", "c2s.ic.gov"),
    ("aws-iso-b", r"us-isob-\w+-\d+", "sc2s.sgov.gov"),
    ("aws-iso-e", r"eu-isoe-\w+-\d+", "cloud.adc-e.uk"),
    ("aws-iso-f", r"us-isof-\w+-\d+", "csp.hci.ic.gov"),
    ("aws-us-gov", r"us-gov-\w+-\d+", "amazonaws.com"),
)
REGION_TAIL = r"-\w+-\d+"


def _only(text, characters):
    """Whether text is one or more of characters (the class [characters]+)."""
    return bool(text) and not text.strip(characters)


def _is_name(text):
    return _only(text, _NAME)


def _is_qualifier(text):
    return text in _LATEST or _only(text, _NAME)


def _is_account(text):
    return len(text) == 12 and _only(text, _DIGITS)


def _region_shape(region):
    r"""Whether region has the shape of the model's ARN patterns:
    (eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}"""
    if region.startswith("eusc-"):
        region = region[5:]
    parts = region.split("-")
    if not (len(parts[0]) == 2 and _only(parts[0], _LOWER)):
        return False
    if len(parts) == 4 and (parts[1] == "gov" or (parts[1][:3] == "iso" and len(parts[1]) <= 4
                                                  and _only(parts[1], _LOWER))):
        del parts[1]
    return len(parts) == 3 and _only(parts[1], _LOWER) and len(parts[2]) == 1 and _only(parts[2], _DIGITS)


def _region_prefixes(pattern):
    r"""The prefixes of a PARTITIONS pattern: "(us|eu)-\w+-\d+" has "us" and "eu"."""
    head = pattern[:-len(REGION_TAIL)]
    before, _, group = head.partition("(")
    if not group:
        return (head,)
    options, _, after = group.partition(")")
    return tuple(before + option + after for option in options.split("|"))


def _in_partition(region, pattern):
    r"""Whether region matches a PARTITIONS pattern, <prefix>-\w+-\d+ (re.ASCII, whole)."""
    for prefix in _PREFIXES[pattern]:
        if region.startswith(prefix + "-"):
            word, dash, number = region[len(prefix) + 1:].rpartition("-")
            if dash and _only(word, _WORD) and _only(number, _DIGITS):
                return True
    return False


_PREFIXES = {pattern: _region_prefixes(pattern) for _, pattern, _ in PARTITIONS}


class FunctionRef:
    """A parsed function name: what to put in the request path, and what it said."""

    __slots__ = ("name", "qualifier", "region", "account", "partition")

    def __init__(self, name, qualifier=None, region=None, account=None, partition=None):
        self.name = name
        self.qualifier = qualifier  # str or None
        self.region = region  # only from a full ARN
        self.account = account  # from a full or partial ARN
        self.partition = partition  # only from a full ARN

    def __repr__(self):
        return (f"FunctionRef(name={self.name!r}, qualifier={self.qualifier!r}, "
                f"region={self.region!r}, account={self.account!r}, "
                f"partition={self.partition!r})")

    def path_name(self):
        """The FunctionName sent to Lambda: the ARN form the user gave, without qualifier."""
        if self.partition:
            return f"arn:{self.partition}:lambda:{self.region}:{self.account}:function:{self.name}"
        if self.account:
            return f"{self.account}:function:{self.name}"
        return self.name

    def display(self, region, qualifier):
        """The ARN shown in errors: as complete as what we know allows."""
        if self.account:
            partition = self.partition or partition_of(region) or "aws"
            arn = f"arn:{partition}:lambda:{region}:{self.account}:function:{self.name}"
        else:
            arn = self.name
        return f"{arn}:{qualifier}" if qualifier else arn


def parse_function_name(text, argument="function_name"):
    """Parse a bare name, name:qualifier, partial ARN or full ARN."""
    if text is None:
        raise BadArgument(argument, "must not be NULL", null=True)
    if text == "":
        raise BadArgument(argument, "must not be empty")
    parts = _function_name_parts(text)
    if parts is None:
        raise BadArgument(
            argument,
            f'"{_clip(text)}" is not a Lambda function name, name:qualifier, partial ARN '
            "or full ARN",
            hint=_non_ascii_hint(text)
            or "A name uses letters, digits, hyphens and underscores, at most 64 of them; "
            "a full ARN looks like arn:aws:lambda:us-east-1:123456789012:function:my-function.",
        )
    if len(parts["name"]) > NAME_MAX:
        raise BadArgument(
            argument,
            f'the function name "{_clip(parts["name"])}" is {len(parts["name"])} characters '
            f"long; Lambda allows at most {NAME_MAX}",
        )
    if parts.get("qualifier") and len(parts["qualifier"]) > QUALIFIER_MAX:
        raise BadArgument(argument, f"the qualifier is longer than {QUALIFIER_MAX} characters")
    region = parts.get("region")
    if region is not None:
        check_region(region, argument)
        if partition_of(region) != parts["partition"]:
            raise BadArgument(
                argument,
                f'the ARN\'s partition "{parts["partition"]}" does not contain region "{region}"',
            )
    if len(text) > FUNCTION_NAME_MAX:
        raise BadArgument(
            argument,
            f"it is {len(text)} characters long; Lambda allows at most {FUNCTION_NAME_MAX} for "
            "a function name or ARN with its qualifier",
        )
    return FunctionRef(
        name=parts["name"],
        qualifier=parts.get("qualifier"),
        region=region,
        account=parts.get("account"),
        partition=parts.get("partition"),
    )


def _function_name_parts(text):
    """The parts of one of the four forms (see above), by name; None for none of them."""
    parts = text.split(":")
    qualifier = None
    if len(parts) in (2, 4, 8):
        qualifier = parts.pop()
        if not _is_qualifier(qualifier):
            return None
    if len(parts) == 1:
        found = {"name": parts[0]}
    elif len(parts) == 3 and parts[1] == "function" and _is_account(parts[0]):
        found = {"account": parts[0], "name": parts[2]}
    elif (len(parts) == 7 and parts[0] == "arn" and parts[2] == "lambda" and parts[5] == "function"
          and parts[1].startswith("aws") and (len(parts[1]) == 3 or _only(parts[1][3:], _LOWER + "-"))
          and _only(parts[3], _LOWER + _DIGITS + "-") and _is_account(parts[4])):
        found = {"partition": parts[1], "region": parts[3], "account": parts[4], "name": parts[6]}
    else:
        return None
    if not _is_name(found["name"]):
        return None
    found["qualifier"] = qualifier
    return found


def check_qualifier(qualifier, argument="qualifier"):
    """A version number, $LATEST, $LATEST.PUBLISHED or an alias name, 1 to 128 characters."""
    if qualifier is None:
        return None
    if not 1 <= len(qualifier) <= QUALIFIER_MAX or not _is_qualifier(qualifier):
        raise BadArgument(
            argument,
            f'"{_clip(qualifier)}" is not a version or alias: use $LATEST, $LATEST.PUBLISHED, a '
            f"version number or an alias of letters, digits, hyphens and underscores (1 to "
            f"{QUALIFIER_MAX})",
            hint=_non_ascii_hint(qualifier),
        )
    return qualifier


def check_region(region, argument="region"):
    """A region name of a known partition. The endpoint's host name is built from it."""
    if len(region) > REGION_MAX or not _region_shape(region) or partition_of(region) is None:
        raise BadArgument(
            argument, f'"{_clip(region)}" is not an AWS region name such as us-east-1',
            hint=_non_ascii_hint(region),
        )
    return region


def _partition_entry(region):
    """The PARTITIONS row whose region pattern matches, or None."""
    for entry in PARTITIONS:
        if _in_partition(region, entry[1]):
            return entry
    return None


def partition_of(region):
    """The partition ("aws", "aws-cn", ...) whose region pattern region matches, or None."""
    entry = _partition_entry(region)
    return entry[0] if entry else None


def dns_suffix(region):
    """The DNS suffix of region's partition, for the endpoint's host name."""
    entry = _partition_entry(region)
    if entry is None:
        raise BadArgument("region", f'"{_clip(region)}" is not an AWS region name such as us-east-1')
    return entry[2]


def parse_row_literal(text):
    """Read PostgreSQL's text form of a two-field row, "(name,region)".

    Returns None when the text is not a row literal. Unquoted empty fields are NULL,
    as in PostgreSQL's record input.
    """
    if len(text) < 2 or text[0] != "(" or text[-1] != ")":
        return None
    fields, field, quoted, i, body = [], [], False, 0, text[1:-1]
    was_quoted = False
    while i < len(body):
        ch = body[i]
        if quoted:
            if ch == '"' and body[i + 1 : i + 2] == '"':
                field.append('"')
                i += 1
            elif ch == '"':
                quoted = False
            elif ch == "\\" and i + 1 < len(body):
                i += 1
                field.append(body[i])
            else:
                field.append(ch)
        elif ch == '"':
            quoted = was_quoted = True
        elif ch == "\\" and i + 1 < len(body):
            i += 1
            field.append(body[i])
        elif ch == ",":
            fields.append("".join(field) if field or was_quoted else None)
            field, was_quoted = [], False
        else:
            field.append(ch)
        i += 1
    if quoted:
        return None
    fields.append("".join(field) if field or was_quoted else None)
    if len(fields) != 2:
        return None
    return fields[0], fields[1]


def _non_ascii_hint(text):
    """Name the first character that is not ASCII: "us-east-１" looks right but is not."""
    for ch in text:
        if ord(ch) > 0x7F:
            import unicodedata

            name = unicodedata.name(ch, "")
            what = f"U+{ord(ch):04X} {name}" if name else f"U+{ord(ch):04X}"
            return (f'It contains "{ch}" ({what}); function names, ARNs, qualifiers and '
                    "regions are ASCII.")
    return None


def _clip(text, limit=80):
    """text as quoted in a message: at most limit characters."""
    return text if len(text) <= limit else text[:limit] + "..."
