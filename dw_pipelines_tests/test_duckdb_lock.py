"""A DuckDB warehouse held by another process: the sync says it waits, for whom and how long."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dw_pipelines.sync.errors import WarehouseUnreachable
from dw_pipelines.sync.warehouses.duckdb import DuckDBWarehouse

HOLD = (
    "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('held', flush=True);"
    " input(); con.close()"
)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """Another process with the warehouse file open until a line arrives on its stdin."""
    path = tmp_path / "warehouse.duckdb"
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline() == "held\n"
    yield path, process
    process.kill()
    process.wait()


def test_a_locked_warehouse_names_the_holder_and_the_time_it_waited(
    holder: tuple[Path, subprocess.Popen[str]], caplog: pytest.LogCaptureFixture
) -> None:
    path, process = holder
    with (
        caplog.at_level(logging.WARNING, logger="dw_pipelines"),
        pytest.raises(WarehouseUnreachable, match="gave up after 0.5 s") as caught,
    ):
        DuckDBWarehouse(str(path), lock_timeout_s=0.5)

    assert f"(PID {process.pid})" in str(caught.value)
    waiting = [r.getMessage() for r in caplog.records if "waiting for it" in r.getMessage()]
    assert waiting and f"(PID {process.pid})" in waiting[0]
    assert "giving up after 0.5 s" in waiting[0]


class _ReleaseOnWait(logging.Handler):
    """Lets the holder go as soon as the waiting is announced: no guessing at timings."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        super().__init__()
        self.process = process

    def emit(self, record: logging.LogRecord) -> None:
        if "waiting for it" in record.getMessage() and self.process.stdin is not None:
            self.process.stdin.write("\n")
            self.process.stdin.flush()


def test_a_warehouse_opens_once_the_holder_lets_go(
    holder: tuple[Path, subprocess.Popen[str]],
) -> None:
    path, process = holder
    handler = _ReleaseOnWait(process)
    logger = logging.getLogger("dw_pipelines")
    logger.addHandler(handler)
    try:
        warehouse = DuckDBWarehouse(str(path), lock_timeout_s=60)
    finally:
        logger.removeHandler(handler)
    try:
        assert warehouse.rows("SELECT 1") == [(1,)]
    finally:
        warehouse.close()
    assert process.wait(timeout=30) == 0
