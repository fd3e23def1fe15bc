"""Amazon S3 and S3-compatible stores (MinIO, SeaweedFS, R2...) through boto3."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import dagster as dg

from dw_pipelines.resources.env import read_env

# boto3 and botocore are imported where a client is made, not where definitions load.
if TYPE_CHECKING:
    import boto3
    from botocore.credentials import CredentialProvider, Credentials

    from dw_pipelines.sync.files.store import S3Store


class S3Settings(dg.Config):
    """Where an `s3` source's bucket lives and how to reach it: the YAML's `s3:` block and the
    resource's config at once. Secrets are named by env var; without keys, boto3's default
    chain (instance role, ~/.aws, AWS_* variables) is used."""

    region: str | None = None
    endpoint_url_env: str | None = None
    """Env var holding the endpoint of an S3-compatible store; unset for AWS."""
    access_key_id_env: str | None = None
    secret_access_key_env: str | None = None
    session_token_env: str | None = None
    role_arn: str | None = None
    """A role to assume with the credentials above."""
    external_id_env: str | None = None
    path_style: bool = False
    """Path-style addressing (`endpoint/bucket/key`), which most S3-compatible stores need."""


class S3Resource(S3Settings, dg.ConfigurableResource):
    """The variables named in the settings are read when a sync opens the store; code (tests,
    scripts) may give the values directly instead. `role_arn` assumes a role with the keys, and
    the role's credentials are renewed from STS before they expire (a run may outlast them).
    Nothing here is ever logged."""

    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    external_id: str | None = None
    max_attempts: int = 5
    name: str = "s3"

    def _value(self, given: str | None, variable: str | None, setting: str) -> str | None:
        return given or read_env(self.name, variable, f"s3.{setting}")

    def session(self) -> boto3.session.Session:
        """The boto3 session the client is made from; STS (for `role_arn`) is reached at boto3's
        configured endpoint (`AWS_ENDPOINT_URL_STS` for a regional or compatible one)."""
        import boto3
        import botocore.session
        from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials

        key_id = self._value(self.access_key_id, self.access_key_id_env, "access_key_id_env")
        secret = self._value(
            self.secret_access_key, self.secret_access_key_env, "secret_access_key_env"
        )
        token = self._value(self.session_token, self.session_token_env, "session_token_env")
        base = botocore.session.Session()
        if self.region:
            base.set_config_variable("region", self.region)
        if key_id or secret:
            base.set_credentials(key_id, secret, token or None)
        if not self.role_arn:
            return boto3.session.Session(botocore_session=base)
        extra: dict[str, Any] = {"RoleSessionName": "dw_pipelines"}
        external_id = self._value(self.external_id, self.external_id_env, "external_id_env")
        if external_id:
            extra["ExternalId"] = external_id
        fetcher = AssumeRoleCredentialFetcher(
            client_creator=base.create_client,
            source_credentials=base.get_credentials(),
            role_arn=self.role_arn,
            extra_args=extra,
        )
        # botocore asks STS again once the role's credentials come within its refresh window
        # (15 minutes before expiry), on whichever thread signs a request first.
        assumed = DeferredRefreshableCredentials(
            refresh_using=fetcher.fetch_credentials, method="assume-role"
        )
        role = botocore.session.Session()
        if self.region:
            role.set_config_variable("region", self.region)
        role.get_component("credential_provider").insert_before("env", _given(assumed))
        return boto3.session.Session(botocore_session=role)

    def client(self) -> Any:
        from botocore.config import Config

        return self.session().client(
            "s3",
            endpoint_url=self._value(self.endpoint_url, self.endpoint_url_env, "endpoint_url_env"),
            config=Config(
                s3={"addressing_style": "path" if self.path_style else "auto"},
                retries={"max_attempts": self.max_attempts, "mode": "standard"},
            ),
        )

    @contextmanager
    def open(self) -> Iterator[S3Store]:
        from dw_pipelines.sync.files.store import S3Store

        client = self.client()
        try:
            yield S3Store(client)
        finally:
            client.close()


def _given(credentials: Credentials) -> CredentialProvider:
    """A credential provider that hands out one (refreshable) credentials object (its class
    is made here because its base, botocore, is imported only when a client is made)."""
    from botocore.credentials import CredentialProvider

    class _Given(CredentialProvider):
        METHOD = "assume-role"
        CANONICAL_NAME = "dw-assume-role"

        def __init__(self, credentials: Credentials) -> None:
            super().__init__()
            self._credentials = credentials

        def load(self) -> Credentials:
            return self._credentials

    return _Given(credentials)
