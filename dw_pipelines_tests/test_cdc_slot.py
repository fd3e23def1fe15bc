"""The replication slot: created once, kept advancing, and never silently lost or misused."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dw_pipelines.sync.cdc.pgoutput import parse_lsn
from dw_pipelines.sync.errors import ReplicationNotReady, ReplicationSlotLost
from dw_pipelines_tests.conftest import (
    PG_ADMIN_URL,
    PG_HOST,
    _admin_execute,
    missing_in_ci_fails,
    query,
    run_cdc,
    run_sql,
    warehouse_rows,
)

ITEMS = {"object": "items"}
ROOT = Path(__file__).resolve().parents[1]


def make_items(url: str) -> None:
    run_sql(
        url,
        "CREATE TABLE items (id int PRIMARY KEY, name text)",
        "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 10) g",
    )


def mirrored(source_url: str, warehouse_url: str) -> bool:
    sql = "SELECT id, name FROM {} ORDER BY id"
    return warehouse_rows(warehouse_url, sql.format("src.items")) == query(
        source_url, sql.format("items")
    )


def slot_confirmed(url: str) -> int:
    return parse_lsn(
        query(
            url,
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE database = current_database()",
        )[0][0]
    )


def current_lsn(url: str) -> int:
    return parse_lsn(query(url, "SELECT pg_current_wal_lsn()::text")[0][0])


@pytest.mark.usefixtures("logical_wal")
def test_a_dropped_slot_fails_the_run_clearly_and_resnapshot_recovers(
    pg_source_url, duckdb_warehouse_url
) -> None:
    make_items(pg_source_url)
    run_cdc(pg_source_url, duckdb_warehouse_url, ITEMS)
    run_sql(pg_source_url, "SELECT pg_drop_replication_slot('dw_src')")
    run_sql(pg_source_url, "DELETE FROM items WHERE id = 1")  # a change nobody will stream

    with pytest.raises(ReplicationSlotLost, match=r"'dw_src' no longer exists.*resnapshot: true"):
        run_cdc(pg_source_url, duckdb_warehouse_url, ITEMS)
    assert not mirrored(pg_source_url, duckdb_warehouse_url)  # the stale table was left as it was

    result = run_cdc(pg_source_url, duckdb_warehouse_url, ITEMS, resnapshot=True)
    assert result.snapshots == ["src.items"]
    assert mirrored(pg_source_url, duckdb_warehouse_url)


@pytest.mark.usefixtures("logical_wal")
def test_an_invalidated_slot_fails_the_run_clearly(pg_source_url, duckdb_warehouse_url) -> None:
    make_items(pg_source_url)
    run_cdc(pg_source_url, duckdb_warehouse_url, ITEMS)
    _admin_execute(
        PG_ADMIN_URL, "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'", "SELECT pg_reload_conf()"
    )
    try:
        # Enough WAL past the slot that the server gives up keeping it at the next checkpoint.
        for _ in range(4):
            run_sql(
                pg_source_url,
                "SELECT pg_switch_wal()",
                "CREATE TEMP TABLE x AS SELECT 1",
                "CHECKPOINT",
            )
        run_sql(
            pg_source_url,
            "CREATE TABLE filler AS SELECT g, md5(g::text) FROM generate_series(1, 200000) g",
            "CHECKPOINT",
        )
        status = query(
            pg_source_url,
            "SELECT wal_status FROM pg_replication_slots WHERE database = current_database()",
        )[0][0]
        assert status == "lost"

        with pytest.raises(
            ReplicationSlotLost, match=r"invalidated.*max_slot_wal_keep_size.*resnapshot"
        ):
            run_cdc(pg_source_url, duckdb_warehouse_url, ITEMS)
    finally:
        _admin_execute(
            PG_ADMIN_URL, "ALTER SYSTEM RESET max_slot_wal_keep_size", "SELECT pg_reload_conf()"
        )
    run_cdc(pg_source_url, duckdb_warehouse_url, ITEMS, resnapshot=True)
    assert mirrored(pg_source_url, duckdb_warehouse_url)


@pytest.mark.usefixtures("logical_wal")
def test_the_slot_advances_while_captured_tables_are_idle_and_the_database_busy(
    pg_source_url, duckdb_warehouse_url
) -> None:
    make_items(pg_source_url)
    run_cdc(pg_source_url, duckdb_warehouse_url, ITEMS)
    run_sql(
        pg_source_url,
        "CREATE TABLE busy (id int PRIMARY KEY, payload text)",
        "INSERT INTO busy SELECT g, md5(g::text) FROM generate_series(1, 50000) g",
    )
    busy_until = current_lsn(pg_source_url)
    result = run_cdc(pg_source_url, duckdb_warehouse_url, ITEMS)

    assert result.transactions == 0
    assert slot_confirmed(pg_source_url) >= busy_until
    assert result.lsn_after >= busy_until  # and the warehouse knows it


def test_wal_level_below_logical_is_refused_with_the_fix(
    replica_only_server: str, duckdb_warehouse_url
) -> None:
    make_items(replica_only_server)
    with pytest.raises(
        ReplicationNotReady, match=r"wal_level is 'replica'.*ALTER SYSTEM SET wal_level = logical"
    ):
        run_cdc(replica_only_server, duckdb_warehouse_url, ITEMS)


@pytest.mark.usefixtures("logical_wal")
def test_a_user_without_replication_rights_is_refused_with_the_fix(
    pg_source_url, duckdb_warehouse_url
) -> None:
    make_items(pg_source_url)
    role = "dw_test_no_replication"
    _admin_execute(PG_ADMIN_URL, f"DROP ROLE IF EXISTS {role}", f"CREATE ROLE {role} LOGIN")
    try:
        url = pg_source_url.replace("postgres@", f"{role}@")
        with pytest.raises(ReplicationNotReady, match=r"may not use replication.*WITH REPLICATION"):
            run_cdc(url, duckdb_warehouse_url, ITEMS)
    finally:
        _admin_execute(PG_ADMIN_URL, f"DROP OWNED BY {role}", f"DROP ROLE {role}")


@pytest.mark.usefixtures("logical_wal")
def test_a_publication_named_in_yaml_with_quotes_capitals_and_commas_is_used_as_written(
    pg_source_url, duckdb_warehouse_url
) -> None:
    names = {"slot": "dw_src_custom", "publication": 'Shop "Items", v2'}
    make_items(pg_source_url)
    run_cdc(pg_source_url, duckdb_warehouse_url, ITEMS, **names)
    run_sql(pg_source_url, "UPDATE items SET name = 'renamed' WHERE id = 3")

    result = run_cdc(pg_source_url, duckdb_warehouse_url, ITEMS, **names)

    assert result.slot == "dw_src_custom"
    assert query(pg_source_url, "SELECT pubname FROM pg_publication") == [('Shop "Items", v2',)]
    assert mirrored(pg_source_url, duckdb_warehouse_url)
    assert warehouse_rows(duckdb_warehouse_url, "SELECT name FROM src.items WHERE id = 3") == [
        ("renamed",)
    ]


@pytest.mark.usefixtures("logical_wal")
def test_the_drop_command_removes_slot_and_publication(pg_source_url, duckdb_warehouse_url) -> None:
    make_items(pg_source_url)
    run_cdc(pg_source_url, duckdb_warehouse_url, ITEMS)
    env = {**os.environ, "SRC_URL": pg_source_url}
    command = [sys.executable, "-m", "dw_pipelines.sync.cdc"]
    status = subprocess.run([*command, "status", "--source", "src", "--url-env", "SRC_URL"],
                            env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert "slot dw_src: confirmed" in status.stdout

    dropped = subprocess.run([*command, "drop", "--source", "src", "--url-env", "SRC_URL"],
                             env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert "slot dw_src: dropped" in dropped.stdout
    assert "publication dw_src: dropped" in dropped.stdout
    assert query(
        pg_source_url,
        "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()",
    ) == [(0,)]
    assert query(pg_source_url, "SELECT count(*) FROM pg_publication") == [(0,)]


@pytest.fixture(scope="module")
def replica_only_server() -> Iterator[str]:
    """A second, throwaway PostgreSQL server with wal_level=replica, run as the postgres user."""
    initdb = Path("/usr/lib/postgresql/15/bin/initdb")
    if os.geteuid() != 0 or not initdb.exists() or shutil.which("runuser") is None:
        message = "needs root (to run a throwaway server as postgres) and PostgreSQL 15 binaries"
        missing_in_ci_fails(message)
    data = Path(tempfile.mkdtemp(prefix="dw_pg_replica_"))
    shutil.chown(data, "postgres", "postgres")
    port = 5499

    def as_postgres(*argv: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True)

    as_postgres(str(initdb), "-D", str(data / "db"), "-A", "trust", "-U", "postgres")
    as_postgres(
        str(initdb.parent / "pg_ctl"), "-D", str(data / "db"), "-w", "-l", str(data / "log"),
        "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c wal_level=replica", "start",
    )  # fmt: skip
    try:
        _admin_execute(
            f"postgresql+psycopg://postgres@{PG_HOST}:{port}/postgres", "CREATE DATABASE src"
        )
        yield f"postgresql://postgres@{PG_HOST}:{port}/src"
    finally:
        as_postgres(
            str(initdb.parent / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"
        )
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.usefixtures("logical_wal")
def test_a_look_at_pending_changes_decodes_no_further_than_its_window(
    pg_source_url, duckdb_warehouse_url
) -> None:
    from dw_pipelines.sync.cdc.pg_replication import PgReplication

    make_items(pg_source_url)
    run_cdc(pg_source_url, duckdb_warehouse_url, ITEMS)
    # A captured change behind more than a megabyte of WAL that concerns no captured table.
    run_sql(
        pg_source_url,
        "CREATE TABLE busy AS SELECT g, md5(g::text) FROM generate_series(1, 20000) g",
        "INSERT INTO items VALUES (100, 'late')",
    )
    repl = PgReplication(pg_source_url, "src")
    try:
        info = repl.slot_info()
        assert info is not None
        short = repl.oldest_pending(within_bytes=64 << 10)
        whole = repl.oldest_pending(within_bytes=info.lag_bytes + (1 << 20))
    finally:
        repl.close()

    assert info.lag_bytes > 1 << 20
    assert short is None
    assert whole is not None


def wal_positions(url: str) -> tuple[int, int]:
    """The server's current WAL position and the slot's restart_lsn, as byte offsets."""
    current, restart = query(
        url,
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,"
        " pg_wal_lsn_diff(restart_lsn, '0/0')::bigint"
        " FROM pg_replication_slots WHERE database = current_database()",
    )[0]
    return current, restart


@pytest.mark.usefixtures("logical_wal")
def test_status_shows_the_wal_the_slot_retains_beside_its_lag(
    pg_source_url, duckdb_warehouse_url
) -> None:
    from dw_pipelines.sync.cdc.slot_status import slot_status

    make_items(pg_source_url)
    run_cdc(pg_source_url, duckdb_warehouse_url, ITEMS)
    run_sql(
        pg_source_url, "INSERT INTO items SELECT g, md5(g::text) FROM generate_series(11, 20000) g"
    )
    run_cdc(pg_source_url, duckdb_warehouse_url, ITEMS)

    # Other sessions write WAL meanwhile, and a status call's peek may move restart_lsn forward
    # (the server releases WAL the slot no longer needs): the positions read before and after
    # bracket any figure read in between.
    current_before, restart_before = wal_positions(pg_source_url)
    status = slot_status(pg_source_url, "src")
    env = {**os.environ, "SRC_URL": pg_source_url}
    printed = subprocess.run(
        [sys.executable, "-m", "dw_pipelines.sync.cdc", "status", "--source", "src",
         "--url-env", "SRC_URL"], env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    current_after, restart_after = wal_positions(pg_source_url)
    low, high = current_before - restart_after, current_after - restart_before

    assert low <= status.retained_bytes <= high
    assert status.retained_bytes >= status.lag_bytes
    lag, retains = re.search(r"lag ([\d,]+) bytes, retains ([\d,]+) bytes of WAL", printed).groups()
    assert low <= int(retains.replace(",", "")) <= high
    assert int(lag.replace(",", "")) <= int(retains.replace(",", ""))


def server_log() -> Path | None:
    """The PostgreSQL server's log file, when this machine's layout lets a test read it."""
    logged = query(PG_ADMIN_URL.replace("+psycopg", ""), "SELECT pg_current_logfile()")[0][0]
    for path in [logged, "/var/log/postgresql/postgresql-15-main.log"]:
        if path and os.access(path, os.R_OK):
            return Path(path)
    return None


@pytest.mark.usefixtures("logical_wal")
def test_a_successful_run_hands_the_slot_back_without_racing_its_own_stream(
    pg_source_url, duckdb_warehouse_url
) -> None:
    from dw_pipelines.sync.cdc.runner import sync_postgres_cdc
    from dw_pipelines.sync.sources.sql import SqlSource
    from dw_pipelines.sync.spec import StreamSpec
    from dw_pipelines.sync.warehouses import open_warehouse

    make_items(pg_source_url)
    run_cdc(pg_source_url, duckdb_warehouse_url, ITEMS)
    log = server_log()
    log_start = log.stat().st_size if log else 0
    said: list[str] = []
    database = pg_source_url.rsplit("/", 1)[1]

    # The race lost about one run in five: ten runs, each with a change to apply.
    for i in range(10):
        run_sql(pg_source_url, f"INSERT INTO items VALUES ({100 + i}, 'new')")
        source, warehouse = (
            SqlSource(pg_source_url, name="src"),
            open_warehouse(duckdb_warehouse_url),
        )
        try:
            result = sync_postgres_cdc(
                "src", [StreamSpec(source="src", mode="cdc", object="items")], source, warehouse,
                log=said.append,
            )  # fmt: skip
        finally:
            warehouse.close()
            source.close()
        [(active, confirmed)] = query(
            pg_source_url,
            "SELECT active, confirmed_flush_lsn::text FROM pg_replication_slots"
            " WHERE database = current_database()",
        )
        assert not active
        assert parse_lsn(confirmed) >= result.lsn_after

    assert [m for m in said if "confirm" in m] == []
    assert mirrored(pg_source_url, duckdb_warehouse_url)
    if log is not None:
        with log.open(errors="replace") as lines:
            lines.seek(log_start)
            refused = [line for line in lines if database in line and "is active for PID" in line]
        assert refused == []


@pytest.mark.usefixtures("logical_wal")
def test_a_stopped_stream_has_released_the_slot_when_stop_returns(
    pg_source_url, duckdb_warehouse_url
) -> None:
    from dw_pipelines.sync.cdc.pg_replication import PgReplication

    make_items(pg_source_url)
    run_cdc(pg_source_url, duckdb_warehouse_url, ITEMS)
    repl = PgReplication(pg_source_url, "src")
    try:
        for _ in range(5):
            start = repl.slot_info().confirmed_lsn  # type: ignore[union-attr]
            for message in repl.stream(start):
                if message is None or type(message).__name__ == "Keepalive":
                    break
            holder = repl.query(
                "SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'dw_src'"
            )
            assert holder[0][0] is not None  # the stream holds the slot while it runs

            assert repl.stop_stream()
            assert repl.query(
                "SELECT active FROM pg_replication_slots WHERE slot_name = 'dw_src'"
            ) == [(False,)]
    finally:
        repl.close()
