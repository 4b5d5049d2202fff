"""The Lambda endpoint URL: ours against botocore's, for every region and setting.

The reference is the URL a botocore client actually sends Invoke to (its endpoint rule
set), captured with a before-send hook, or botocore refusing to create the client.
`client.meta.endpoint_url` comes from botocore's older resolver and, for dual-stack in the
aws-iso and aws-iso-b partitions, is not the URL the client uses (it says ...api.aws where
the request goes to ...api.aws.ic.gov); where the two agree, ours must equal both.
"""

import os
import shutil
import stat
import tempfile
import textwrap

import psycopg
import pytest

from cluster import Cluster
from conftest import SERVER_ENV
from plpy_lambda import endpoints, names
from plpy_lambda.credentials import CredentialSource
from plpy_lambda.errors import BAD_CONFIGURATION, BadArgument, BadConfiguration

API_PATH = "/2015-03-31/functions/f/invocations"
FLAGS = [(False, False), (True, False), (False, True), (True, True)]
# Region names botocore does not list but whose partition's pattern they match: the rule
# set builds these from the pattern, and the endpoint data has no entry of their own.
UNLISTED = {
    "aws": "us-west-9",
    "aws-cn": "cn-south-3",
    "aws-eusc": "eusc-de-west-2",
    "aws-iso": "us-iso-north-2",
    "aws-iso-b": "us-isob-south-2",
    "aws-iso-e": "eu-isoe-north-3",
    "aws-iso-f": "us-isof-west-4",
    "aws-us-gov": "us-gov-north-3",
}


def _botocore_data(name):
    return _loader().load_data(name)


_LOADERS = []


def _loader():
    if not _LOADERS:
        import botocore.loaders

        _LOADERS.append(botocore.loaders.create_loader())
    return _LOADERS[0]


def _partition_regions():
    """{partition: region names}: partitions.json's regions, the Lambda entries of
    endpoints.json that are region names, and one unlisted name per partition."""
    found = {}
    for partition in _botocore_data("partitions")["partitions"]:
        found[partition["id"]] = set(partition["regions"])
    for partition in _botocore_data("endpoints")["partitions"]:
        lambda_entries = partition["services"].get("lambda", {}).get("endpoints", {})
        found.setdefault(partition["partition"], set()).update(lambda_entries)
    for partition, region in UNLISTED.items():
        found.setdefault(partition, set()).add(region)
    return {partition: sorted(regions) for partition, regions in found.items()}


PARTITION_REGIONS = _partition_regions()


def _is_region(name):
    try:
        names.check_region(name)
    except BadArgument:
        return False
    return True


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """os.environ without any AWS endpoint or profile setting; shared files in tmp_path
    (absent until written). Returns a writer for the config file."""
    for name in list(os.environ):
        if name.startswith(("AWS_ENDPOINT_URL", "AWS_USE_", "AWS_IGNORE_")) or name in (
            "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
        ):
            monkeypatch.delenv(name)
    config = tmp_path / "config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    def write(text):
        config.write_text(textwrap.dedent(text))

    return write


def _botocore(region, config=None, session=None):
    """What botocore does for region in the current os.environ and config file: the URL
    it sends to and its meta.endpoint_url, or the exception it raises."""
    import boto3.session
    import botocore.exceptions
    import botocore.session
    from botocore.awsrequest import AWSResponse

    if session is None:
        session = botocore.session.Session()
        session.register_component("data_loader", _loader())  # parsed once, not per test
    try:
        client = boto3.session.Session(botocore_session=session).client(
            "lambda", region_name=region, config=config,
            aws_access_key_id="x", aws_secret_access_key="y",
        )
        sent = []

        def capture(request, **_):
            sent.append(request.url)
            return AWSResponse(request.url, 200, {}, None)

        client.meta.events.register("before-send.lambda.Invoke", capture)
        client.invoke(FunctionName="f")
    except botocore.exceptions.BotoCoreError as error:  # botocore refuses the configuration
        return error
    assert sent[0].endswith(API_PATH), sent
    return sent[0][: -len(API_PATH)], client.meta.endpoint_url


def _ours(region, endpoint_override=None):
    """What we do for region in the current os.environ and config file."""
    try:
        settings = endpoints.read(CredentialSource(), os.environ)
        return endpoints.endpoint_url(region, endpoint_override, settings)
    except BadConfiguration as error:
        return error


# -- every region of every partition, FIPS and dual-stack on and off ---------------------


def test_we_know_every_partition_botocore_knows():
    theirs = {p["id"] for p in _botocore_data("partitions")["partitions"]}
    assert theirs == {entry[0] for entry in names.PARTITIONS} == set(endpoints._OUTPUTS)


def test_pseudo_regions_are_not_regions():
    """partitions.json lists aws-global and the like; they are not Lambda regions, and
    names.check_region refuses them before any endpoint is built."""
    refused = [r for regions in PARTITION_REGIONS.values() for r in regions if not _is_region(r)]
    assert refused and all(r.endswith("-global") or "fips" in r for r in refused), refused


@pytest.mark.parametrize("partition", sorted(PARTITION_REGIONS))
def test_every_region_and_variant_as_botocore(partition, aws_env):
    from botocore.config import Config
    import botocore.session

    session = botocore.session.Session()
    regions = [r for r in PARTITION_REGIONS[partition] if _is_region(r)]
    assert regions and all(names.partition_of(r) == partition for r in regions)
    wrong = []
    for region in regions:
        for fips, dualstack in FLAGS:
            theirs = _botocore(region, Config(use_fips_endpoint=fips,
                                              use_dualstack_endpoint=dualstack), session)
            settings = endpoints.configured({endpoints.FIPS_ENV: str(fips).lower(),
                                             endpoints.DUALSTACK_ENV: str(dualstack).lower()})
            try:
                ours = endpoints.endpoint_url(region, None, settings)
            except BadConfiguration as error:
                assert error.sqlstate == BAD_CONFIGURATION
                assert region in error.message and "AWS_USE_" in error.message
                ours = error
            if isinstance(theirs, Exception) or isinstance(ours, Exception):
                same = isinstance(theirs, Exception) and isinstance(ours, Exception)
            else:
                sent, meta = theirs
                legacy_differs = dualstack and partition in ("aws-iso", "aws-iso-b")
                same = ours == sent and (ours == meta or legacy_differs)
            if not same:
                wrong.append((region, fips, dualstack, repr(ours), repr(theirs)))
    assert not wrong, wrong


def test_refusals_happen_where_botocore_refuses(aws_env):
    """The combinations botocore refuses today, spelled out (they move with its data)."""
    settings = endpoints.configured({endpoints.FIPS_ENV: "true", endpoints.DUALSTACK_ENV: "TRUE"})
    for region in ("eu-isoe-west-1", "us-isof-east-1", "us-isof-south-1", "eu-isoe-north-3"):
        with pytest.raises(BadConfiguration) as caught:
            endpoints.endpoint_url(region, None, settings)
        assert caught.value.message == (
            "AWS_USE_FIPS_ENDPOINT and AWS_USE_DUALSTACK_ENDPOINT in the server's environment "
            f"ask for a FIPS dual-stack Lambda endpoint, which the AWS SDK does not have for "
            f"region {region} (partition {names.partition_of(region)})"
        )
    dualstack = endpoints.configured({endpoints.DUALSTACK_ENV: "true"})
    assert endpoints.endpoint_url("eu-isoe-west-1", None, dualstack) == (
        "https://lambda.eu-isoe-west-1.api.cloud-aws.adc-e.uk")
    with pytest.raises(BadConfiguration, match="dual-stack Lambda endpoint.*us-isof-west-4"):
        endpoints.endpoint_url("us-isof-west-4", None, dualstack)
    assert endpoints.endpoint_url("us-east-1", None, settings) == (
        "https://lambda-fips.us-east-1.api.aws")


# -- precedence, against boto3 with the same environment and config file -----------------

EMU, GLOBAL, SERVICES, PROFILE = (f"http://127.0.0.1:{port}" for port in (9101, 9102, 9103, 9104))
FULL_CONFIG = textwrap.dedent(f"""
    [default]
    services = local
    endpoint_url = {PROFILE}

    [services local]
    lambda =
      endpoint_url = {SERVICES}
    sts =
      endpoint_url = http://127.0.0.1:9999
    """)


@pytest.mark.parametrize(
    "environ, config, expected",
    [
        ({"AWS_ENDPOINT_URL_LAMBDA": EMU, "AWS_ENDPOINT_URL": GLOBAL}, FULL_CONFIG, EMU),
        ({"AWS_ENDPOINT_URL": GLOBAL}, FULL_CONFIG, GLOBAL),
        ({}, FULL_CONFIG, SERVICES),
        ({}, f"[default]\nendpoint_url = {PROFILE}\n", PROFILE),
        ({}, "[default]\nservices = local\n[services local]\nsts =\n  endpoint_url = "
             f"{SERVICES}\n", "https://lambda.us-west-2.amazonaws.com"),
        ({}, None, "https://lambda.us-west-2.amazonaws.com"),
        ({"AWS_ENDPOINT_URL_LAMBDA": ""}, FULL_CONFIG, SERVICES),  # empty: not set
        ({"AWS_ENDPOINT_URL_LAMBDA": EMU, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"},
         FULL_CONFIG, "https://lambda.us-west-2.amazonaws.com"),
        ({"AWS_ENDPOINT_URL": GLOBAL}, FULL_CONFIG + "ignore_configured_endpoint_urls = true\n",
         GLOBAL),  # in [services local], not the profile: no effect
        ({"AWS_ENDPOINT_URL": GLOBAL},
         f"[default]\nignore_configured_endpoint_urls = TRUE\nendpoint_url = {PROFILE}\n",
         "https://lambda.us-west-2.amazonaws.com"),
        # a set variable hides the profile's key, and only "true" is true
        ({"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "1"},
         f"[default]\nignore_configured_endpoint_urls = true\nendpoint_url = {PROFILE}\n",
         PROFILE),
        ({"AWS_USE_FIPS_ENDPOINT": "true"}, None, "https://lambda-fips.us-west-2.amazonaws.com"),
        ({"AWS_USE_FIPS_ENDPOINT": "yes"}, None, "https://lambda.us-west-2.amazonaws.com"),
        ({"AWS_USE_DUALSTACK_ENDPOINT": "True"}, "[default]\nuse_fips_endpoint = true\n",
         "https://lambda-fips.us-west-2.api.aws"),
        ({"AWS_USE_FIPS_ENDPOINT": ""}, "[default]\nuse_fips_endpoint = true\n",
         "https://lambda.us-west-2.amazonaws.com"),
        # FIPS and dual-stack do not apply to a configured endpoint URL
        ({"AWS_ENDPOINT_URL_LAMBDA": EMU, "AWS_USE_FIPS_ENDPOINT": "true",
          "AWS_USE_DUALSTACK_ENDPOINT": "true"}, None, EMU),
        ({"AWS_PROFILE": "other"}, FULL_CONFIG + f"[profile other]\nendpoint_url = {GLOBAL}\n",
         GLOBAL),
        ({"AWS_PROFILE": "other"},
         FULL_CONFIG + "[profile other]\nuse_dualstack_endpoint = true\n",
         "https://lambda.us-west-2.api.aws"),
        ({"AWS_ENDPOINT_URL": GLOBAL + "/"}, None, GLOBAL),  # the root path is no path
    ],
)
def test_precedence_as_boto3(aws_env, monkeypatch, environ, config, expected):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    if config is not None:
        aws_env(config)
    sent, meta = _botocore("us-west-2")
    assert sent.rstrip("/") == meta.rstrip("/") == expected
    assert _ours("us-west-2") == expected


def test_endpoint_override_wins_over_everything(aws_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", EMU)
    monkeypatch.setenv("AWS_USE_FIPS_ENDPOINT", "true")
    aws_env(FULL_CONFIG)
    override = "http://127.0.0.1:9200"
    assert _ours("us-west-2", override) == override
    assert endpoints.endpoint_url("us-isof-south-1", override, endpoints.configured(
        {endpoints.FIPS_ENV: "true", endpoints.DUALSTACK_ENV: "true"})) == override


def test_a_missing_services_section_is_refused_as_botocore_does(aws_env):
    aws_env("[default]\nservices = nowhere\n")
    assert isinstance(_botocore("us-west-2"), Exception)
    error = _ours("us-west-2")
    assert isinstance(error, BadConfiguration)
    assert "services = nowhere" in error.message and 'profile "default"' in error.message


def test_a_profile_that_cannot_be_read_is_a_configuration_error(aws_env, monkeypatch):
    aws_env("[default]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_PROFILE", "missing")
    assert isinstance(_botocore("us-west-2"), Exception)
    error = _ours("us-west-2")
    assert isinstance(error, BadConfiguration)
    assert error.message == "the server's shared AWS config cannot be read (ProfileNotFound)"


def test_fips_and_dualstack_are_refused_even_with_an_endpoint_url_as_botocore_does(
        aws_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", EMU)
    aws_env("[default]\nuse_fips_endpoint = true\nuse_dualstack_endpoint = true\n")
    assert isinstance(_botocore("eu-isoe-west-1"), Exception)
    error = _ours("eu-isoe-west-1")
    assert isinstance(error, BadConfiguration)
    assert error.message.startswith(
        'use_fips_endpoint and use_dualstack_endpoint in profile "default" of the server\'s '
        "AWS config ask for a FIPS dual-stack Lambda endpoint")
    assert _botocore("us-east-1")[0] == _ours("us-east-1") == EMU


@pytest.mark.parametrize(
    "value, problem",
    [
        ("127.0.0.1:9001", "is not an endpoint URL"),
        ("ftp://example.com", "is not an endpoint URL"),
        ("http://example.com:99999", "is not an endpoint URL"),
        ("https://example.com/prefix", 'has a path ("/prefix")'),
        ("https://example.com?x=1", "has a query or fragment"),
        ("https://user:s3cret@example.com", "has a user name or password"),
    ],
)
def test_unusable_endpoint_urls_are_refused_naming_their_source(aws_env, monkeypatch, value,
                                                                problem):
    monkeypatch.setenv("AWS_ENDPOINT_URL", value)
    error = _ours("us-east-1")
    assert isinstance(error, BadConfiguration) and error.sqlstate == BAD_CONFIGURATION
    assert error.message.startswith(f"AWS_ENDPOINT_URL in the server's environment {problem}")
    assert "s3cret" not in error.message
    aws_env(f"[default]\nendpoint_url = {value}\n")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    error = _ours("us-east-1")
    assert error.message.startswith(
        f'endpoint_url in profile "default" of the server\'s AWS config {problem}')


def test_a_path_in_an_endpoint_url_is_where_botocore_would_put_the_api(aws_env, monkeypatch):
    """Why a path is refused: botocore keeps it in front of the API's path."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", "https://example.com/prefix")
    assert _botocore("us-east-1")[0] == "https://example.com/prefix"


def test_without_shared_files_no_botocore_is_needed(aws_env, monkeypatch):
    class NoProfile:
        def profile(self):
            raise AssertionError("read the profile without a shared AWS file")

        config_variable = profile

    monkeypatch.setenv("AWS_USE_DUALSTACK_ENDPOINT", "true")
    settings = endpoints.read(NoProfile(), os.environ)
    assert endpoints.endpoint_url("cn-north-1", None, settings) == (
        "https://lambda.cn-north-1.api.amazonwebservices.com.cn")


def test_each_region_is_resolved_once_per_backend(aws_env):
    class Credentials:
        reads = 0

        def profile(self):
            Credentials.reads += 1
            return {"use_fips_endpoint": "true"}

        def config_variable(self, name):
            return None

    class Backend:
        def __init__(self):
            self.settings_cache = {}
            self.credentials = Credentials()

    aws_env("[default]\n")
    backend = Backend()
    for _ in range(3):
        assert endpoints.for_region(backend, "us-east-2", None) == (
            "https://lambda-fips.us-east-2.amazonaws.com")
        assert endpoints.for_region(backend, "us-gov-west-1", None) == (
            "https://lambda-fips.us-gov-west-1.amazonaws.com")
        assert endpoints.for_region(backend, "us-east-2", "http://h:1") == "http://h:1"
    assert Credentials.reads == 1
    assert set(backend.settings_cache["endpoints"]) == {"us-east-2", "us-gov-west-1"}


# -- through the server ------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_dir():
    """A directory the server's OS user can read (config files go here)."""
    path = tempfile.mkdtemp(prefix="aws_lambda_endpoints_")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _server(shared_dir, env, config=None):
    """A cluster without aws_lambda.endpoint_override; the server's shared AWS files are
    in shared_dir (config written when given), never the OS user's own."""
    config_path = os.path.join(shared_dir, f"config-{len(os.listdir(shared_dir))}")
    if config is not None:
        with open(config_path, "w") as f:
            f.write(textwrap.dedent(config))
        os.chmod(config_path, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    pg = Cluster(env={**SERVER_ENV, **env, "AWS_CONFIG_FILE": config_path,
                      "AWS_SHARED_CREDENTIALS_FILE": os.path.join(shared_dir, "none")})
    pg.start()
    pg.psql("CREATE EXTENSION aws_lambda CASCADE;", check=True)
    return pg


@pytest.fixture
def fresh(emulator):
    emulator.reset()
    return emulator


def test_aws_endpoint_url_lambda_in_the_server_environment(shared_dir, fresh):
    pg = _server(shared_dir, {"AWS_ENDPOINT_URL_LAMBDA": fresh.url})
    try:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            row = conn.execute(
                "SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)").fetchone()
        assert row == (200,)
        assert fresh.invocations("simple") == 1
    finally:
        pg.stop()


def test_a_services_section_in_the_server_config_file(shared_dir, fresh):
    pg = _server(shared_dir, {}, f"""
        [default]
        services = local-lambda

        [services local-lambda]
        lambda =
          endpoint_url = {fresh.url}
        """)
    try:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            row = conn.execute(
                "SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)").fetchone()
        assert row == (200,)
        assert fresh.invocations("simple") == 1
    finally:
        pg.stop()


def test_fips_where_the_sdk_refuses_it_is_lm020_and_nothing_is_sent(shared_dir, fresh):
    """The endpoint URL points at the emulator, so a request that got out would be seen;
    botocore refuses FIPS dual-stack in us-isof-south-1 even then, and ignores both for
    us-east-1 (a configured endpoint URL is used as it is)."""
    pg = _server(shared_dir, {"AWS_ENDPOINT_URL_LAMBDA": fresh.url,
                              "AWS_USE_FIPS_ENDPOINT": "true",
                              "AWS_USE_DUALSTACK_ENDPOINT": "true"})
    try:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            for region in ("us-isof-south-1", "eu-isoe-west-1"):
                with pytest.raises(psycopg.Error) as caught:
                    conn.execute("SELECT aws_lambda.invoke('simple', '{}'::json, %s)", [region])
                diag = caught.value.diag
                assert diag.sqlstate == "LM020"
                assert diag.message_primary == (
                    "AWS_USE_FIPS_ENDPOINT and AWS_USE_DUALSTACK_ENDPOINT in the server's "
                    "environment ask for a FIPS dual-stack Lambda endpoint, which the AWS SDK "
                    f"does not have for region {region} (partition {names.partition_of(region)})")
                assert "aws_lambda.endpoint_override" in diag.message_hint
            assert fresh.requests == []
            row = conn.execute(
                "SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)").fetchone()
        assert row == (200,)
        assert fresh.invocations("simple") == 1
    finally:
        pg.stop()
