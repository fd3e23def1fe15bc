"""A source's replication slot as the CDC sensor and lag check see it, from one call.

Both only read: whether the slot exists and is usable, how much WAL it holds back, and (when no
run is reading it, since peeking needs the slot free) how old the oldest change waiting for us
is. They ask `slot_status` and never handle a replication client themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dw_pipelines.sync.cdc.pg_replication import PEEK_WINDOW_BYTES, PgReplication, replication_name


@dataclass(frozen=True)
class SlotStatus:
    slot: str
    state: Literal["missing", "lost", "active", "idle"]
    """missing: never created (or dropped); lost: invalidated by the server; active: a run is
    reading it; idle: nobody is."""
    lag_bytes: int = 0
    confirmed_lsn: int = 0
    retained_bytes: int = 0
    """WAL the server keeps for the slot (from its restart_lsn): at least `lag_bytes`."""
    wal_status: str = ""
    oldest_pending_age_s: float | None = None
    """Age of the oldest change waiting for our tables; None when none is (or while active)."""

    @property
    def changes_pending(self) -> bool:
        return self.oldest_pending_age_s is not None


def slot_name(source: str, slot: str | None = None) -> str:
    return slot or replication_name(source)


def slot_status(
    url: str,
    source: str,
    slot: str | None = None,
    publication: str | None = None,
    peek_bytes: int = PEEK_WINDOW_BYTES,
) -> SlotStatus:
    """`peek_bytes`: how far past the confirmed position to look for a pending change (decoding
    costs what it reads; the caller weighs more pending WAL than that by `lag_bytes`)."""
    repl = PgReplication(url, source, slot, publication)
    try:
        info = repl.slot_info()
        if info is None:
            return SlotStatus(repl.slot, "missing")
        if info.lost:
            return SlotStatus(
                repl.slot,
                "lost",
                info.lag_bytes,
                info.confirmed_lsn,
                info.retained_bytes,
                info.wal_status,
            )
        return SlotStatus(
            repl.slot,
            "active" if info.active else "idle",
            info.lag_bytes,
            info.confirmed_lsn,
            info.retained_bytes,
            info.wal_status,
            None if info.active else repl.lag_age_s(peek_bytes),
        )
    finally:
        repl.close()
