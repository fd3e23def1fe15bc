"""A decoder for PostgreSQL's built-in `pgoutput` logical replication protocol (version 1).

Message layouts follow the PostgreSQL 15 documentation, "Logical Replication Message Formats".
Column values arrive in the type's text output format; a TOASTed value an UPDATE did not touch
arrives as the marker `UNCHANGED` rather than a value, and must never be written as NULL.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class _Unchanged:
    """An unchanged TOASTed column in an UPDATE: keep whatever value the row already has."""

    _instance: _Unchanged | None = None

    def __new__(cls) -> _Unchanged:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = _Unchanged()
Value = str | None | _Unchanged
Tuple = tuple[Value, ...]


@dataclass(frozen=True)
class Begin:
    final_lsn: int  # LSN of the commit record: the transaction's position in commit order
    commit_time: datetime
    xid: int


@dataclass(frozen=True)
class Commit:
    commit_lsn: int
    end_lsn: int  # the position to confirm once the transaction is applied
    commit_time: datetime


@dataclass(frozen=True)
class RelationColumn:
    name: str
    type_oid: int
    is_key: bool


@dataclass(frozen=True)
class Relation:
    oid: int
    namespace: str
    name: str
    replica_identity: str  # d(efault), n(othing), f(ull), i(ndex)
    columns: tuple[RelationColumn, ...]

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}.{self.name}"


@dataclass(frozen=True)
class Insert:
    relation_oid: int
    new: Tuple


@dataclass(frozen=True)
class Update:
    relation_oid: int
    new: Tuple
    old: Tuple | None  # the old key ('K') or the whole old row ('O'); None if the key is unchanged


@dataclass(frozen=True)
class Delete:
    relation_oid: int
    old: Tuple  # the key columns (others None) or, under REPLICA IDENTITY FULL, the whole row


@dataclass(frozen=True)
class Truncate:
    relation_oids: tuple[int, ...]


@dataclass(frozen=True)
class Other:
    kind: str  # Origin, Type, logical Message: nothing to apply


Message = Begin | Commit | Relation | Insert | Update | Delete | Truncate | Other

_I8 = struct.Struct(">q")
_I32 = struct.Struct(">i")
_I16 = struct.Struct(">h")


def _time(micros: int) -> datetime:
    return PG_EPOCH + timedelta(microseconds=micros)


def _cstring(data: bytes, pos: int) -> tuple[str, int]:
    end = data.index(b"\0", pos)
    return data[pos:end].decode(), end + 1


def _tuple(data: bytes, pos: int) -> tuple[Tuple, int]:
    (count,) = _I16.unpack_from(data, pos)
    pos += 2
    values: list[Value] = []
    for _ in range(count):
        kind = data[pos]
        pos += 1
        if kind == 0x74:  # 't': text
            (length,) = _I32.unpack_from(data, pos)
            pos += 4
            values.append(data[pos : pos + length].decode())
            pos += length
        elif kind == 0x6E:  # 'n': NULL
            values.append(None)
        elif kind == 0x75:  # 'u': unchanged TOASTed value
            values.append(UNCHANGED)
        else:
            raise ValueError(f"pgoutput: unexpected tuple column kind {chr(kind)!r}")
    return tuple(values), pos


def decode(data: bytes) -> Message:
    """One pgoutput message (the payload of an XLogData) as a typed value."""
    kind = chr(data[0])
    if kind == "B":
        final_lsn, micros = _I8.unpack_from(data, 1)[0], _I8.unpack_from(data, 9)[0]
        return Begin(final_lsn, _time(micros), _I32.unpack_from(data, 17)[0])
    if kind == "C":
        commit_lsn, end_lsn, micros = struct.unpack_from(">qqq", data, 2)
        return Commit(commit_lsn, end_lsn, _time(micros))
    if kind == "I":
        (oid,) = _I32.unpack_from(data, 1)
        new, _ = _tuple(data, 6)  # after the 'N' marker
        return Insert(oid, new)
    if kind == "U":
        (oid,) = _I32.unpack_from(data, 1)
        pos, old = 5, None
        if data[pos] in (0x4B, 0x4F):  # 'K' old key, 'O' old row
            old, pos = _tuple(data, pos + 1)
        new, _ = _tuple(data, pos + 1)  # after the 'N' marker
        return Update(oid, new, old)
    if kind == "D":
        (oid,) = _I32.unpack_from(data, 1)
        old, _ = _tuple(data, 6)
        return Delete(oid, old)
    if kind == "R":
        (oid,) = _I32.unpack_from(data, 1)
        namespace, pos = _cstring(data, 5)
        name, pos = _cstring(data, pos)
        identity = chr(data[pos])
        (count,) = _I16.unpack_from(data, pos + 1)
        pos += 3
        columns = []
        for _ in range(count):
            flags = data[pos]
            column, pos = _cstring(data, pos + 1)
            type_oid = _I32.unpack_from(data, pos)[0]
            pos += 8  # type oid and typmod
            columns.append(RelationColumn(column, type_oid, bool(flags & 1)))
        return Relation(oid, namespace or "pg_catalog", name, identity, tuple(columns))
    if kind == "T":
        (count,) = _I32.unpack_from(data, 1)
        oids = struct.unpack_from(f">{count}i", data, 6)
        return Truncate(tuple(oids))
    return Other(kind)


def lsn_text(lsn: int) -> str:
    """An LSN the way PostgreSQL prints it: '16/B374D848'."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)
