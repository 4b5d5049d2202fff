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
Java's \d is [0-9]. Python's \d and \w match digits and letters of every script, so
every pattern here is ASCII-only (explicit classes, and re.ASCII besides): a region
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

import re
import unicodedata

from plpy_lambda.errors import BadArgument

NAME_MAX = 64
QUALIFIER_MAX = 128
FUNCTION_NAME_MAX = 256  # the model's NamespacedFunctionName: the whole text, qualifier included
REGION_MAX = 63  # one DNS label

_NAME = r"[A-Za-z0-9_-]+"
_QUALIFIER = r"\$LATEST(?:\.PUBLISHED)?|[A-Za-z0-9_-]+"
_ACCOUNT = r"[0-9]{12}"
_FULL_ARN = re.compile(
    rf"arn:(?P<partition>aws[a-z-]*):lambda:(?P<region>[a-z0-9-]+):(?P<account>{_ACCOUNT})"
    rf":function:(?P<name>{_NAME})(?::(?P<qualifier>{_QUALIFIER}))?",
    re.ASCII,
)
_PARTIAL_ARN = re.compile(
    rf"(?P<account>{_ACCOUNT}):function:(?P<name>{_NAME})(?::(?P<qualifier>{_QUALIFIER}))?",
    re.ASCII,
)
_BARE_NAME = re.compile(rf"(?P<name>{_NAME})(?::(?P<qualifier>{_QUALIFIER}))?", re.ASCII)

# Region names by partition, as botocore's partitions.json has them; kept here so
# that validating a region needs no import. The test suite checks this table
# against the installed botocore. Matched with re.ASCII: \w and \d are [A-Za-z0-9_]
# and [0-9] here. Each pattern is compiled when a region is first matched against it
# (re keeps it): a server whose regions are all in "aws" compiles one.
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
# The region in the model's ARN patterns: (eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}
_REGION_SHAPE = re.compile(r"(?:eusc-)?[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9]", re.ASCII)


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
    for pattern in (_FULL_ARN, _PARTIAL_ARN, _BARE_NAME):
        match = pattern.fullmatch(text)
        if match:
            break
    else:
        raise BadArgument(
            argument,
            f'"{_clip(text)}" is not a Lambda function name, name:qualifier, partial ARN '
            "or full ARN",
            hint=_non_ascii_hint(text)
            or "A name uses letters, digits, hyphens and underscores, at most 64 of them; "
            "a full ARN looks like arn:aws:lambda:us-east-1:123456789012:function:my-function.",
        )
    parts = match.groupdict()
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


def check_qualifier(qualifier, argument="qualifier"):
    """A version number, $LATEST, $LATEST.PUBLISHED or an alias name, 1 to 128 characters."""
    if qualifier is None:
        return None
    if not 1 <= len(qualifier) <= QUALIFIER_MAX or not re.fullmatch(_QUALIFIER, qualifier, re.ASCII):
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
    if (len(region) > REGION_MAX or not _REGION_SHAPE.fullmatch(region)
            or partition_of(region) is None):
        raise BadArgument(
            argument, f'"{_clip(region)}" is not an AWS region name such as us-east-1',
            hint=_non_ascii_hint(region),
        )
    return region


def _partition_entry(region):
    """The PARTITIONS row whose region pattern matches, or None."""
    for entry in PARTITIONS:
        if re.fullmatch(entry[1], region, re.ASCII):
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
            name = unicodedata.name(ch, "")
            what = f"U+{ord(ch):04X} {name}" if name else f"U+{ord(ch):04X}"
            return (f'It contains "{ch}" ({what}); function names, ARNs, qualifiers and '
                    "regions are ASCII.")
    return None


def _clip(text, limit=80):
    """text as quoted in a message: at most limit characters."""
    return text if len(text) <= limit else text[:limit] + "..."
