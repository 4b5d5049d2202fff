"""The server's AWS credentials and default region, as the AWS SDK finds them.

The standard botocore chain of the server process (environment, the OS user's
shared files, web identity, container and instance metadata), optionally used to
assume the operator's aws_lambda.role_arn with credentials that refresh before
they expire. One botocore session per backend, created on first use.
Keys in the server's environment are read directly (no botocore import), once per
backend: a server process's environment does not change while it runs.
Secrets stay inside the credential objects and the request signature.
"""

import _thread
import os

from plpy_lambda import errors

ROLE_SESSION_NAME = "aws_lambda-postgresql"


class Frozen(tuple):
    """The shape of botocore's frozen credentials: access_key, secret_key, token."""

    __slots__ = ()

    def __new__(cls, access_key, secret_key, token):
        return tuple.__new__(cls, (access_key, secret_key, token))

    access_key = property(lambda self: self[0])
    secret_key = property(lambda self: self[1])
    token = property(lambda self: self[2])


def environment_credentials():
    """Keys from the server's environment: the first link of botocore's chain, read
    directly so that the common case needs no botocore import at all."""
    access_key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not access_key or not secret_key or os.environ.get("AWS_CREDENTIAL_EXPIRATION"):
        return None
    token = os.environ.get("AWS_SESSION_TOKEN") or os.environ.get("AWS_SECURITY_TOKEN")
    return Frozen(access_key, secret_key, token or None)


class CredentialSource:
    def __init__(self):
        self._lock = _thread.allocate_lock()
        self._session = None
        self._base = None
        self._assumed = {}
        self._environment = False  # not read yet; then Frozen or None
        self._region = False  # not read yet

    def _botocore_session(self):
        if self._session is None:
            try:
                import botocore.session
            except ImportError:
                raise errors.NotInstalled("botocore") from None
            self._session = botocore.session.Session()
        return self._session

    def default_region(self):
        """The server's region: AWS_REGION, AWS_DEFAULT_REGION, then the shared config."""
        if self._region is False:
            self._region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if self._region:
            return self._region
        with self._lock:
            return self._botocore_session().get_config_variable("region")

    def config_variable(self, name):
        """A botocore configuration variable of the server process (environment, then the
        profile in the shared config file), e.g. "ca_bundle", "use_fips_endpoint"."""
        with self._lock:
            return self._botocore_session().get_config_variable(name)

    def profile(self):
        """The server's profile section of the shared config file, as botocore reads it
        (a dict; {} when there is none)."""
        with self._lock:
            return dict(self._botocore_session().get_scoped_config() or {})

    def get(self, role_arn, region):
        """Frozen credentials (access key, secret key, token) for one request."""
        if not role_arn:
            static = self._environment
            if static is False:
                static = self._environment = environment_credentials()
            if static is not None:
                return static
        import botocore.exceptions

        try:
            with self._lock:
                credentials = self._assumed_role(role_arn, region) if role_arn else self._chain()
            return credentials.get_frozen_credentials()
        except botocore.exceptions.BotoCoreError as error:
            raise errors.no_credentials(type(error).__name__) from None
        except botocore.exceptions.ClientError as error:
            code = error.response.get("Error", {}).get("Code", "ClientError")
            raise errors.no_credentials(f"assuming {role_arn} failed with {code}") from None

    def _chain(self):
        if self._base is None:
            self._base = self._botocore_session().get_credentials()
            if self._base is None:
                raise errors.no_credentials()
        return self._base

    def _assumed_role(self, role_arn, region):
        credentials = self._assumed.get(role_arn)
        if credentials is None:
            from botocore.credentials import (
                AssumeRoleCredentialFetcher,
                DeferredRefreshableCredentials,
            )

            session = self._botocore_session()
            sts_region = region or session.get_config_variable("region") or "us-east-1"

            def create_client(service, **kwargs):
                return session.create_client(service, region_name=sts_region, **kwargs)

            fetcher = AssumeRoleCredentialFetcher(
                client_creator=create_client,
                source_credentials=self._chain(),
                role_arn=role_arn,
                extra_args={"RoleSessionName": ROLE_SESSION_NAME},
            )
            credentials = DeferredRefreshableCredentials(
                refresh_using=fetcher.fetch_credentials, method="assume-role"
            )
            self._assumed[role_arn] = credentials
        return credentials
