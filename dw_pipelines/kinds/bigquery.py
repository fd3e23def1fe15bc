"""BigQuery tables and queries as sources (e.g. the Cloud Billing export): each stream reads
one table (`object: dataset.table`) or one of the source's named `queries:`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

import dagster as dg

from dw_pipelines.kinds.base import (
    SourceKind,
    SourceModel,
    Spec,
    Stream,
    check_cron,
    table_stream_defs,
)
from dw_pipelines.kinds.sql import table_stream_spec
from dw_pipelines.resources.bigquery_source import BigQuerySourceResource
from dw_pipelines.sync.spec import DeclarationError, SyncMode

if TYPE_CHECKING:
    from dw_pipelines.kinds.streams import StreamModel

# The ingestion-time pseudo-column, as the YAML may name it, and the column it lands as.
PSEUDO_CURSORS = {"_PARTITIONTIME": "partition_time"}


class BigQuerySourceModel(SourceModel):
    type: Literal["bigquery"]
    url_env: str | None = None
    """Name of the environment variable holding `bigquery://project?location=EU`."""
    credentials_file_env: str | None = None
    """Name of the environment variable naming a service-account key file (default: ADC)."""
    queries: dict[str, str] = {}
    """Named SELECTs; a stream whose `object` is one of these names streams its result."""
    batch_rows: int = 50_000
    """Rows per REST page of a query's result (Storage Read batches are sized by BigQuery)."""
    storage_api: bool = True
    """Read tables through the Storage Read API; `false`: by a query job and REST pages."""
    pool: str | None = None
    """Dagster concurrency pool of the source's streams (default: none)."""


class BigQueryKind(SourceKind):
    types = ("bigquery",)
    model = BigQuerySourceModel

    def resource(self, name: str, source: SourceModel) -> BigQuerySourceResource:
        assert isinstance(source, BigQuerySourceModel)
        return BigQuerySourceResource(
            name=name,
            url_env=source.url_env,
            credentials_file_env=source.credentials_file_env,
            queries=source.queries,
            batch_rows=source.batch_rows,
            storage_api=source.storage_api,
        )

    def spec(self, name: str, source: SourceModel, stream: StreamModel) -> Spec:
        assert isinstance(source, BigQuerySourceModel)
        spec = table_stream_spec(stream)
        if not source.url_env:
            raise DeclarationError(
                stream.stream_label,
                "url_env",
                f"source '{name}' needs url_env (the variable with its bigquery:// URL)",
            )
        obj = spec.object
        if obj not in source.queries and not 2 <= len(obj.split(".")) <= 3:
            raise DeclarationError(
                stream.stream_label,
                "object",
                f"'{obj}' is neither dataset.table nor one of source '{name}''s queries"
                f" ({', '.join(source.queries) or 'it declares none'})",
            )
        if spec.mode is SyncMode.CDC:
            raise DeclarationError(stream.stream_label, "mode", "BigQuery has no change log (cdc)")
        if spec.cursor in PSEUDO_CURSORS:
            spec = replace(spec, cursor=PSEUDO_CURSORS[spec.cursor])
        pseudo = set(PSEUDO_CURSORS.values()) - {spec.cursor, *(spec.columns or ())}
        if pseudo:
            # Reading a pseudo-column takes a query job: leave it out unless it is asked for,
            # so a table's read stays on the Storage Read API.
            spec = replace(spec, exclude_columns=(*spec.exclude_columns, *sorted(pseudo)))
        spec.validate()
        if stream.schedule:
            check_cron(stream.stream_label, stream.schedule)
        return spec

    def build_defs(
        self, name: str, source: SourceModel, streams: Sequence[Stream]
    ) -> dg.Definitions:
        assert isinstance(source, BigQuerySourceModel)
        defs = [table_stream_defs(s, source_kind="bigquery", pool=source.pool) for s in streams]
        return dg.Definitions.merge(*defs) if defs else dg.Definitions()
