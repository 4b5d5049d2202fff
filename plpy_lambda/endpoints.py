"""The Lambda endpoint URL for a region, resolved as the AWS SDK resolves it.

First wins: aws_lambda.endpoint_override (ours); AWS_ENDPOINT_URL_LAMBDA; AWS_ENDPOINT_URL;
the `lambda` entry of the [services ...] section the profile names; the profile's
endpoint_url; https://lambda[-fips].<region>.<DNS suffix or dual-stack DNS suffix>.
AWS_IGNORE_CONFIGURED_ENDPOINT_URLS (or the profile's ignore_configured_endpoint_urls)
skips the environment's and the profile's URLs. FIPS and dual-stack (AWS_USE_FIPS_ENDPOINT,
AWS_USE_DUALSTACK_ENDPOINT, or the profile's use_fips_endpoint, use_dualstack_endpoint)
shape only the default URL; where botocore refuses a combination for a region, so does
this module (BadConfiguration, before anything is sent). Booleans are read as botocore
reads them: only "true", in any case, and a set variable, even empty, hides the profile.

`configured`, `endpoint_url` and `split` (an endpoint URL's parts, as urlsplit reads
them) are pure. `for_region` reads the environment and, only
when a shared AWS file exists, the profile (which imports botocore) once per backend, and
keeps each region's URL.
"""

import os

from plpy_lambda import names
from plpy_lambda.errors import BadConfiguration, NotInstalled

SERVICE_URL_ENV = "AWS_ENDPOINT_URL_LAMBDA"
GLOBAL_URL_ENV = "AWS_ENDPOINT_URL"
IGNORE_ENV = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"
FIPS_ENV = "AWS_USE_FIPS_ENDPOINT"
DUALSTACK_ENV = "AWS_USE_DUALSTACK_ENDPOINT"
SERVICES_KEY = "lambda"  # the service's key in a [services ...] section

# botocore's partitions.json outputs beyond the DNS suffix that names.PARTITIONS has:
# the dual-stack DNS suffix, supportsFIPS and supportsDualStack. Its Lambda rule set
# refuses FIPS or dual-stack in a partition that does not support them.
_OUTPUTS = {
    "aws": ("api.aws", True, True),
    "aws-cn": ("api.amazonwebservices.com.cn", True, True),
    "aws-eusc": ("api.amazonwebservices.eu", True, True),
    "aws-iso": ("api.aws.ic.gov", True, True),
    "aws-iso-b": ("api.aws.scloud", True, True),
    "aws-iso-e": ("api.cloud-aws.adc-e.uk", True, True),
    "aws-iso-f": ("api.aws.hci.ic.gov", True, True),
    "aws-us-gov": ("api.aws", True, True),
}

# (fips, dualstack) variants that botocore's endpoint data (endpoints.json) models for
# Lambda: creating a client for any other raises EndpointVariantError, whatever the rule
# set would build (and even with a configured endpoint URL). For dual-stack, aws-iso and
# aws-iso-b fall back to the aws partition's data, which has every variant.
_ALL = frozenset({(True, False), (False, True), (True, True)})
_FIPS_ONLY = frozenset({(True, False)})
_VARIANTS = {
    "aws": _ALL,
    "aws-cn": _ALL,
    "aws-eusc": _ALL,
    "aws-iso": _ALL,
    "aws-iso-b": _ALL,
    "aws-iso-e": _FIPS_ONLY,
    "aws-iso-f": _FIPS_ONLY,
    "aws-us-gov": _ALL,
}
_REGION_VARIANTS = {
    "eu-isoe-west-1": frozenset({(False, True)}),
    "us-isof-east-1": frozenset({(False, True)}),
    "us-isof-south-1": frozenset({(False, True)}),
}

class Configured:
    """What the environment and the profile say. `*_source` names the setting, for messages.
    A plain class: collections.namedtuple would import collections on the first call."""

    __slots__ = ("url", "url_source", "fips", "fips_source", "dualstack", "dualstack_source")

    def __init__(self, url, url_source, fips, fips_source, dualstack, dualstack_source):
        self.url, self.url_source = url, url_source
        self.fips, self.fips_source = fips, fips_source
        self.dualstack, self.dualstack_source = dualstack, dualstack_source


NOTHING = Configured(None, None, False, None, False, None)


def configured(environ, profile=None, services=None, profile_name=None):
    """The endpoint settings of the environment and the profile, in botocore's order.

    `environ`: the server's environment; `profile`: the profile's keys (None without a
    shared AWS file); `services`: the config file's [services ...] sections, by name.
    """
    profile = profile or {}
    where = f'profile "{profile_name or "default"}" of the server\'s AWS config'
    fips, fips_source = _flag(environ, profile, FIPS_ENV, "use_fips_endpoint", where)
    dualstack, dualstack_source = _flag(
        environ, profile, DUALSTACK_ENV, "use_dualstack_endpoint", where
    )
    url = source = None
    ignored, _ = _flag(environ, profile, IGNORE_ENV, "ignore_configured_endpoint_urls", where)
    if not ignored:
        url, source = _configured_url(environ, profile, services or {}, where)
    if url is not None:
        url = checked_url(url, source)
    return Configured(url, source, fips, fips_source, dualstack, dualstack_source)


def endpoint_url(region, endpoint_override=None, endpoint_settings=NOTHING):
    """The endpoint URL (scheme://host[:port]) for a checked region; endpoint_settings is
    what configured() found."""
    if endpoint_override:
        return endpoint_override
    if endpoint_settings.fips or endpoint_settings.dualstack:
        _check_variant(region, endpoint_settings)
    if endpoint_settings.url is not None:
        return endpoint_settings.url
    host = "lambda-fips" if endpoint_settings.fips else "lambda"
    if endpoint_settings.dualstack:
        suffix = _OUTPUTS[names.partition_of(region)][0]
    else:
        suffix = names.dns_suffix(region)
    return f"https://{host}.{region}.{suffix}"


def for_region(backend, region, endpoint_override):
    """The endpoint for one call. The environment and the profile are read once per
    backend (a change takes a new connection); each region's URL is kept with them in
    backend.settings_cache."""
    if endpoint_override:
        return endpoint_override
    cache = backend.settings_cache
    url = cache.get("endpoints", {}).get(region)
    if url is None:
        endpoint_settings = cache.get("endpoint_settings")
        if endpoint_settings is None:
            endpoint_settings = cache["endpoint_settings"] = read(backend.credentials, os.environ)
        url = endpoint_url(region, None, endpoint_settings)
        cache.setdefault("endpoints", {})[region] = url
    return url


def read(credentials, environ):
    """The server's endpoint settings: the environment, and the profile when a shared AWS
    file exists (reading it imports botocore)."""
    if not any(os.path.isfile(path) for path in _shared_files(environ)):
        return configured(environ)
    try:
        import botocore.configloader
        import botocore.exceptions
    except ImportError:
        raise NotInstalled("botocore") from None
    try:
        profile = credentials.profile()
        profile_name = credentials.config_variable("profile")
        services = None
        if "services" in profile:
            path = _expanded(credentials.config_variable("config_file"))
            if os.path.isfile(path):
                services = botocore.configloader.load_config(path).get("services")
    except botocore.exceptions.BotoCoreError as error:
        raise BadConfiguration(
            f"the server's shared AWS config cannot be read ({type(error).__name__})",
            hint="Check AWS_PROFILE and the postgres OS user's ~/.aws/config (or "
            "AWS_CONFIG_FILE) and ~/.aws/credentials.",
        ) from None
    return configured(environ, profile, services, profile_name)


def _shared_files(environ):
    """The paths of the shared AWS config and credentials files, as botocore finds them."""
    return (
        _expanded(environ.get("AWS_CONFIG_FILE") or "~/.aws/config"),
        _expanded(environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"),
    )


def _expanded(path):
    return os.path.expanduser(os.path.expandvars(path))


def _flag(environ, profile, env_name, key, where):
    """A boolean as botocore's chain reads it: the variable if set (even empty), else the
    profile's key; only "true", in any case, is true."""
    if env_name in environ:
        return _true(environ[env_name]), f"{env_name} in the server's environment"
    value = profile.get(key)
    if value is None:
        return False, None
    return _true(value), f"{key} in {where}"


def _true(value):
    """Whether a setting's value is botocore's true."""
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.lower() == "true"


def _configured_url(environ, profile, services, where):
    """(URL, where it was set) from the environment or the profile, or (None, None)."""
    for name in (SERVICE_URL_ENV, GLOBAL_URL_ENV):
        if environ.get(name):
            return environ[name], f"{name} in the server's environment"
    section_name = profile.get("services")
    if section_name is not None:
        section_name = str(section_name)[:60]
        section = services.get(section_name)
        if not section:
            raise BadConfiguration(
                f"services = {section_name} in {where} names a [services] section that the "
                "file does not have",
                hint=f"Add [services {section_name}] to the config file, or remove the key.",
            )
        entry = section.get(SERVICES_KEY, {})
        if not isinstance(entry, dict):
            raise BadConfiguration(
                f'"{SERVICES_KEY}" in [services {section_name}] of the server\'s AWS config is '
                "not a nested block",
                hint=f"Write it as \"{SERVICES_KEY} =\" followed by an indented line "
                "\"endpoint_url = https://...\".",
            )
        if entry.get("endpoint_url"):
            return (
                entry["endpoint_url"],
                f"endpoint_url for {SERVICES_KEY} in [services {section_name}] of the "
                "server's AWS config",
            )
    if profile.get("endpoint_url"):
        return profile["endpoint_url"], f"endpoint_url in {where}"
    return None, None


def split(url):
    """(scheme, netloc, hostname, port or None) of url as urllib.parse.urlsplit reads them,
    when url is plainly scheme://host[:port]: http or https, ASCII, no user, IPv6 address,
    path, query or fragment; else None, and the caller asks urlsplit. Such a URL is the
    normal form every endpoint is given in, and it is read here without importing
    urllib.parse on a connection's first call."""
    scheme, separator, netloc = url.partition("://")
    if not (scheme in ("http", "https") and separator and netloc.isascii()
            and netloc.isprintable() and not any(ch in netloc for ch in " /?#[]@")):
        return None
    hostname, _, port = netloc.partition(":")
    if not hostname or port and not (port.isdigit() and int(port) <= 65535):
        return None
    name, percent, rest = hostname.partition("%")  # as urlsplit: lower case before a %
    return scheme, netloc, name.lower() + percent + rest, int(port) if port else None


def checked_url(text, source):
    """An endpoint URL (aws_lambda.endpoint_override or a configured one) checked as
    scheme://host[:port]; returns that normal form. source names it in the error."""
    text = text.strip()
    if split(text) is not None:
        return text  # already the normal form
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    try:
        parts.port
    except ValueError:
        parts = None
    if parts is not None and parts.scheme in ("http", "https") and parts.hostname:
        if parts.username is not None or parts.password is not None:
            problem = "has a user name or password"
        elif parts.path not in ("", "/"):
            problem = (
                f'has a path ("{parts.path[:40]}"); the AWS SDK would put the API path after '
                "it, which aws_lambda does not do"
            )
        elif parts.query or parts.fragment:
            problem = "has a query or fragment"
        else:
            return f"{parts.scheme}://{parts.netloc}"
        shown = f"{parts.scheme}://{parts.hostname}"
    else:  # nothing before an "@" is shown: it may be a password
        problem, shown = "is not an endpoint URL", text.rsplit("@", 1)[-1][:100]
    raise BadConfiguration(
        f'{source} {problem}: "{shown}"',
        hint="Use scheme://host[:port], for example https://vpce-0123-abcd.lambda.us-east-1."
        "vpce.amazonaws.com or http://127.0.0.1:9001.",
    )


def _check_variant(region, endpoint_settings):
    """Refuse FIPS or dual-stack where botocore refuses it for this region. With a
    configured endpoint URL, botocore's rule set ignores both, but its endpoint data
    still has to have the variant."""
    partition = names.partition_of(region)
    wanted = (endpoint_settings.fips, endpoint_settings.dualstack)
    _suffix, supports_fips, supports_dualstack = _OUTPUTS[partition]
    allowed = wanted in _VARIANTS[partition] or wanted in _REGION_VARIANTS.get(region, ())
    if endpoint_settings.url is None:
        allowed = (
            allowed
            and (supports_fips or not endpoint_settings.fips)
            and (supports_dualstack or not endpoint_settings.dualstack)
        )
    if allowed:
        return
    sources = [source for source, on in (
        (endpoint_settings.fips_source, endpoint_settings.fips),
        (endpoint_settings.dualstack_source, endpoint_settings.dualstack)) if on]
    kind = {(True, False): "a FIPS", (False, True): "a dual-stack",
            (True, True): "a FIPS dual-stack"}[wanted]
    if len(sources) == 2 and sources[0].split(" in ", 1)[1] == sources[1].split(" in ", 1)[1]:
        sources = [sources[0].split(" in ", 1)[0], sources[1]]  # "A and B in the environment"
    asks = "asks" if len(sources) == 1 else "ask"
    raise BadConfiguration(
        f"{' and '.join(sources)} {asks} for {kind} Lambda endpoint, which the AWS SDK does "
        f"not have for region {region} (partition {partition})",
        hint="Turn that setting off for this server, or set aws_lambda.endpoint_override to "
        "the endpoint to use; the AWS CLI refuses the same configuration.",
    )
