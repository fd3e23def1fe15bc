"""Per-stream sync state. It is stored in the warehouse and written in the same transaction as
the rows it describes, so the data and the position it was read up to can never disagree."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

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
class StreamState:
    """Where a stream stands: cursor high-water mark, the warehouse table's columns, row count.

    `extra` carries source-specific positions that must commit with the data too (processed
    files with their ETags, a replication LSN), so later sources reuse this one mechanism.
    """

    cursor: CursorValue | None = None
    columns: tuple[Column, ...] = ()
    schema_fingerprint: str = ""
    row_count: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "cursor": encode_cursor(self.cursor),
                "columns": [c.to_dict() for c in self.columns],
                "schema_fingerprint": self.schema_fingerprint,
                "row_count": self.row_count,
                "extra": self.extra,
            },
            sort_keys=True,
        )

    @staticmethod
    def from_json(text: str) -> StreamState:
        raw = json.loads(text)
        return StreamState(
            cursor=decode_cursor(raw.get("cursor")),
            columns=tuple(Column.from_dict(c) for c in raw.get("columns", [])),
            schema_fingerprint=raw.get("schema_fingerprint", ""),
            row_count=raw.get("row_count", 0),
            extra=raw.get("extra", {}),
        )
