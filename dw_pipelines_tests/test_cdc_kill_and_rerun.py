"""SIGKILL a CDC run anywhere, rerun it: the warehouse equals the source, each change applied once.

"Once" is checked through the run history committed with the data: every key below is updated
exactly once by the churn, so a transaction applied twice would count its updates twice.
"""

from __future__ import annotations

import pytest

from dw_pipelines_tests.conftest import kill_child_at, query, run_cdc, run_sql, warehouse_rows

pytestmark = pytest.mark.usefixtures("logical_wal")

ROWS = 20_000
STREAM = {"object": "events"}


def seed(source_url: str) -> None:
    run_sql(
        source_url,
        "CREATE TABLE events (id bigint PRIMARY KEY, amount numeric(12,2) NOT NULL, note text)",
        f"INSERT INTO events SELECT g, g / 100.0, 'note ' || g FROM generate_series(1, {ROWS}) g",
    )


def churn(source_url: str) -> dict[str, int]:
    """20 transactions of 100 updates, 50 inserts and 25 deletes on distinct keys, then one
    transaction of 2,000 updates (larger than the child's batch: flushed mid-transaction)."""
    statements = []
    for t in range(20):
        base = t * 200
        statements += [
            "BEGIN",
            f"UPDATE events SET amount = amount + 1 WHERE id > {base} AND id <= {base + 100}",
            f"INSERT INTO events SELECT g, 1, 'new' FROM generate_series({ROWS + base + 1}, {ROWS + base + 50}) g",
            f"DELETE FROM events WHERE id > {base + 100} AND id <= {base + 125}",
            "COMMIT",
        ]
    statements.append("UPDATE events SET note = 'bulk' WHERE id > 10000 AND id <= 12000")
    run_sql(source_url, *statements)
    return {"updated": 20 * 100 + 2000, "inserted": 20 * 50, "deleted": 20 * 25}


def kill_at(source_url: str, warehouse_url: str, marker: str, occurrence: int, *flags: str) -> None:
    args = ["dw_pipelines_tests._cdc_child", source_url, warehouse_url, *flags]
    kill_child_at(args, marker, occurrence)


def assert_mirrors(source_url: str, warehouse_url: str) -> None:
    sql = "SELECT id, amount, note FROM {} ORDER BY id"
    assert warehouse_rows(warehouse_url, sql.format("src.events")) == query(
        source_url, sql.format("events")
    )


def applied_totals(warehouse_url: str) -> dict[str, int]:
    updated, inserted, deleted = warehouse_rows(
        warehouse_url,
        "SELECT sum(rows_updated), sum(rows_inserted), sum(rows_deleted) FROM _dw.sync_log"
        " WHERE mode = 'cdc'",
    )[0]
    return {
        "updated": int(updated or 0),
        "inserted": int(inserted or 0),
        "deleted": int(deleted or 0),
    }


@pytest.mark.parametrize("occurrence", [2, 5])
def test_killed_during_the_snapshot_leaves_nothing_then_rerun_copies_all(
    pg_source_url, warehouse_url, occurrence: int
) -> None:
    seed(pg_source_url)
    kill_at(pg_source_url, warehouse_url, "batch", occurrence)
    run_cdc(pg_source_url, warehouse_url, STREAM)

    assert_mirrors(pg_source_url, warehouse_url)


@pytest.mark.parametrize(
    ("marker", "occurrence"),
    [
        ("load", 3),  # changes loaded, transaction open
        ("load", 9),  # inside the 2,000-update transaction, flushed but not committed
        ("commit", 4),  # just before the warehouse commit
        ("committed", 6),  # committed in the warehouse, slot not yet confirmed
    ],
)
def test_killed_while_applying_changes_then_rerun_applies_each_once(
    pg_source_url, warehouse_url, marker: str, occurrence: int
) -> None:
    seed(pg_source_url)
    run_cdc(pg_source_url, warehouse_url, STREAM)
    expected = churn(pg_source_url)
    kill_at(pg_source_url, warehouse_url, marker, occurrence)
    run_cdc(pg_source_url, warehouse_url, STREAM)

    assert_mirrors(pg_source_url, warehouse_url)
    assert applied_totals(warehouse_url) == expected


def test_killed_during_a_resnapshot_then_rerun_copies_again(pg_source_url, warehouse_url) -> None:
    # The killed run has already replaced the slot: the next run must not trust the old position.
    seed(pg_source_url)
    run_cdc(pg_source_url, warehouse_url, STREAM)
    churn(pg_source_url)
    kill_at(pg_source_url, warehouse_url, "batch", 2, "--resnapshot")
    run_sql(pg_source_url, "UPDATE events SET note = 'after the kill' WHERE id % 7 = 0")
    run_cdc(pg_source_url, warehouse_url, STREAM)

    assert_mirrors(pg_source_url, warehouse_url)


def test_killed_while_copying_a_table_captured_again_then_rerun_copies_it(
    pg_source_url, warehouse_url
) -> None:
    # While out of the catalog its changes went unseen; the killed run already published it again.
    seed(pg_source_url)
    run_sql(
        pg_source_url, "CREATE TABLE others (id int PRIMARY KEY)", "INSERT INTO others VALUES (1)"
    )
    run_cdc(pg_source_url, warehouse_url, STREAM, {"object": "others"})
    run_cdc(pg_source_url, warehouse_url, {"object": "others"})
    churn(pg_source_url)
    kill_at(pg_source_url, warehouse_url, "batch", 2, "--objects", "events,others")
    run_cdc(pg_source_url, warehouse_url, STREAM, {"object": "others"})

    assert_mirrors(pg_source_url, warehouse_url)
