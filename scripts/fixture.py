"""The local Lambda endpoint and a throwaway cluster pointed at it, set up once for the
tests (tests/conftest.py), the demo (scripts/demo.py) and the benchmark.

The endpoint is lambda_emulator serving examples/functions and checking every
request's SigV4 signature against one key pair. The cluster (cluster.py) is
configured as an operator would configure a server: endpoint_override in
postgresql.conf, the credentials and region in the server's environment.
"""

import contextlib
import os

from cluster import Cluster
from lambda_emulator import Emulator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUNCTIONS = os.path.join(ROOT, "examples", "functions")
ACCESS_KEY = "AKIATESTKEY000000000"
SECRET_KEY = "test-secret-never-printed-0123456789"
REGION = "us-east-1"
ACCOUNT = "123456789012"
SERVER_ENV = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def endpoint(**options):
    """The local Lambda endpoint (not yet started; use it as a context manager)."""
    return Emulator(FUNCTIONS, region=REGION, account_id=ACCOUNT, credentials={ACCESS_KEY: SECRET_KEY},
                    **options)


def cluster(endpoint_url, conf=None, extension=True, env=None, bin_directory=None):
    """A started throwaway cluster whose server calls endpoint_url with SERVER_ENV's
    credentials (env: more of the server's environment); with extension, aws_lambda is
    created in the database postgres. bin_directory: that PostgreSQL's (default: the one
    whose pg_config is on PATH)."""
    pg = Cluster(conf={"aws_lambda.endpoint_override": f"'{endpoint_url}'", **(conf or {})},
                 env={**SERVER_ENV, **(env or {})}, bin_directory=bin_directory)
    try:
        pg.start()
        if extension:
            pg.psql("CREATE EXTENSION aws_lambda CASCADE;", check=True)
    except BaseException:
        pg.stop()
        raise
    return pg


@contextlib.contextmanager
def running(conf=None, extension=True):
    """Both, stopped on exit: yields (endpoint, cluster)."""
    with endpoint() as emulator:
        pg = cluster(emulator.url, conf, extension)
        try:
            yield emulator, pg
        finally:
            pg.stop()
