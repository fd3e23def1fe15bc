"""Schema changes in the source, under each schema policy."""

from __future__ import annotations

import pytest

from dw_pipelines.sync.errors import SchemaDriftError
from dw_pipelines_tests.conftest import run_sql, run_sync, warehouse_rows

STREAM = {"object": "items", "mode": "incremental_merge", "primary_key": ["id"], "cursor": "v"}


@pytest.fixture
def items(pg_source_url: str, warehouse_url: str) -> tuple[str, str]:
    run_sql(
        pg_source_url,
        "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2), qty int, v int NOT NULL)",
        "INSERT INTO items VALUES (1, 'a', 1.50, 3, 1), (2, 'b', 2.50, 4, 2)",
    )
    return pg_source_url, warehouse_url


def columns(warehouse_url: str) -> list[str]:
    return [
        r[0]
        for r in warehouse_rows(
            warehouse_url,
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'src' AND table_name = 'items' ORDER BY ordinal_position",
        )
    ]


def state(warehouse_url: str) -> list[tuple]:
    return warehouse_rows(warehouse_url, "SELECT state FROM _dw.stream_state")


def test_a_new_source_column_is_added_to_the_warehouse_table(items: tuple[str, str]) -> None:
    source_url, warehouse_url = items
    run_sync(source_url, warehouse_url, **STREAM)
    run_sql(
        source_url,
        "ALTER TABLE items ADD COLUMN color text",
        "INSERT INTO items VALUES (3, 'c', 1, 1, 3, 'red')",
    )

    result = run_sync(source_url, warehouse_url, **STREAM)

    assert result.columns_added == ["color"]
    assert columns(warehouse_url) == ["id", "name", "price", "qty", "v", "_dw_synced_at", "color"]
    rows = warehouse_rows(warehouse_url, "SELECT id, color FROM src.items ORDER BY id")
    assert rows == [(1, None), (2, None), (3, "red")]


def test_a_dropped_column_fails_naming_it_and_changes_nothing(items: tuple[str, str]) -> None:
    source_url, warehouse_url = items
    run_sync(source_url, warehouse_url, **STREAM)
    before = state(warehouse_url)
    run_sql(
        source_url, "ALTER TABLE items DROP COLUMN qty", "INSERT INTO items VALUES (3, 'c', 1, 3)"
    )

    with pytest.raises(SchemaDriftError, match="column 'qty' was dropped.*schema_policy: evolve"):
        run_sync(source_url, warehouse_url, **STREAM)

    assert state(warehouse_url) == before
    assert warehouse_rows(warehouse_url, "SELECT count(*) FROM src.items") == [(2,)]


def test_a_type_change_fails_naming_the_column_and_both_types(items: tuple[str, str]) -> None:
    source_url, warehouse_url = items
    run_sync(source_url, warehouse_url, **STREAM)
    run_sql(source_url, "ALTER TABLE items ALTER COLUMN price TYPE numeric(14,3)")

    with pytest.raises(
        SchemaDriftError,
        match=r"column 'price' changed type from decimal\(10,2\) to decimal\(14,3\)",
    ):
        run_sync(source_url, warehouse_url, **STREAM)


def test_evolve_keeps_a_dropped_column_as_null_and_alters_a_changed_type(
    items: tuple[str, str],
) -> None:
    source_url, warehouse_url = items
    run_sync(source_url, warehouse_url, **STREAM, schema_policy="evolve")
    run_sql(
        source_url,
        "ALTER TABLE items DROP COLUMN qty",
        "ALTER TABLE items ALTER COLUMN price TYPE numeric(14,3)",
        "ALTER TABLE items ALTER COLUMN id TYPE bigint",
        "INSERT INTO items VALUES (3, 'c', 12345678.125, 3)",
    )

    result = run_sync(source_url, warehouse_url, **STREAM, schema_policy="evolve")

    assert sorted(result.columns_altered) == ["id", "price"]
    rows = warehouse_rows(warehouse_url, "SELECT id, price, qty FROM src.items ORDER BY id")
    assert [(r[0], str(r[1]), r[2]) for r in rows] == [
        (1, "1.500", 3),
        (2, "2.500", 4),
        (3, "12345678.125", None),
    ]


def test_freeze_fails_on_a_new_column(items: tuple[str, str]) -> None:
    source_url, warehouse_url = items
    run_sync(source_url, warehouse_url, **STREAM, schema_policy="freeze")
    run_sql(source_url, "ALTER TABLE items ADD COLUMN color text")

    with pytest.raises(SchemaDriftError, match="new column 'color' \\(string\\)"):
        run_sync(source_url, warehouse_url, **STREAM, schema_policy="freeze")


def test_a_column_selection_loads_only_those_columns_and_ignores_new_ones(
    items: tuple[str, str],
) -> None:
    source_url, warehouse_url = items
    run_sync(source_url, warehouse_url, **STREAM, columns=["id", "price", "v"])
    run_sql(source_url, "ALTER TABLE items ADD COLUMN color text")

    result = run_sync(source_url, warehouse_url, **STREAM, columns=["id", "price", "v"])

    assert result.columns_added == []
    assert columns(warehouse_url) == ["id", "price", "v", "_dw_synced_at"]


def test_a_selected_column_missing_in_the_source_fails_naming_it(items: tuple[str, str]) -> None:
    source_url, warehouse_url = items
    with pytest.raises(SchemaDriftError, match="field 'columns': column 'colour' does not exist"):
        run_sync(source_url, warehouse_url, **STREAM, columns=["id", "colour", "v"])


def test_full_refresh_takes_a_new_column_without_complaint(items: tuple[str, str]) -> None:
    source_url, warehouse_url = items
    run_sync(source_url, warehouse_url, object="items", mode="full_refresh")
    run_sql(source_url, "ALTER TABLE items ADD COLUMN color text")

    result = run_sync(source_url, warehouse_url, object="items", mode="full_refresh")

    assert result.columns_added == ["color"]
    assert "color" in columns(warehouse_url)
