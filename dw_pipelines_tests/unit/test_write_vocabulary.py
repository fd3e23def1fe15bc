"""The warehouse write vocabulary: its SQL built without a connection, and its behaviour run on an
in-memory DuckDB, once as DuckDB and PostgreSQL write it (delete + insert) and once through a
MERGE statement, the way a BigQuery dialect would fill the same verb. No server needed."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from dw_pipelines.sync.engine import sync_stream
from dw_pipelines.sync.schema import Column
from dw_pipelines.sync.sources.sql import SqlSource
from dw_pipelines.sync.spec import StreamSpec
from dw_pipelines.sync.warehouses.base import DELETED_AT, MergeCounts
from dw_pipelines.sync.warehouses.duckdb import DuckDBWarehouse
from dw_pipelines.sync.warehouses.postgres import PostgresWarehouse

T1 = datetime(2026, 11, 2, tzinfo=UTC)
T2 = datetime(2026, 11, 3, tzinfo=UTC)
COLUMNS = [Column("id", "int64", False), Column("name", "string")]
TARGET, STAGE = '"s"."t"', '"s"."stage"'


class MergingDuckDB(DuckDBWarehouse):
    """A dialect whose merge is one MERGE statement; it overrides the verb and nothing else."""

    def merge_on_keys(  # type: ignore[override]
        self,
        target: str,
        stage: str,
        columns: Sequence[Column],
        keys: Sequence[str],
        synced_at: datetime,
        *,
        skip_unchanged: bool = False,
        live_column: str | None = None,
        newer_column: str | None = None,
        only: tuple[str, Any] | None = None,
    ) -> MergeCounts:
        sql = self.merge_sql(
            target,
            stage,
            columns,
            keys,
            skip_unchanged=skip_unchanged,
            live_column=live_column,
            newer_column=newer_column,
        )
        skipped = sum(self.count(statement) for statement in sql.skip)
        q, same_key = self.quote, self.same_key_sql(keys)
        matched = self.count(
            f"SELECT count(*) FROM {stage} s WHERE EXISTS (SELECT 1 FROM {target} t WHERE {same_key})"
        )
        sets = ", ".join(f"{q(c.name)} = s.{q(c.name)}" for c in columns)
        names = ", ".join(q(c.name) for c in columns)
        values = ", ".join(f"s.{q(c.name)}" for c in columns)
        written = self.count(
            f"MERGE INTO {target} t USING {stage} s ON {same_key}"
            f" WHEN MATCHED THEN UPDATE SET {sets}, _dw_synced_at = $1"
            f" WHEN NOT MATCHED THEN INSERT ({names}, _dw_synced_at) VALUES ({values}, $1)",
            [synced_at],
        )
        return MergeCounts(skipped, matched, written)


@pytest.fixture(params=[DuckDBWarehouse, MergingDuckDB], ids=["delete_insert", "merge"])
def wh(request: pytest.FixtureRequest) -> Iterator[DuckDBWarehouse]:
    warehouse = request.param(":memory:")
    warehouse.ensure_schema("s")
    warehouse.create_table(TARGET, COLUMNS)
    warehouse.execute(f"CREATE TABLE {STAGE} (id BIGINT, name VARCHAR)")
    yield warehouse
    warehouse.close()


def put(wh: DuckDBWarehouse, table: str, *rows: tuple[Any, ...]) -> None:
    """Rows of (id, name) into the stage, or of (id, name, _dw_synced_at) into the target."""
    for row in rows:
        names = ", ".join(["id", "name", "_dw_synced_at"][: len(row)])
        marks = ", ".join(f"${i}" for i in range(1, len(row) + 1))
        wh.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(row))


def target_rows(wh: DuckDBWarehouse) -> list[tuple[Any, ...]]:
    return wh.rows(f"SELECT id, name, _dw_synced_at FROM {TARGET} ORDER BY id")


def test_merge_replaces_changed_keys_adds_new_ones_and_leaves_unchanged_rows_alone(wh) -> None:
    put(wh, TARGET, (1, "a", T1), (2, "b", T1))
    put(wh, STAGE, (1, "a"), (2, "B"), (3, "c"))

    counts = wh.merge_on_keys(TARGET, STAGE, COLUMNS, ["id"], T2, skip_unchanged=True)

    assert (counts.skipped, counts.replaced, counts.new) == (1, 1, 1)
    assert target_rows(wh) == [(1, "a", T1), (2, "B", T2), (3, "c", T2)]


def test_merge_keeps_a_row_the_target_holds_newer(wh) -> None:
    wh.add_column(TARGET, Column("v", "int64"))
    wh.execute(f"ALTER TABLE {STAGE} ADD COLUMN v BIGINT")
    wh.execute(f"INSERT INTO {TARGET} VALUES (1, 'new', $1, 5), (2, 'old', $1, 1)", [T1])
    wh.execute(f"INSERT INTO {STAGE} VALUES (1, 'stale', 3), (2, 'newer', 4)")
    columns = [*COLUMNS, Column("v", "int64")]

    counts = wh.merge_on_keys(TARGET, STAGE, columns, ["id"], T2, newer_column="v")

    assert (counts.skipped, counts.replaced) == (1, 1)
    assert wh.rows(f"SELECT id, name, v FROM {TARGET} ORDER BY id") == [(1, "new", 5), (2, "newer", 4)]  # fmt: skip


def test_append_missing_adds_only_rows_the_target_lacks(wh) -> None:
    put(wh, TARGET, (1, None, T1))
    put(wh, STAGE, (1, None), (1, "x"), (2, None))

    appended = wh.append_missing(TARGET, STAGE, COLUMNS, T2, equal=["id"], null_safe=["name"])

    assert appended == 2
    assert target_rows(wh) == [(1, None, T1), (1, "x", T2), (2, None, T2)]


def test_delete_keys_removes_the_rows_whose_key_is_staged(wh) -> None:
    put(wh, TARGET, (1, "a", T1), (2, "b", T1), (3, "c", T1))
    put(wh, STAGE, (2, None), (9, None))

    assert wh.delete_keys(TARGET, STAGE, ["id"], soft_at=None) == 1
    assert [r[0] for r in target_rows(wh)] == [1, 3]


def test_delete_keys_absent_removes_the_rows_whose_key_is_not_staged(wh) -> None:
    put(wh, TARGET, (1, "a", T1), (2, "b", T1), (3, "c", T1))
    put(wh, STAGE, (2, None))

    assert wh.delete_keys(TARGET, STAGE, ["id"], soft_at=None, absent=True) == 2
    assert [r[0] for r in target_rows(wh)] == [2]


def test_soft_deletes_mark_live_rows_once_and_keep_them(wh) -> None:
    wh.add_column(TARGET, Column(DELETED_AT, "timestamptz"))
    put(wh, TARGET, (1, "a", T1), (2, "b", T1))
    put(wh, STAGE, (1, None))

    first = wh.delete_keys(TARGET, STAGE, ["id"], soft_at=T2)
    again = wh.delete_keys(TARGET, STAGE, ["id"], soft_at=T2)

    assert (first, again) == (1, 0)
    assert wh.rows(f"SELECT id, {DELETED_AT}, _dw_synced_at FROM {TARGET} ORDER BY id") == [
        (1, T2, T2),
        (2, None, T1),
    ]


def test_only_restricts_a_verb_to_the_stage_rows_with_that_value(wh) -> None:
    wh.execute(f"ALTER TABLE {STAGE} ADD COLUMN op VARCHAR")
    put(wh, TARGET, (1, "a", T1), (2, "b", T1))
    wh.execute(f"INSERT INTO {STAGE} VALUES (1, NULL, 'd'), (2, 'B', 'u')")

    deleted = wh.delete_keys(TARGET, STAGE, ["id"], soft_at=None, only=("op", "d"))

    assert deleted == 1
    assert [r[0] for r in target_rows(wh)] == [2]


def test_delete_all_marks_every_live_row_with_the_stamp(wh) -> None:
    wh.add_column(TARGET, Column(DELETED_AT, "timestamptz"))
    wh.add_column(TARGET, Column("_dw_lsn", "int64"))
    put(wh, TARGET, (1, "a", T1), (2, "b", T1))

    assert wh.delete_all(TARGET, soft_at=T2, stamp=[("_dw_lsn", 77)]) == 2
    assert wh.rows(f"SELECT DISTINCT {DELETED_AT}, _dw_lsn FROM {TARGET}") == [(T2, 77)]


def test_swap_in_replaces_the_table_by_the_one_built_beside_it(wh) -> None:
    wh.create_table('"s"."t__new"', COLUMNS)
    put(wh, '"s"."t__new"', (5, "e", T2))

    wh.swap_in("s", "t__new", "t")

    assert target_rows(wh) == [(5, "e", T2)]
    assert not wh.table_exists("s", "t__new")


def test_duplicate_and_null_keys_are_found(wh) -> None:
    put(wh, TARGET, (1, "a", T1), (1, "b", T1), (None, "c", T1))

    duplicates = wh.duplicate_keys(TARGET, ["id"])

    assert (duplicates.total, duplicates.examples) == (1, [((1,), 2)])
    assert wh.null_keys(TARGET, ["id"]) == 1


@pytest.mark.parametrize("dialect", [DuckDBWarehouse, PostgresWarehouse])
def test_the_sql_is_built_without_a_connection_and_quotes_every_identifier(dialect) -> None:
    sql = dialect.merge_sql(
        TARGET, STAGE, [Column('we"ird', "string")], ['we"ird'], skip_unchanged=True
    )

    assert sql.replace == (
        f'DELETE FROM {TARGET} t WHERE EXISTS (SELECT 1 FROM {STAGE} s WHERE t."we""ird" = s."we""ird")'
    )
    assert 't."we""ird" IS NOT DISTINCT FROM s."we""ird"' in sql.skip[0]
    assert sql.insert.endswith(
        f'("we""ird", "_dw_synced_at") SELECT s."we""ird", $1 FROM {STAGE} s'
    )


@pytest.mark.parametrize("dialect", [DuckDBWarehouse, PostgresWarehouse])
def test_soft_deletes_bind_the_time_and_the_filter_value(dialect) -> None:
    sql = dialect.delete_keys_sql(TARGET, STAGE, ["id"], soft=True, only="op", copy=["_dw_lsn"])

    assert sql == (
        f'UPDATE {TARGET} t SET "_dw_deleted_at" = $1, "_dw_synced_at" = $1, "_dw_lsn" = s."_dw_lsn"'
        f' FROM {STAGE} s WHERE s."op" = $2 AND t."id" = s."id" AND t."_dw_deleted_at" IS NULL'
    )


def test_the_engine_merges_through_a_merge_dialect_without_knowing_it(tmp_path) -> None:
    db = tmp_path / "src.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, v INTEGER NOT NULL)")
        con.executemany("INSERT INTO items VALUES (?, ?, ?)", [(1, "a", 1), (2, "b", 1)])
    spec = StreamSpec(
        source="src", object="items", mode="incremental_merge", primary_key=["id"], cursor="v"
    )  # type: ignore[arg-type]
    warehouse, source = MergingDuckDB(":memory:"), SqlSource(f"sqlite:///{db}", name="src")
    sync_stream(spec, source, warehouse)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE items SET name = 'B', v = 2 WHERE id = 2")
        con.execute("INSERT INTO items VALUES (3, 'c', 2)")

    result = sync_stream(spec, source, warehouse)

    counts = (result.rows_read, result.rows_unchanged, result.rows_updated, result.rows_inserted)
    assert counts == (3, 1, 1, 1)  # the cursor's own value is read again
    assert warehouse.rows('SELECT id, name FROM "src"."items" ORDER BY id') == [
        (1, "a"),
        (2, "B"),
        (3, "c"),
    ]
    warehouse.close()


@pytest.mark.parametrize("dialect", [DuckDBWarehouse, PostgresWarehouse])
def test_append_compares_json_columns_as_they_are_where_json_has_equality(dialect) -> None:
    sql = dialect.append_missing_sql(
        TARGET, STAGE, [Column("at", "timestamptz"), Column("doc", "json")],
        equal=["at"], null_safe=["doc"],
    )  # fmt: skip

    assert sql.endswith('WHERE t."at" = s."at" AND t."doc" IS NOT DISTINCT FROM s."doc")')
