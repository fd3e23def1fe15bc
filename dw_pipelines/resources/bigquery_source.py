"""A BigQuery project read by the sync engine (tables by the Storage Read API, queries by REST
pages; see `sync/sources/bigquery.py`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import dagster as dg

from dw_pipelines.resources.env import SourceNotConfigured, read_env

if TYPE_CHECKING:
    from dw_pipelines.sync.sources.bigquery import BigQuerySource


class BigQuerySourceResource(dg.ConfigurableResource):
    """`url_env` names the variable holding `bigquery://project?...`;
    `credentials_file_env` the one naming a service-account key file (the variable unset:
    Application Default Credentials). Both are read when a sync opens the source."""

    name: str = "bigquery"
    url_env: str | None = None
    credentials_file_env: str | None = None
    queries: dict[str, str] = {}
    """Named SELECTs a stream's `object` may name instead of a table."""
    batch_rows: int = 50_000
    storage_api: bool = True

    @contextmanager
    def open(self) -> Iterator[BigQuerySource]:
        from dw_pipelines.sync.sources.bigquery import BigQuerySource

        url = read_env(self.name, self.url_env, "url_env")
        if not url:
            raise SourceNotConfigured(
                f"source '{self.name}' has no url_env (the variable with its bigquery:// URL)"
            )
        source = BigQuerySource(
            url,
            name=self.name,
            # Optional: the variable unset means Application Default Credentials.
            credentials_file=os.environ.get(self.credentials_file_env or "") or None,
            queries=self.queries,
            batch_rows=self.batch_rows,
            storage_api=self.storage_api,
            url_env=self.url_env,
        )
        try:
            yield source
        finally:
            source.close()
