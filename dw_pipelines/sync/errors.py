"""Errors the sync engine raises. Messages are safe to show: no password, no secret."""

from __future__ import annotations

from typing import TypeVar

E = TypeVar("E", bound=BaseException)


def with_context(exc: E, prefix: str) -> E:
    """The same error, its message now starting with `prefix: `; re-raise it with bare `raise`.

    Re-creating it as `type(exc)(message)` would drop its attributes, cause and traceback, and
    fails outright for errors whose constructor takes other arguments (DeclarationError). Only
    the first argument changes: our errors' messages are their first argument.
    """
    if exc.args and isinstance(exc.args[0], str):
        exc.args = (f"{prefix}: {exc.args[0]}", *exc.args[1:])
    else:
        exc.args = (f"{prefix}: {exc}",)
    return exc


class SyncError(Exception):
    """A sync failed and advanced nothing; the message says why in a data engineer's terms."""


class SourceUnreachable(SyncError):
    """The source could not be reached or refused our credentials."""


class BadUrl(SyncError):
    """A source's or warehouse's URL cannot be parsed or names a driver that is not installed."""


class WarehouseUnreachable(SyncError):
    """The warehouse could not be opened or reached."""


class SourceObjectMissing(SyncError):
    """The table (or object) a stream reads does not exist in the source."""


class SchemaDriftError(SyncError):
    """The source schema changed in a way the stream's schema policy does not accept."""


class CursorNullError(SyncError):
    """Rows with NULL in the cursor column would never be picked up by an incremental sync."""


class DuplicateKeyError(SyncError):
    """The source delivered the same primary key twice in one merge batch."""


class DataConversionError(SyncError):
    """A source value does not fit the column type it is declared with (e.g. too many decimals)."""


class ReplicationNotReady(SyncError):
    """The source database cannot do logical replication yet (wal_level, rights, identity)."""


class ReplicationSlotLost(SyncError):
    """The replication slot was dropped, invalidated or moved: changes may have been lost."""
