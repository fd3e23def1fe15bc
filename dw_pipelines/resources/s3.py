"""Amazon S3 and S3-compatible stores (MinIO, SeaweedFS, R2...) through boto3."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import dagster as dg
from botocore.config import Config

from dw_pipelines.resources.env import read_env
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
    scripts) may give the values directly instead. Nothing here is ever logged."""

    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    external_id: str | None = None
    max_attempts: int = 5
    name: str = "s3"

    def _value(self, given: str | None, variable: str | None, setting: str) -> str | None:
        return given or read_env(self.name, variable, setting)

    def client(self) -> Any:
        session = boto3.session.Session(
            aws_access_key_id=self._value(self.access_key_id, self.access_key_id_env, "s3.access_key_id_env"),
            aws_secret_access_key=self._value(self.secret_access_key, self.secret_access_key_env, "s3.secret_access_key_env"),
            aws_session_token=self._value(self.session_token, self.session_token_env, "s3.session_token_env"),
            region_name=self.region or None,
        )  # fmt: skip
        if self.role_arn:
            params: dict[str, Any] = {"RoleArn": self.role_arn, "RoleSessionName": "dw_pipelines"}
            external_id = self._value(self.external_id, self.external_id_env, "s3.external_id_env")
            if external_id:
                params["ExternalId"] = external_id
            creds = session.client("sts").assume_role(**params)["Credentials"]
            session = boto3.session.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
                region_name=self.region or None,
            )
        return session.client(
            "s3",
            endpoint_url=self._value(
                self.endpoint_url, self.endpoint_url_env, "s3.endpoint_url_env"
            ),
            config=Config(
                s3={"addressing_style": "path" if self.path_style else "auto"},
                retries={"max_attempts": self.max_attempts, "mode": "standard"},
            ),
        )

    @contextmanager
    def open(self) -> Iterator[S3Store]:
        client = self.client()
        try:
            yield S3Store(client)
        finally:
            client.close()
