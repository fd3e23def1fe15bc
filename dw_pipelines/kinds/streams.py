"""A `streams:` entry of the catalog: one source object (or prefix of files) to one table."""

from __future__ import annotations

from typing import Literal

import dagster as dg

from dw_pipelines.kinds.s3_files import FilesModel
from dw_pipelines.sync.spec import StreamSpec, TableLayout


class PartitionsModel(dg.Model):
    """Time partitions of an incremental stream: each partition is a window of its cursor
    column (a date or timestamp), in UTC; a partition's run loads exactly its window."""

    period: Literal["hourly", "daily", "monthly"]
    start: str
    """The first partition's start: a date (`2026-01-01`), or a date and hour for hourly."""


class PartitionByModel(dg.Model):
    """Time partitioning of a BigQuery table on a DATE or TIMESTAMP column."""

    field: str
    granularity: Literal["hour", "day", "month", "year"] = "day"


class BigQueryTableModel(dg.Model):
    """How the stream's table is laid out when the warehouse is BigQuery (other warehouses
    create it without this)."""

    partition_by: PartitionByModel | None = None
    cluster_by: list[str] = []
    """Up to four columns, in the order BigQuery sorts the rows of each partition by."""

    def to_layout(self) -> TableLayout:
        by = self.partition_by
        return TableLayout(
            partition_by=by.field if by else None,
            granularity=by.granularity if by else "day",
            cluster_by=tuple(self.cluster_by),
        )


class CheckModel(dg.Model):
    """One `checks:` entry: exactly one of the check types, with its parameters."""

    not_null: list[str] | str | None = None
    """Columns that must not be NULL (in live rows)."""
    accepted_values: str | None = None
    """A column whose values must be among `values` (NULL passes: use not_null for that)."""
    values: list[str | int | float | bool] | None = None
    range: str | None = None
    """A numeric column that must lie within `min` and/or `max` (inclusive)."""
    min: float | None = None
    max: float | None = None
    freshness: str | None = None
    """A duration ('1 day', '2h'): the stream must have synced successfully within it."""
    schema_drift: bool | None = None
    """`true`: warn when a column appeared, disappeared or changed type since the previous sync."""
    reconcile: bool | None = None
    """`true` (SQL sources): row count and key/cursor checksum agree with the source."""
    severity: Literal["warn", "error"] | None = None
    """`error` (blocking: downstream models do not build after a failure) or `warn`."""
    name: str | None = None
    """The check's name, when the default one (e.g. `range_total_amount`) is taken."""


class StreamModel(dg.Model):
    """One source table (or one prefix of files) synced into one warehouse table."""

    source: str
    object: str | None = None
    """SQL and API sources: the table or object to read."""
    files: FilesModel | None = None
    """`s3` sources: the objects to load."""
    name: str | None = None
    mode: Literal["full_refresh", "incremental_append", "incremental_merge", "cdc"] = "full_refresh"
    primary_key: list[str] = []
    cursor: str | None = None
    lookback: int | str | None = None
    columns: list[str] | None = None
    schema_policy: Literal["add_columns", "evolve", "freeze"] = "add_columns"
    group: str | None = None
    owners: list[str] | None = None
    description: str | None = None
    schedule: str | None = None
    """Optional cron: gives this stream its own job and schedule besides the shared ones."""
    deletes: Literal["hard", "soft"] = "hard"
    """cdc, and incremental_merge from Salesforce: remove deleted rows, or keep them with
    `_dw_deleted_at` set."""
    exclude_columns: list[str] = []
    """Columns not to sync (e.g. large text fields), when `columns` does not list them."""
    partitions: PartitionsModel | None = None
    """Incremental SQL and API streams: time partitions on the cursor column, to backfill by
    date range from the UI or the CLI without moving the live cursor."""
    checks: list[CheckModel] = []
    """Data-quality checks on the synced table, each an asset check (README, "Checks")."""
    bigquery: BigQueryTableModel | None = None
    """On BigQuery: the table's time partitioning and clustering (README, "BigQuery as the
    warehouse")."""

    @property
    def stream_label(self) -> str:
        """`source.name` as far as the entry says it, for error messages before it is valid."""
        return (
            f"{self.source}.{self.name or self.object or (self.files.prefix if self.files else '')}"
        )

    def to_spec(self) -> StreamSpec:
        return StreamSpec(
            source=self.source,
            object=self.object or "",
            mode=self.mode,  # type: ignore[arg-type]
            primary_key=tuple(self.primary_key),
            cursor=self.cursor,
            lookback=self.lookback,
            columns=tuple(self.columns) if self.columns is not None else None,
            schema_policy=self.schema_policy,  # type: ignore[arg-type]
            name=self.name or "",
            deletes=self.deletes,
            exclude_columns=tuple(self.exclude_columns),
            table_layout=self.bigquery.to_layout() if self.bigquery else None,
        )
