"""Errors the sync engine raises. Messages are safe to show: no password, no secret."""

from __future__ import annotations


class SyncError(Exception):
    """A sync failed and advanced nothing; the message says why in a data engineer's terms."""


class SourceUnreachable(SyncError):
    """The source could not be reached or refused our credentials."""


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
