"""What a stream is: the declaration the engine syncs, independent of Dagster and of YAML."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from dw_pipelines.sync.errors import SyncError


class SyncMode(StrEnum):
    FULL_REFRESH = "full_refresh"
    INCREMENTAL_APPEND = "incremental_append"
    INCREMENTAL_MERGE = "incremental_merge"
    CDC = "cdc"  # every insert, update and delete from the source's change log

    @property
    def incremental(self) -> bool:
        """Cursor-based incremental modes."""
        return self in (SyncMode.INCREMENTAL_APPEND, SyncMode.INCREMENTAL_MERGE)


class SchemaPolicy(StrEnum):
    """What a sync does when the source's columns differ from the warehouse table's.

    - add_columns (default): new source columns are added; a dropped or retyped column fails.
    - evolve: new columns are added, dropped ones are kept (NULL from then on), retyped ones
      are altered to the new type.
    - freeze: any difference fails the sync.
    """

    ADD_COLUMNS = "add_columns"
    EVOLVE = "evolve"
    FREEZE = "freeze"


class DeclarationError(SyncError):
    """A stream declaration is invalid; the message names the stream and the field."""

    def __init__(
        self, stream: str, field_name: str, problem: str, where: str | None = None
    ) -> None:
        super().__init__(f"{where or f'stream {stream!r}'}: field '{field_name}': {problem}")
        self.stream, self.field_name, self.problem = stream, field_name, problem


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$")
_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}  # fmt: skip


def parse_duration(text: str) -> timedelta:
    """'90s', '15 minutes', '2h', '1 day' -> timedelta. Raises ValueError otherwise."""
    match = _DURATION.match(text.lower())
    if not match or match[2] not in _UNITS:
        raise ValueError(f"'{text}' is not a duration like '15 minutes', '2h' or '1 day'")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


_NAME = re.compile(r"[^a-z0-9_]+")


def default_name(obj: str) -> str:
    """The asset/table name for an object: its last dotted part, lowercase snake_case."""
    return _NAME.sub("_", obj.split(".")[-1].lower()).strip("_") or "table"


PARTITION_GRANULARITIES = ("hour", "day", "month", "year")
# BigQuery clusters on at most four columns.
MAX_CLUSTER_COLUMNS = 4


@dataclass(frozen=True)
class TableLayout:
    """How the warehouse lays a stream's table out: time partitions on a DATE or TIMESTAMP
    column, and the columns rows are clustered by. BigQuery's (the YAML block is `bigquery:`);
    other warehouses create the table without it."""

    partition_by: str | None = None
    granularity: str = "day"
    cluster_by: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "cluster_by", tuple(self.cluster_by))

    def validate(self, stream: str, columns: tuple[str, ...] | None) -> None:
        if self.granularity not in PARTITION_GRANULARITIES:
            raise DeclarationError(
                stream, "bigquery.partition_by.granularity",
                f"must be one of {', '.join(PARTITION_GRANULARITIES)}, not {self.granularity!r}",
            )  # fmt: skip
        if len(self.cluster_by) > MAX_CLUSTER_COLUMNS:
            raise DeclarationError(
                stream, "bigquery.cluster_by", f"BigQuery clusters on at most {MAX_CLUSTER_COLUMNS}"
                f" columns, not {len(self.cluster_by)}",
            )  # fmt: skip
        if len(set(self.cluster_by)) != len(self.cluster_by):
            raise DeclarationError(stream, "bigquery.cluster_by", "lists a column twice")
        if columns is None:
            return  # the columns are known at sync time: the warehouse checks them then
        for field_name, names in (
            ("bigquery.partition_by.field", [self.partition_by] if self.partition_by else []),
            ("bigquery.cluster_by", list(self.cluster_by)),
        ):
            # The sync time is a column of every table, listed or not.
            missing = [n for n in names if n not in columns and n != "_dw_synced_at"]
            if missing:
                raise DeclarationError(
                    stream, field_name, f"column {missing[0]!r} is not in the stream's 'columns'"
                )


@dataclass(frozen=True)
class StreamSpec:
    """One source object synced into one warehouse table `<source>.<name>`."""

    source: str
    object: str
    mode: SyncMode = SyncMode.FULL_REFRESH
    primary_key: tuple[str, ...] = ()
    cursor: str | None = None
    # An integer (for numeric cursors) or a duration (for time cursors) re-read on every run,
    # so rows committed late with an older cursor value are still picked up.
    lookback: int | str | None = None
    columns: tuple[str, ...] | None = None
    schema_policy: SchemaPolicy = SchemaPolicy.ADD_COLUMNS
    name: str = ""
    # cdc, and incremental_merge from a source that reports deletes: a deleted source row is
    # removed ("hard") or kept with `_dw_deleted_at` set ("soft").
    deletes: str = "hard"
    # Columns left out of a stream that does not list its `columns`.
    exclude_columns: tuple[str, ...] = ()
    table_layout: TableLayout | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", SyncMode(self.mode))
        object.__setattr__(self, "schema_policy", SchemaPolicy(self.schema_policy))
        object.__setattr__(self, "primary_key", tuple(self.primary_key))
        if self.columns is not None:
            object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "exclude_columns", tuple(self.exclude_columns))
        if not self.name:
            object.__setattr__(self, "name", default_name(self.object))

    @property
    def stream_id(self) -> str:
        return f"{self.source}.{self.name}"

    def validate(self) -> None:
        """Raise DeclarationError naming the field for anything that cannot work."""
        sid = self.stream_id
        if not self.object.strip():
            raise DeclarationError(sid, "object", "must name a table")
        if self.mode is SyncMode.INCREMENTAL_MERGE and not self.primary_key:
            raise DeclarationError(sid, "primary_key", "is required for incremental_merge")
        if self.deletes not in ("hard", "soft"):
            raise DeclarationError(
                sid, "deletes", f"must be 'hard' or 'soft', not {self.deletes!r}"
            )
        if self.deletes == "soft" and self.mode not in (SyncMode.CDC, SyncMode.INCREMENTAL_MERGE):
            raise DeclarationError(
                sid, "deletes", "only applies to modes cdc and incremental_merge"
            )
        if self.mode is SyncMode.CDC and self.cursor:
            raise DeclarationError(
                sid, "cursor", "does not apply to mode cdc: changes come in commit order"
            )
        if self.mode.incremental and not self.cursor:
            raise DeclarationError(sid, "cursor", f"is required for {self.mode.value}")
        if self.columns is not None:
            for field_name, names in (
                ("primary_key", self.primary_key),
                ("cursor", (self.cursor,)),
            ):
                missing = [n for n in names if n and n not in self.columns]
                if missing:
                    raise DeclarationError(
                        sid, field_name, f"column {missing[0]!r} is not in the stream's 'columns'"
                    )
            if len(set(self.columns)) != len(self.columns):
                raise DeclarationError(sid, "columns", "lists a column twice")
        if self.exclude_columns:
            if self.columns is not None:
                raise DeclarationError(sid, "exclude_columns", "does not go with 'columns'")
            kept = [n for n in (*self.primary_key, self.cursor) if n in self.exclude_columns]
            if kept:
                raise DeclarationError(
                    sid, "exclude_columns", f"column {kept[0]!r} is the stream's key or cursor"
                )
        if self.table_layout is not None:
            self.table_layout.validate(sid, self.columns)
        if self.lookback is not None:
            if not self.mode.incremental:
                raise DeclarationError(sid, "lookback", "only applies to incremental modes")
            if isinstance(self.lookback, int):
                if self.lookback < 0:
                    raise DeclarationError(sid, "lookback", "must not be negative")
            else:
                try:
                    parse_duration(str(self.lookback))
                except ValueError as exc:
                    raise DeclarationError(sid, "lookback", str(exc)) from None
