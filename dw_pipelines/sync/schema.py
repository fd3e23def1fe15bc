"""The engine's column model: one logical type per column, mapped to Arrow and to each warehouse.

Sources describe their columns in these terms and deliver Arrow batches of exactly these Arrow
types; warehouses create tables from them. Keeping one model in the middle is what lets a new
source or warehouse be added without touching the others.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import pyarrow as pa

LogicalType = Literal[
    "boolean",
    "int16",
    "int32",
    "int64",
    "float32",
    "float64",
    "decimal",
    "string",
    "json",
    "uuid",
    "date",
    "time",
    "timestamp",
    "timestamptz",
    "binary",
]

# DuckDB and Arrow decimals stop at 38 digits; wider numerics travel as exact text.
MAX_DECIMAL_PRECISION = 38
# An unconstrained numeric has no declared scale: we keep 9 decimals and refuse values with more.
DEFAULT_DECIMAL = (38, 9)


@dataclass(frozen=True)
class Column:
    name: str
    type: LogicalType
    nullable: bool = True
    precision: int | None = None
    scale: int | None = None

    @property
    def type_label(self) -> str:
        if self.type == "decimal":
            return f"decimal({self.precision},{self.scale})"
        return self.type

    def arrow_type(self) -> pa.DataType:
        if self.type == "decimal":
            return pa.decimal128(self.precision or DEFAULT_DECIMAL[0], self.scale or 0)
        return _ARROW[self.type]

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @staticmethod
    def from_dict(d: dict[str, object]) -> Column:
        return Column(**d)  # type: ignore[arg-type]


_ARROW: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "string": pa.string(),
    "json": pa.string(),
    "uuid": pa.string(),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "binary": pa.binary(),
}


def decimal_column(name: str, precision: int | None, scale: int | None, nullable: bool) -> Column:
    """A decimal column, or exact text when Arrow and DuckDB cannot hold its precision."""
    if precision is None:
        precision, scale = DEFAULT_DECIMAL
    if precision > MAX_DECIMAL_PRECISION:
        return Column(name, "string", nullable)
    return Column(name, "decimal", nullable, precision, scale or 0)


def arrow_schema(columns: list[Column]) -> pa.Schema:
    return pa.schema([pa.field(c.name, c.arrow_type(), c.nullable) for c in columns])


def fingerprint(columns: list[Column]) -> str:
    """A short stable hash of names and types, stored with the state to spot schema changes."""
    payload = json.dumps([c.to_dict() for c in columns], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def column_changes(
    previous: Sequence[Column] | None, now: Sequence[Column], kept: Sequence[str] = ()
) -> tuple[list[str], list[str], list[str]]:
    """(appeared, disappeared, changed type): column names between those recorded at the
    previous sync and those now. Nothing before a first sync; `kept` are columns already known
    to be gone (kept as NULL), so they are reported once."""
    if not previous:
        return [], [], []
    known = {c.name: c for c in previous}
    names = {c.name for c in now}
    added = [c.name for c in now if c.name not in known]
    dropped = [n for n in known if n not in names and n not in kept]
    altered = [c.name for c in now if c.name in known and known[c.name].type_label != c.type_label]
    return added, dropped, altered
