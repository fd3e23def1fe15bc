"""Per-stream sync state. It is stored in the warehouse and written in the same transaction as
the rows it describes, so the data and the position it was read up to can never disagree."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from dw_pipelines.sync.cdc.pgoutput import lsn_text, parse_lsn
from dw_pipelines.sync.schema import Column, LogicalType

CursorValue = int | Decimal | datetime | date | str


def encode_cursor(value: CursorValue | None) -> Any:
    if value is None or isinstance(value, int | str):
        return value
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    raise TypeError(f"unsupported cursor value {type(value).__name__}")


def decode_cursor(raw: Any) -> CursorValue | None:
    if raw is None or isinstance(raw, int | str):
        return raw
    if "decimal" in raw:
        return Decimal(raw["decimal"])
    if "datetime" in raw:
        return datetime.fromisoformat(raw["datetime"])
    return date.fromisoformat(raw["date"])


def parse_cursor_text(text: str, column_type: LogicalType) -> CursorValue:
    """A cursor value typed by the column it belongs to, from CLI/config text."""
    if column_type in ("int16", "int32", "int64"):
        return int(text)
    if column_type == "decimal":
        return Decimal(text)
    if column_type in ("timestamp", "timestamptz"):
        value = datetime.fromisoformat(text)
        if column_type == "timestamptz" and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value
    if column_type == "date":
        return date.fromisoformat(text)
    return text


def cursor_text(value: CursorValue | None) -> str:
    """A cursor value as a person reads it (metadata, logs)."""
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, date) else str(value)


def subtract_lookback(value: CursorValue, lookback: int | timedelta | None) -> CursorValue:
    if not lookback:
        return value
    if isinstance(value, datetime | date) and isinstance(lookback, timedelta):
        if isinstance(value, datetime):
            return value - lookback
        return value - timedelta(days=lookback.days)
    if isinstance(value, int | Decimal) and isinstance(lookback, int):
        return value - lookback
    raise TypeError(
        f"a lookback of {lookback!r} does not apply to a cursor value like {cursor_text(value)!r}"
    )


@dataclass(frozen=True)
class CursorPosition:
    """A SQL or API stream's high-water mark: the largest cursor value loaded, and where the
    next read must start at the latest because transactions open at the last read may still
    commit rows stamped from then on (PostgreSQL sources; None elsewhere)."""

    value: CursorValue
    horizon: CursorValue | None = None


@dataclass(frozen=True)
class FilesPosition:
    """A file stream's last committed load unit: an object key (or manifest) and its time."""

    last_object: str
    last_modified: str  # ISO timestamp


@dataclass(frozen=True)
class CdcPosition:
    """A change stream's position: everything before `lsn` is applied; a table's changes count
    only from `snapshot_lsn`, where its snapshot was read (0: it needs one)."""

    lsn: int
    slot: str = ""
    snapshot_lsn: int = 0


Position = CursorPosition | FilesPosition | CdcPosition


def encode_position(position: Position | None) -> dict[str, Any] | None:
    if isinstance(position, CursorPosition):
        encoded = {"kind": "cursor", "value": encode_cursor(position.value)}
        if position.horizon is not None:
            encoded["horizon"] = encode_cursor(position.horizon)
        return encoded
    if isinstance(position, FilesPosition):
        return {
            "kind": "files",
            "last_object": position.last_object,
            "last_modified": position.last_modified,
        }
    if isinstance(position, CdcPosition):
        # The text form is for people reading the table; the integer is what is read back.
        return {
            "kind": "cdc",
            "lsn": position.lsn,
            "lsn_text": lsn_text(position.lsn),
            "slot": position.slot,
            "snapshot_lsn": position.snapshot_lsn,
        }
    return None


def decode_position(raw: dict[str, Any]) -> Position | None:
    """The position a state row records, in the current shape or the one before it (an untyped
    `cursor` beside an `extra` dict holding files or LSN positions), which warehouses still hold."""
    new = raw.get("position")
    if new is not None:
        kind = new["kind"]
        if kind == "cursor":
            value = decode_cursor(new["value"])
            horizon = decode_cursor(new.get("horizon"))
            return CursorPosition(value, horizon) if value is not None else None
        if kind == "files":
            return FilesPosition(new["last_object"], new["last_modified"])
        return CdcPosition(int(new["lsn"]), new.get("slot", ""), int(new.get("snapshot_lsn", 0)))
    cursor = decode_cursor(raw.get("cursor"))
    if cursor is not None:
        return CursorPosition(cursor)
    extra = raw.get("extra") or {}
    if "last_object" in extra:
        return FilesPosition(extra["last_object"], extra.get("last_modified", ""))
    if "cdc" in extra:  # a CDC table: the LSN was kept as text
        cdc = extra["cdc"]
        lsn = cdc.get("lsn") or "0/0"
        return CdcPosition(
            parse_lsn(lsn) if isinstance(lsn, str) else int(lsn),
            cdc.get("slot", ""),
            int(cdc.get("snapshot_lsn", 0)),
        )
    if "lsn" in extra:  # a CDC source's own row
        return CdcPosition(int(extra["lsn"]), extra.get("slot", ""))
    return None


@dataclass(frozen=True)
class StreamState:
    """Where a stream stands: its position, the warehouse table's columns, its row count.

    The position is typed per stream kind (a cursor value, the last file loaded, a WAL
    position) and commits with the data it describes, like everything else here.
    """

    position: Position | None = None
    columns: tuple[Column, ...] = ()
    schema_fingerprint: str = ""
    row_count: int = 0
    # Columns the table keeps though the source dropped them (schema policy evolve).
    kept_columns: tuple[str, ...] = ()

    @property
    def cursor(self) -> CursorValue | None:
        return self.position.value if isinstance(self.position, CursorPosition) else None

    def to_json(self) -> str:
        return json.dumps(
            {
                "position": encode_position(self.position),
                "columns": [c.to_dict() for c in self.columns],
                "schema_fingerprint": self.schema_fingerprint,
                "row_count": self.row_count,
                **({"kept_columns": list(self.kept_columns)} if self.kept_columns else {}),
            },
            sort_keys=True,
        )

    @staticmethod
    def from_json(text: str) -> StreamState:
        raw = json.loads(text)
        return StreamState(
            position=decode_position(raw),
            columns=tuple(Column.from_dict(c) for c in raw.get("columns", [])),
            schema_fingerprint=raw.get("schema_fingerprint", ""),
            row_count=raw.get("row_count", 0),
            kept_columns=tuple(raw.get("kept_columns", ())),
        )


def cursor_position(
    value: CursorValue | None, horizon: CursorValue | None = None
) -> CursorPosition | None:
    return CursorPosition(value, horizon) if value is not None else None


@dataclass(frozen=True)
class SyncLogLine:
    """One line of `_dw.sync_log`: what one commit of a stream did, in named fields."""

    stream_id: str
    mode: str
    rows_read: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    rows_deleted: int = 0
    row_count: int = 0
    cursor_before: str = ""
    cursor_after: str = ""
    window_text: str | None = None
