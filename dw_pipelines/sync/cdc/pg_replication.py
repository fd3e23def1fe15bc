"""A PostgreSQL database seen as a change stream: its publication, its slot, its WAL.

One logical replication slot and one publication per source database, shared by all of its CDC
streams, both named from the source (`dw_<source>`). We use the built-in `pgoutput` plugin: it
needs no extension on the server (managed services included), filters tables server-side by the
publication, marks unchanged TOASTed values explicitly, and sends TRUNCATE and relation (schema)
messages. psycopg2 is the client: psycopg 3 has no replication protocol API.
"""

from __future__ import annotations

import re
import select
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg2
import psycopg2.extras
from psycopg2 import sql
from psycopg2.extensions import quote_ident

from dw_pipelines.sync.cdc import pgoutput
from dw_pipelines.sync.cdc.pgtext import SESSION_OPTIONS
from dw_pipelines.sync.errors import (
    BadUrl,
    ReplicationNotReady,
    ReplicationSlotLost,
    SourceObjectMissing,
    SourceUnreachable,
)
from dw_pipelines.sync.redact import first_line, redact, safe_url
from dw_pipelines.sync.sources.sql import split_object
from dw_pipelines.sync.urls import MalformedUrl, libpq_url

# How far past the slot's confirmed position a look at pending changes decodes at most.
PEEK_WINDOW_BYTES = 16 << 20


def replication_name(source: str) -> str:
    """`dw_<source>`: a valid slot and publication name (lowercase, digits, underscore)."""
    return "dw_" + re.sub(r"[^a-z0-9_]", "_", source.lower())[:60]


@dataclass(frozen=True)
class SlotInfo:
    name: str
    confirmed_lsn: int
    wal_status: str  # reserved, extended, unreserved, lost
    active: bool
    lag_bytes: int  # current WAL position minus what the slot confirmed
    # Current WAL position minus the slot's restart_lsn: the WAL the server keeps for it. Decoding
    # must restart at the oldest transaction still open at the confirmed position, so this runs
    # ahead of `lag_bytes` (by tens of MB right after a large apply): size WAL disk by it.
    retained_bytes: int = 0

    @property
    def lost(self) -> bool:
        return self.wal_status == "lost"


@dataclass(frozen=True)
class Identity:
    oid: int
    keys: list[str]  # the columns an UPDATE's or DELETE's old row identifies the row by
    full: bool  # REPLICA IDENTITY FULL: the whole old row arrives
    type_oids: dict[str, int]  # column -> type, to notice a type changed while streaming


@dataclass(frozen=True)
class Keepalive:
    wal_end: int  # the server decoded the WAL up to here


class PgReplication:
    """Admin queries over a normal connection; the change stream over a replication one."""

    def __init__(
        self, url: str, source: str, slot: str | None = None, publication: str | None = None
    ):
        self.url, self.source = url, source
        self.slot = slot or replication_name(source)
        self.publication = publication or replication_name(source)
        self._admin: Any = None
        self._stream: Any = None
        self._stream_pid: int | None = None  # the server process reading the slot for us

    # -- connections --------------------------------------------------------------------------

    def _connect(self, **kwargs: Any) -> Any:
        try:
            dsn = libpq_url(self.url)
        except MalformedUrl as exc:
            raise BadUrl(f"source '{self.source}': its URL is malformed: {exc}") from None
        try:
            return psycopg2.connect(dsn, **kwargs)
        # The cause is dropped: libpq's message may quote the credentials.
        except psycopg2.Error as exc:
            detail = redact(first_line(exc), self.url)
            if "replication" in detail and "permission" in detail.lower():
                raise self._no_rights() from None
            raise SourceUnreachable(
                f"source '{self.source}' ({safe_url(self.url)}): cannot connect: {detail}"
            ) from None

    def _admin_connection(self) -> Any:
        if self._admin is None or self._admin.closed:
            self._admin = self._connect(options=SESSION_OPTIONS)  # arrays_to_json renders text
            self._admin.autocommit = True
        return self._admin

    def query(
        self, statement: str | sql.Composable, params: tuple[Any, ...] = ()
    ) -> list[tuple[Any, ...]]:
        """Run one statement; names from YAML go in as `sql.Identifier`, values as parameters."""
        with self._admin_connection().cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def _publication_names(self) -> str:
        # pgoutput splits this option like an identifier list: unquoted, a name is folded to
        # lowercase and a comma or quote in it would split or break the list.
        return quote_ident(self.publication, self._admin_connection())

    def close(self) -> None:
        for conn in (self._stream, self._admin):
            if conn is not None and not conn.closed:
                conn.close()
        self._stream = self._admin = None

    # -- prerequisites ------------------------------------------------------------------------

    def _no_rights(self) -> ReplicationNotReady:
        return ReplicationNotReady(
            f"source '{self.source}': the user in {safe_url(self.url)} may not use replication."
            " Grant it with `ALTER ROLE <user> WITH REPLICATION;` (and allow it in pg_hba.conf),"
            " or connect as a role that has it."
        )

    def check_ready(self) -> None:
        (wal_level,) = self.query("SHOW wal_level")[0]
        if wal_level != "logical":
            raise ReplicationNotReady(
                f"source '{self.source}': wal_level is '{wal_level}'; CDC needs 'logical'. Run"
                " `ALTER SYSTEM SET wal_level = logical;` and restart PostgreSQL (managed"
                " services: enable logical replication in the parameter group / flags)."
            )
        (allowed,) = self.query(
            "SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user"
        )[0]
        if not allowed:
            raise self._no_rights()

    def identity(self, obj: str) -> Identity:
        """How UPDATE and DELETE messages identify this table's rows (its replica identity).

        The key we match rows on must be exactly these columns: under DEFAULT or USING INDEX the
        old row of a DELETE carries nothing else. A deferrable primary key is not an identity
        (PostgreSQL rejects it too): inside one transaction two rows could hold the same key.
        """
        oid, replident = self.query(
            "SELECT c.oid, c.relreplident FROM pg_class c WHERE c.oid = %s::regclass",
            (self._regclass(obj),),
        )[0]
        flag = "i.indisreplident" if replident == "i" else "i.indisprimary AND i.indimmediate"
        keys = [
            name
            for (name,) in self.query(
                "SELECT a.attname FROM pg_index i"
                " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
                f" WHERE i.indrelid = %s AND {flag}"
                " ORDER BY array_position(i.indkey, a.attnum)",
                (oid,),
            )
        ]
        if replident == "n" or (replident in "di" and not keys):
            raise ReplicationNotReady(
                f"source '{self.source}': table '{obj}' has no primary key or replica identity"
                " (a DEFERRABLE primary key does not count); publishing it would make its"
                " UPDATEs and DELETEs fail on the source. Add a primary key, or run"
                f" `ALTER TABLE {obj} REPLICA IDENTITY FULL;`. The publication was left unchanged."
            )
        types = dict(
            self.query(
                "SELECT attname, atttypid::int FROM pg_attribute"
                " WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped",
                (oid,),
            )
        )
        return Identity(int(oid), keys, replident == "f", types)

    def array_types(self, obj: str) -> dict[str, str]:
        """Array columns and their SQL types: their text form is converted to JSON by the server,
        exactly as the snapshot read converts them."""
        rows = self.query(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
            " JOIN pg_type t ON t.oid = a.atttypid"
            " WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped"
            " AND t.typcategory = 'A'",
            (self._regclass(obj),),
        )
        return dict(rows)

    def arrays_to_json(self, sql_type: str, values: list[str | None]) -> list[str | None]:
        rows = self.query(
            f"SELECT to_json(v::{sql_type})::text FROM unnest(%s::text[]) WITH ORDINALITY"
            " AS u(v, i) ORDER BY i",
            (values,),
        )
        return [r[0] for r in rows]

    def _regclass(self, obj: str) -> str:
        schema, table = split_object(obj)
        # The server quotes the name, so a quote or dot inside it stays part of the name.
        qualified, oid = self.query(
            "SELECT format('%%I.%%I', %s, %s), to_regclass(format('%%I.%%I', %s, %s))",
            (schema or "public", table, schema or "public", table),
        )[0]
        if not oid:
            raise SourceObjectMissing(
                f"source '{self.source}': table '{obj}' does not exist (dropped or renamed?);"
                " nothing was synced"
            )
        return qualified

    # -- publication --------------------------------------------------------------------------

    def publication_exists(self) -> bool:
        return bool(
            self.query("SELECT 1 FROM pg_publication WHERE pubname = %s", (self.publication,))
        )

    def published(self) -> set[str]:
        """The tables the publication holds now, as `schema.table`."""
        return {
            f"{schema}.{table}"
            for schema, table in self.query(
                "SELECT n.nspname, c.relname FROM pg_publication p"
                " JOIN pg_publication_rel r ON r.prpubid = p.oid"
                " JOIN pg_class c ON c.oid = r.prrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE p.pubname = %s",
                (self.publication,),
            )
        }

    def sync_publication(self, objects: list[str]) -> tuple[list[str], list[str]]:
        """Make the publication hold exactly these tables; returns (added, removed)."""
        wanted = {self._qualified(o): o for o in objects}
        for obj in objects:
            self.identity(obj)
        # Changes to a partition are published as changes to the partitioned table we capture.
        if not self.publication_exists():
            self.query(
                sql.SQL("CREATE PUBLICATION {} WITH (publish_via_partition_root = true)").format(
                    sql.Identifier(self.publication)
                )
            )
        elif not self.query(
            "SELECT pubviaroot FROM pg_publication WHERE pubname = %s", (self.publication,)
        )[0][0]:
            self.query(
                sql.SQL("ALTER PUBLICATION {} SET (publish_via_partition_root = true)").format(
                    sql.Identifier(self.publication)
                )
            )
        current = self.published()
        added = sorted(set(wanted) - current)
        removed = sorted(current - set(wanted))
        for action, names in (("ADD", added), ("DROP", removed)):
            for name in names:
                self.query(
                    sql.SQL("ALTER PUBLICATION {} {} TABLE {}").format(
                        sql.Identifier(self.publication), sql.SQL(action), self._ident(name)
                    )
                )
        return added, removed

    @staticmethod
    def _qualified(obj: str) -> str:
        schema, table = split_object(obj)
        return f"{schema or 'public'}.{table}"

    @staticmethod
    def _ident(qualified: str) -> sql.Identifier:
        schema, table = qualified.split(".", 1)
        return sql.Identifier(schema, table)

    # -- slot ---------------------------------------------------------------------------------

    def slot_info(self) -> SlotInfo | None:
        rows = self.query(
            "SELECT confirmed_flush_lsn::text, coalesce(wal_status, 'lost'), active,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint"
            " FROM pg_replication_slots WHERE slot_name = %s",
            (self.slot,),
        )
        if not rows:
            return None
        lsn, status, active, lag, retained = rows[0]
        return SlotInfo(
            self.slot,
            pgoutput.parse_lsn(lsn) if lsn else 0,
            status,
            bool(active),
            int(lag or 0),
            int(retained or 0),
        )

    def create_slot(self) -> int:
        """Create the shared slot; returns the LSN it starts at."""
        rows = self.query(
            "SELECT lsn::text FROM pg_create_logical_replication_slot(%s, 'pgoutput')", (self.slot,)
        )
        return pgoutput.parse_lsn(rows[0][0])

    def drop_slot(self) -> bool:
        return bool(
            self.query(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE slot_name = %s",
                (self.slot,),
            )
        )

    def drop_publication(self) -> bool:
        existed = self.publication_exists()
        self.query(
            sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(self.publication))
        )
        return existed

    def current_lsn(self) -> int:
        return pgoutput.parse_lsn(self.query("SELECT pg_current_wal_flush_lsn()::text")[0][0])

    def oldest_pending(self, within_bytes: int = PEEK_WINDOW_BYTES) -> datetime | None:
        """Commit time of the oldest change the slot holds for us, or None if none is seen.

        Peeks without consuming. Decoding costs as much as the WAL it reads, so it reads none
        when WAL arithmetic says the slot is caught up, and stops `within_bytes` past the
        confirmed position: a change beyond that is not seen (callers weigh that much pending
        WAL by its size: `SlotInfo.lag_bytes`).
        """
        info = self.slot_info()
        if info is None or info.lag_bytes <= 0:
            return None
        rows = self.query(
            "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, %s::pg_lsn, 1,"
            " 'proto_version', '1', 'publication_names', %s)",
            (
                self.slot,
                pgoutput.lsn_text(info.confirmed_lsn + within_bytes),
                self._publication_names(),
            ),
        )
        for (data,) in rows:
            message = pgoutput.decode(bytes(data))
            if isinstance(message, pgoutput.Begin):
                return message.commit_time
        return None

    def lag_age_s(self, within_bytes: int = PEEK_WINDOW_BYTES) -> float | None:
        oldest = self.oldest_pending(within_bytes)
        return None if oldest is None else max(0.0, (datetime.now(UTC) - oldest).total_seconds())

    # -- snapshot and stream ------------------------------------------------------------------

    def _replication_connection(self) -> Any:
        return self._connect(
            connection_factory=psycopg2.extras.LogicalReplicationConnection,
            options=SESSION_OPTIONS,
        )

    @contextmanager
    def exported_snapshot(self) -> Iterator[tuple[str, int]]:
        """(snapshot name, LSN): the database exactly as of LSN, for as long as the block runs.

        A temporary slot exports it; changes committed at or after LSN are in the shared slot's
        stream and not in the snapshot, those before are in the snapshot and skipped from the
        stream. The slot and snapshot vanish when the block ends.
        """
        conn = self._replication_connection()
        try:
            cur = conn.cursor()
            name = f"{self.slot[:40]}_snap_{int(time.time() * 1000) % 10**9}"
            cur.execute(
                sql.SQL(
                    "CREATE_REPLICATION_SLOT {} TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT"
                ).format(sql.Identifier(name))
            )
            _, lsn, snapshot, _ = cur.fetchone()
            yield snapshot, pgoutput.parse_lsn(lsn)
        finally:
            conn.close()

    def stream(
        self, start_lsn: int, status_interval_s: float = 5.0
    ) -> Iterator[pgoutput.Message | Keepalive | None]:
        """Decoded messages from `start_lsn` on; a Keepalive whenever the server reports how far
        it has decoded, None when nothing arrived for a while. The caller stops iterating."""
        self._stream = self._replication_connection()
        self._stream_pid = self._stream.get_backend_pid()
        cur = self._stream.cursor()
        try:
            cur.start_replication(
                slot_name=self.slot,
                decode=False,
                start_lsn=start_lsn,
                status_interval=status_interval_s,
                options={
                    "proto_version": "1",
                    "publication_names": quote_ident(self.publication, cur),
                },
            )
        except psycopg2.Error as exc:
            raise ReplicationSlotLost(
                f"source '{self.source}': cannot stream from replication slot '{self.slot}': "
                + redact(first_line(exc), self.url)
            ) from None
        self._cursor = cur
        last_wal_end = 0
        while True:
            message = cur.read_message()
            if message is not None:
                yield pgoutput.decode(message.payload)
                continue
            if cur.wal_end and cur.wal_end != last_wal_end:
                last_wal_end = cur.wal_end
                yield Keepalive(cur.wal_end)
                continue
            # Nothing buffered: ask the server where it stands, then wait for a message.
            cur.send_feedback(reply=True)
            ready = select.select([self._stream], [], [], 0.5)[0]
            if not ready:
                yield None

    def confirm(self, lsn: int) -> None:
        """Tell the server everything before `lsn` is safely applied: it may recycle that WAL.
        Called only after the warehouse committed it."""
        if self._stream is not None and not self._stream.closed:
            self._cursor.send_feedback(flush_lsn=lsn, force=True)

    def advance(self, lsn: int) -> None:
        """Move the slot to `lsn` if it is behind, without a stream (e.g. after a crash that
        came between the warehouse commit and the confirmation)."""
        info = self.slot_info()
        if info is not None and info.confirmed_lsn < lsn:
            self.query(
                "SELECT pg_replication_slot_advance(%s, %s::pg_lsn)",
                (self.slot, pgoutput.lsn_text(lsn)),
            )

    def stop_stream(self, release_timeout_s: float = 10.0) -> bool:
        """Close the stream and wait until its server process has released the slot.

        Closing only tells the server: its walsender holds the slot until it has read the
        goodbye and exited. Whoever comes next (an `advance`, the next run, `drop`, the sensor's
        peek) would find the slot "active for PID …" and fail. Returns False if the slot is
        still held when the timeout ends."""
        if self._stream is not None and not self._stream.closed:
            self._stream.close()
        self._stream = None
        pid, self._stream_pid = self._stream_pid, None
        if pid is None:
            return True
        deadline = time.monotonic() + release_timeout_s
        while self.query(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s AND active_pid = %s",
            (self.slot, pid),
        ):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True
