"""Amazon S3 and S3-compatible stores (MinIO, SeaweedFS, R2...) through boto3."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:
    from dw_pipelines.sync.files.store import S3Store


class S3Resource(dg.ConfigurableResource):
    """Credentials come from boto3's default chain unless keys are given (as `dg.EnvVar`);
    `role_arn` then assumes a role with them. Nothing here is ever logged."""

    region: str | None = None
    endpoint_url: str | None = None
    """For S3-compatible stores; None for AWS."""
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    role_arn: str | None = None
    external_id: str | None = None
    path_style: bool = False
    """Path-style addressing (`endpoint/bucket/key`), which most S3-compatible stores need."""
    max_attempts: int = 5

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(
            aws_access_key_id=self.access_key_id or None,
            aws_secret_access_key=self.secret_access_key or None,
            aws_session_token=self.session_token or None,
            region_name=self.region or None,
        )
        if self.role_arn:
            params: dict[str, Any] = {"RoleArn": self.role_arn, "RoleSessionName": "dw_pipelines"}
            if self.external_id:
                params["ExternalId"] = self.external_id
            creds = session.client("sts").assume_role(**params)["Credentials"]
            session = boto3.session.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
                region_name=self.region or None,
            )
        return session.client(
            "s3",
            endpoint_url=self.endpoint_url or None,
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
