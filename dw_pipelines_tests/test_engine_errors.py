"""Bad input fails with a clear error and advances nothing; secrets never show."""

from __future__ import annotations

import traceback
from datetime import datetime

import pyarrow as pa
import pytest

from dw_pipelines.sync.engine import sync_stream
from dw_pipelines.sync.errors import (
    CursorNullError,
    DataConversionError,
    DuplicateKeyError,
    SourceObjectMissing,
    SourceUnreachable,
    SyncError,
    WarehouseUnreachable,
    with_context,
)
from dw_pipelines.sync.sources.base import ReadRequest
from dw_pipelines.sync.sources.sql import SqlSource
from dw_pipelines.sync.spec import DeclarationError, StreamSpec
from dw_pipelines.sync.warehouses import open_warehouse
from dw_pipelines_tests.conftest import MYSQL_HOST, MYSQL_PORT, run_sql, run_sync, warehouse_rows

SECRET = "Sup3r-S3cret-Pw!"
MERGE = {"object": "orders", "mode": "incremental_merge", "primary_key": ["id"], "cursor": "ts"}


def everything_said(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


def snapshot(warehouse_url: str) -> tuple[list[tuple], list[tuple]]:
    return (
        warehouse_rows(warehouse_url, "SELECT id, note FROM src.orders ORDER BY id"),
        warehouse_rows(warehouse_url, "SELECT stream_id, state FROM _dw.stream_state"),
    )


@pytest.fixture
def synced_once(pg_source_url: str, warehouse_url: str) -> tuple[str, str]:
    """A source table synced once, so a failure can be checked to have changed nothing."""
    run_sql(
        pg_source_url,
        "CREATE TABLE orders (id int, note text, ts timestamp NOT NULL)",
        "INSERT INTO orders VALUES (1, 'a', '2026-01-01'), (2, 'b', '2026-01-02')",
    )
    run_sync(pg_source_url, warehouse_url, **MERGE)
    return pg_source_url, warehouse_url


def test_unreachable_source_fails_clearly_without_the_password(duckdb_warehouse_url: str) -> None:
    url = f"postgresql://dw:{SECRET}@127.0.0.1:1/shop"
    with pytest.raises(SourceUnreachable, match="source 'src'.*cannot connect") as caught:
        run_sync(url, duckdb_warehouse_url, **MERGE)
    assert SECRET not in everything_said(caught.value)
    assert "dw:***@127.0.0.1:1" in str(caught.value)


def test_wrong_credentials_fail_clearly_without_the_password(
    mysql_source_url: str, duckdb_warehouse_url: str
) -> None:
    user = "dwt_wrong_pw"
    run_sql(
        mysql_source_url,
        f"CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY 'the-right-one'",
        f"CREATE USER IF NOT EXISTS '{user}'@'localhost' IDENTIFIED BY 'the-right-one'",
    )
    try:
        url = f"mysql://{user}:{SECRET}@{MYSQL_HOST}:{MYSQL_PORT}/mysql"
        with pytest.raises(SourceUnreachable, match="Access denied") as caught:
            run_sync(url, duckdb_warehouse_url, **MERGE)
        assert SECRET not in everything_said(caught.value)
    finally:
        run_sql(
            mysql_source_url,
            f"DROP USER IF EXISTS '{user}'@'%'",
            f"DROP USER IF EXISTS '{user}'@'localhost'",
        )


def test_unreachable_warehouse_fails_clearly_without_the_password() -> None:
    url = f"postgresql://dw:{SECRET}@127.0.0.1:1/warehouse"
    with pytest.raises(
        WarehouseUnreachable, match="cannot connect to PostgreSQL warehouse"
    ) as caught:
        open_warehouse(url)
    assert SECRET not in everything_said(caught.value)


def test_a_table_that_disappeared_fails_and_changes_nothing(synced_once: tuple[str, str]) -> None:
    source_url, warehouse_url = synced_once
    before = snapshot(warehouse_url)
    run_sql(source_url, "DROP TABLE orders")

    with pytest.raises(SourceObjectMissing, match="table 'orders' does not exist"):
        run_sync(source_url, warehouse_url, **MERGE)

    assert snapshot(warehouse_url) == before


def test_nulls_in_the_cursor_column_fail_with_their_count_and_change_nothing(
    pg_source_url: str, warehouse_url: str
) -> None:
    run_sql(
        pg_source_url,
        "CREATE TABLE orders (id int, note text, ts timestamp)",
        "INSERT INTO orders VALUES (1, 'a', '2026-01-01'), (2, 'b', NULL), (3, 'c', NULL)",
    )
    with pytest.raises(CursorNullError, match="2 row.*NULL in the cursor column 'ts'"):
        run_sync(pg_source_url, warehouse_url, **MERGE)
    tables = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'src'"
    assert warehouse_rows(warehouse_url, tables) == [(0,)]


def test_duplicate_primary_keys_in_the_source_fail_a_merge_and_change_nothing(
    synced_once: tuple[str, str],
) -> None:
    source_url, warehouse_url = synced_once
    before = snapshot(warehouse_url)
    run_sql(source_url, "INSERT INTO orders VALUES (7, 'x', '2026-02-01'), (7, 'y', '2026-02-01')")

    with pytest.raises(
        DuplicateKeyError, match=r"duplicate primary keys \(id\), e.g. id=7 \(2 rows\)"
    ):
        run_sync(source_url, warehouse_url, **MERGE)

    assert snapshot(warehouse_url) == before


def test_a_null_primary_key_fails_a_merge_and_changes_nothing(synced_once: tuple[str, str]) -> None:
    source_url, warehouse_url = synced_once
    before = snapshot(warehouse_url)
    run_sql(source_url, "INSERT INTO orders VALUES (NULL, 'x', '2026-02-01')")

    with pytest.raises(DuplicateKeyError, match="NULL primary key"):
        run_sync(source_url, warehouse_url, **MERGE)

    assert snapshot(warehouse_url) == before


def test_a_source_failure_mid_stream_rolls_back_everything(
    pg_source_url: str, duckdb_warehouse_url: str
) -> None:
    run_sql(
        pg_source_url,
        "CREATE TABLE orders (id int PRIMARY KEY, note text, ts timestamp NOT NULL, n numeric)",
        "INSERT INTO orders SELECT g, 'n', '2026-01-01', 1 FROM generate_series(1, 5000) g",
        "INSERT INTO orders VALUES (5001, 'too precise', '2026-01-02', 1.0123456789012)",
    )
    source = SqlSource(pg_source_url, name="src", batch_bytes=4096)
    warehouse = open_warehouse(duckdb_warehouse_url)
    try:
        with pytest.raises(DataConversionError, match="stream 'src.orders'.*column 'n'"):
            sync_stream(StreamSpec(source="src", **MERGE), source, warehouse)  # type: ignore[arg-type]
        assert warehouse.rows("SELECT count(*) FROM _dw.stream_state") == [(0,)]
        assert not warehouse.table_exists("src", "orders")
    finally:
        warehouse.close()


@pytest.mark.parametrize(
    ("spec", "field", "problem"),
    [
        ({"mode": "incremental_merge", "cursor": "ts"}, "primary_key", "required"),
        ({"mode": "incremental_append"}, "cursor", "required"),
        ({"mode": "incremental_append", "cursor": "ts", "columns": ["id"]}, "cursor", "not in"),
        ({"mode": "incremental_append", "cursor": "ts", "lookback": -1}, "lookback", "negative"),
        (
            {"mode": "incremental_append", "cursor": "ts", "lookback": "soon"},
            "lookback",
            "duration",
        ),
        ({"mode": "full_refresh", "lookback": "1h"}, "lookback", "incremental"),
    ],
)
def test_a_bad_declaration_names_the_stream_and_field(
    spec: dict[str, object], field: str, problem: str
) -> None:
    with pytest.raises(DeclarationError, match=f"stream 'shop.orders': field '{field}'.*{problem}"):
        StreamSpec(source="shop", object="orders", **spec).validate()  # type: ignore[arg-type]


def test_an_unknown_mode_is_refused_naming_the_value() -> None:
    with pytest.raises(ValueError, match="'upsert'"):
        StreamSpec(source="shop", object="orders", mode="upsert")  # type: ignore[arg-type]


def test_a_window_on_a_full_refresh_stream_is_refused(
    pg_source_url: str, duckdb_warehouse_url: str
) -> None:
    from dw_pipelines.sync.engine import Window

    run_sql(pg_source_url, "CREATE TABLE orders (id int, ts timestamp)")
    with pytest.raises(SyncError, match="a window needs an incremental mode"):
        run_sync(
            pg_source_url,
            duckdb_warehouse_url,
            object="orders",
            mode="full_refresh",
            window=Window(datetime(2026, 1, 1), None),
        )


class _Refused(SourceUnreachable):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class _RefusingSource(SqlSource):
    """A real source whose reads fail with an error that carries an attribute and a cause."""

    def read(self, request: ReadRequest) -> pa.RecordBatchReader:
        try:
            raise ConnectionResetError("connection reset by peer")
        except ConnectionResetError as exc:
            raise _Refused("the server went away", code="08006") from exc


def test_a_source_error_keeps_its_type_attributes_and_cause_and_names_the_stream(
    pg_source_url: str, duckdb_warehouse_url: str
) -> None:
    run_sql(pg_source_url, "CREATE TABLE orders (id int, note text, ts timestamp NOT NULL)")
    source = _RefusingSource(pg_source_url, name="src")
    warehouse = open_warehouse(duckdb_warehouse_url)
    try:
        with pytest.raises(_Refused) as caught:
            sync_stream(StreamSpec(source="src", **MERGE), source, warehouse)  # type: ignore[arg-type]
    finally:
        warehouse.close()
        source.close()
    assert str(caught.value) == "stream 'src.orders': the server went away"
    assert caught.value.code == "08006"
    assert isinstance(caught.value.__cause__, ConnectionResetError)
    # The traceback still reaches down to where the error was raised.
    assert caught.traceback[-1].name == "read"


def test_context_added_to_an_error_keeps_its_constructor_arguments_as_attributes() -> None:
    try:
        try:
            raise ValueError("not a duration")
        except ValueError as cause:
            raise DeclarationError("shop.orders", "lookback", "is not a duration") from cause
    except DeclarationError as exc:
        original, same = exc, with_context(exc, "run 42")

    assert same is original
    assert str(same) == "run 42: stream 'shop.orders': field 'lookback': is not a duration"
    assert (same.stream, same.field_name, same.problem) == (
        "shop.orders",
        "lookback",
        "is not a duration",
    )
    assert isinstance(same.__cause__, ValueError)
