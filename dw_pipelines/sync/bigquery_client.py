"""BigQuery clients, made one way for the warehouse and the source: Application Default
Credentials, a service-account key file, or (URL with `endpoint=`) a local emulator without
credentials. The key file's path and content are never shown."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dw_pipelines.sync.urls import BigQueryUrl

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.cloud import bigquery, bigquery_storage_v1


def credentials_for(target: BigQueryUrl, credentials_file: str | None) -> Credentials | None:
    """None means Application Default Credentials, found by each client itself."""
    if target.endpoint:
        # A local emulator takes no credentials.
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()  # type: ignore[no-untyped-call]
    if credentials_file:
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_file(credentials_file)  # type: ignore[no-any-return,no-untyped-call]
    return None


def bigquery_client(target: BigQueryUrl, credentials: Credentials | None) -> bigquery.Client:
    from google.cloud import bigquery

    options: dict[str, Any] = {}
    if target.endpoint:
        options["client_options"] = {"api_endpoint": target.endpoint}
    return bigquery.Client(
        project=target.project, credentials=credentials, location=target.location, **options
    )


def storage_read_client(
    target: BigQueryUrl, credentials: Credentials | None, storage_endpoint: str | None
) -> bigquery_storage_v1.BigQueryReadClient | None:
    """The Storage Read API client (gRPC), or None where there is none to reach: an emulator
    whose URL names no `storage_endpoint`."""
    from google.cloud import bigquery_storage_v1

    if target.endpoint:
        if not storage_endpoint:
            return None
        import grpc
        from google.cloud.bigquery_storage_v1.services.big_query_read.transports import (
            BigQueryReadGrpcTransport,
        )

        transport = BigQueryReadGrpcTransport(
            channel=grpc.insecure_channel(storage_endpoint), credentials=credentials
        )
        return bigquery_storage_v1.BigQueryReadClient(transport=transport)
    return bigquery_storage_v1.BigQueryReadClient(credentials=credentials)
