"""Operational SQL databases (PostgreSQL, MySQL/MariaDB, SQLite) by SQLAlchemy URL; a
PostgreSQL source may also stream changes (`mode: cdc`, see `postgres_cdc`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import dagster as dg

from dw_pipelines.ingest.partitions import parse_start
from dw_pipelines.kinds.base import (
    SourceKind,
    SourceModel,
    Spec,
    Stream,
    check_cron,
    table_stream_defs,
)
from dw_pipelines.kinds.postgres_cdc import CdcModel, cdc_defs, check_cdc_stream
from dw_pipelines.resources.sql_source import SqlSourceResource
from dw_pipelines.sync.spec import DeclarationError, StreamSpec, SyncMode

if TYPE_CHECKING:
    from dw_pipelines.kinds.streams import StreamModel


class SqlSourceModel(SourceModel):
    type: Literal["postgres", "mysql", "sqlite"]
    url_env: str | None = None
    """Name of the environment variable holding the SQLAlchemy URL (with its credentials)."""
    batch_rows: int = 50_000
    cdc: CdcModel | None = None
    """Change data capture settings (PostgreSQL), for streams with `mode: cdc`."""


def table_stream_spec(stream: StreamModel) -> StreamSpec:
    """The spec of a stream that names an object (table kinds share this first rule)."""
    if stream.files is not None or not stream.object:
        raise DeclarationError(
            stream.stream_label,
            "object",
            "a SQL source's stream names a table (`files:` is for s3)",
        )
    spec = stream.to_spec()
    if stream.partitions is not None:
        if not spec.mode.incremental:
            raise DeclarationError(
                stream.stream_label,
                "partitions",
                "windows of the cursor column need mode incremental_merge or incremental_append",
            )
        parse_start(stream.stream_label, stream.partitions.period, stream.partitions.start)
    return spec


class SqlKind(SourceKind):
    types = ("postgres", "mysql", "sqlite")
    model = SqlSourceModel

    def resource(self, name: str, source: SourceModel) -> SqlSourceResource:
        assert isinstance(source, SqlSourceModel)
        return SqlSourceResource(url_env=source.url_env, name=name, batch_rows=source.batch_rows)

    def spec(self, name: str, source: SourceModel, stream: StreamModel) -> Spec:
        assert isinstance(source, SqlSourceModel)
        spec = table_stream_spec(stream)
        if not source.url_env:
            raise DeclarationError(
                stream.stream_label,
                "url_env",
                f"source '{name}' needs url_env (the variable with its URL)",
            )
        spec.validate()
        if stream.schedule:
            check_cron(stream.stream_label, stream.schedule)
        if spec.mode is SyncMode.CDC:
            check_cdc_stream(name, source.type, source.cdc, stream)
        return spec

    def check_types(self, source: SourceModel, stream: StreamModel) -> tuple[str, ...]:
        types = super().check_types(source, stream)
        if stream.mode == "cdc":
            return types  # no reconciliation: the slot's position is no cursor to compare below
        # Reconciliation compares one row per key: append streams keep every version.
        if stream.primary_key and stream.mode in ("full_refresh", "incremental_merge"):
            types += ("reconcile",)
        return types

    def build_defs(
        self, name: str, source: SourceModel, streams: Sequence[Stream]
    ) -> dg.Definitions:
        assert isinstance(source, SqlSourceModel)
        cdc = [s for s in streams if s.model.mode == "cdc"]
        defs = [
            table_stream_defs(s, source_kind=source.type) for s in streams if s.model.mode != "cdc"
        ]
        if cdc:
            defs.append(cdc_defs(name, source.cdc, cdc))
        return dg.Definitions.merge(*defs) if defs else dg.Definitions()
