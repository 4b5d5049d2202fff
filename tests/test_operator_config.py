"""The operator's configuration: postgresql.conf and the server's environment."""

import psycopg
import pytest

import fixture
from cluster import Cluster, free_port
from conftest import SERVER_ENV


@pytest.fixture(scope="module")
def spare_cluster(emulator):
    """A second cluster whose configuration the tests here may change."""
    pg = Cluster(conf={"aws_lambda.endpoint_override": f"'http://127.0.0.1:{free_port()}'"},
                 env={k: v for k, v in SERVER_ENV.items() if k != "AWS_REGION"})
    pg.start()
    pg.psql("CREATE EXTENSION aws_lambda CASCADE;", check=True)
    yield pg
    pg.stop()


def connect(pg):
    return psycopg.connect(pg.dsn(), autocommit=True)


def test_unreachable_endpoint_is_rds_unable_to_connect(spare_cluster):
    out = spare_cluster.psql("SELECT * FROM aws_lambda.invoke('simple', '{}'::json, 'us-east-1');")
    assert "ERROR:  invoke API failed\n" in out
    assert "DETAIL:  AWS Lambda client returned 'Unable to connect to endpoint'.\n" in out
    assert 'SQL function "invoke" statement 1' in out
    with connect(spare_cluster) as conn:
        with pytest.raises(psycopg.Error) as caught:
            conn.execute("SELECT aws_lambda.invoke('simple', '{}'::json, 'us-east-1')")
        assert caught.value.diag.sqlstate == "LM001"
        assert "127.0.0.1" in caught.value.diag.message_hint
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_no_region_anywhere_is_an_error_naming_region(spare_cluster):
    with connect(spare_cluster) as conn:
        with pytest.raises(psycopg.Error) as caught:
            conn.execute("SELECT aws_lambda.invoke('simple', '{}'::json)")
        assert caught.value.diag.sqlstate == "22023"
        assert "argument region" in caught.value.diag.message_primary
        assert "AWS_REGION" in caught.value.diag.message_hint


def test_endpoint_override_follows_a_configuration_reload(spare_cluster, emulator):
    with connect(spare_cluster) as conn:
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT aws_lambda.invoke('simple', '{}'::json, 'us-east-1')")
        spare_cluster.write_conf({"aws_lambda.endpoint_override": f"'{emulator.url}'"})
        spare_cluster.reload()
        row = conn.execute("SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json, 'us-east-1')").fetchone()
        assert row == (200,)


@pytest.mark.parametrize("value, problem", [
    ("ftp://example.com/x", 'is not an endpoint URL: "ftp://example.com/x"'),
    ("https://example.com/prefix", 'has a path ("/prefix")'),
    ("https://user:s3cret@example.com", 'has a user name or password: "https://example.com"'),
])
def test_a_bad_endpoint_override_is_a_configuration_error(spare_cluster, value, problem):
    """Checked as the endpoint URLs of the environment and the shared config are: the
    same problems named, and nothing before an "@" (a password) shown."""
    spare_cluster.write_conf({"aws_lambda.endpoint_override": f"'{value}'"})
    spare_cluster.reload()
    try:
        with connect(spare_cluster) as conn:
            with pytest.raises(psycopg.Error) as caught:
                conn.execute("SELECT aws_lambda.invoke('simple', '{}'::json, 'us-east-1')")
    finally:
        spare_cluster.write_conf({"aws_lambda.endpoint_override": f"'http://127.0.0.1:{free_port()}'"})
        spare_cluster.reload()
    assert caught.value.diag.sqlstate == "LM020"
    assert caught.value.diag.message_primary.startswith(
        f"aws_lambda.endpoint_override in the server configuration {problem}")
    assert "s3cret" not in str(caught.value)


ROLE = "arn:aws:iam::123456789012:role/lambda-invoker"


@pytest.mark.parametrize("duration, expected_sts_calls", [(3600, 1), (30, 2)])
def test_role_arn_is_assumed_and_its_credentials_refresh(duration, expected_sts_calls):
    """The operator's role: STS AssumeRole with the server's keys, then calls signed with
    the temporary keys; credentials close to expiry are fetched again."""
    from conftest import ACCESS_KEY

    with fixture.endpoint(assume_role_duration=duration) as emu:
        pg = fixture.cluster(emu.url, conf={"aws_lambda.role_arn": f"'{ROLE}'"},
                             env={"AWS_ENDPOINT_URL_STS": emu.url})
        try:
            with connect(pg) as conn:
                for _ in range(2):
                    row = conn.execute("SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)").fetchone()
                    assert row == (200,)
            assert [r.role_arn for r in emu.requests] == [ROLE, ROLE]
            assert all(r.access_key != ACCESS_KEY for r in emu.requests)
            assert len(emu.assume_role_calls) == expected_sts_calls
        finally:
            pg.stop()
