"""The load unit on an in-memory DuckDB: rows, state and log line commit together or not at all."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dw_pipelines.sync.load_unit import LoadUnit
from dw_pipelines.sync.state import CursorPosition, StreamState, SyncLogLine
from dw_pipelines.sync.warehouses.duckdb import DuckDBWarehouse

STREAM = "src.items"


@pytest.fixture
def wh() -> Iterator[DuckDBWarehouse]:
    warehouse = DuckDBWarehouse(":memory:")
    warehouse.ensure_state_table()
    warehouse.execute("CREATE TABLE items (id BIGINT)")
    yield warehouse
    warehouse.close()


def load(unit: LoadUnit, wh: DuckDBWarehouse, ids: list[int], cursor: int) -> None:
    for i in ids:
        wh.execute("INSERT INTO items VALUES ($1)", [i])
    unit.write_state(StreamState(CursorPosition(cursor), row_count=len(ids)))
    unit.log(
        SyncLogLine(STREAM, "incremental_append", rows_read=len(ids), cursor_after=str(cursor))
    )


def committed(wh: DuckDBWarehouse) -> tuple[int, StreamState | None, list[tuple]]:
    log = wh.rows("SELECT stream_id, mode, rows_read, cursor_after FROM _dw.sync_log")
    return wh.row_count("items"), wh.read_state(STREAM), log


def test_rows_state_and_log_line_commit_together(wh: DuckDBWarehouse) -> None:
    with LoadUnit(wh, STREAM) as unit:
        assert unit.state is None
        load(unit, wh, [1, 2], cursor=2)

    rows, state, log = committed(wh)
    assert (rows, state, log) == (
        2,
        StreamState(CursorPosition(2), row_count=2),
        [(STREAM, "incremental_append", 2, "2")],
    )


def test_an_exception_rolls_back_rows_state_and_log_line(wh: DuckDBWarehouse) -> None:
    with pytest.raises(RuntimeError, match="source went away"), LoadUnit(wh, STREAM) as unit:
        load(unit, wh, [1, 2], cursor=2)
        raise RuntimeError("source went away")

    assert committed(wh) == (0, None, [])


def test_the_next_unit_reads_the_state_the_last_one_committed(wh: DuckDBWarehouse) -> None:
    with LoadUnit(wh, STREAM) as unit:
        load(unit, wh, [1], cursor=1)

    with LoadUnit(wh, STREAM) as unit:
        assert unit.state is not None and unit.state.cursor == 1


def test_a_checkpoint_keeps_what_it_committed_when_the_rest_fails(wh: DuckDBWarehouse) -> None:
    with pytest.raises(RuntimeError), LoadUnit(wh, STREAM) as unit:
        load(unit, wh, [1], cursor=1)
        unit.checkpoint()
        load(unit, wh, [2, 3], cursor=3)
        raise RuntimeError("killed")

    rows, state, log = committed(wh)
    assert (rows, state and state.cursor, len(log)) == (1, 1, 1)
