"""SIGKILL a REST sync mid-read or just before its commit, rerun it: every record exactly once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dw_pipelines_tests.conftest import kill_child_at, warehouse_rows
from dw_pipelines_tests.rest_fixtures import STRIPE_KEY

EPOCH0 = 1_772_366_400


def child_args(rest, warehouse_url: str) -> list[str]:  # type: ignore[no-untyped-def]
    return ["dw_pipelines_tests._rest_sync_child", rest.base_url, str(rest.ca), warehouse_url]


def rerun(rest, warehouse_url: str) -> None:  # type: ignore[no-untyped-def]
    done = subprocess.run(
        [sys.executable, "-m", *child_args(rest, warehouse_url)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr[-2000:]


def loaded(warehouse_url: str) -> list[tuple]:
    return warehouse_rows(warehouse_url, "SELECT id, count(*) FROM api.customers GROUP BY id")


@pytest.mark.parametrize("marker", ["batch 4", "commit"])
def test_a_sync_killed_then_rerun_holds_every_record_exactly_once(
    rest, duckdb_warehouse_url, monkeypatch, marker
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("T_REST_KEY", STRIPE_KEY)
    first = [rest.api.stripe_add("customers", created=EPOCH0 + i // 3) for i in range(600)]
    rerun(rest, duckdb_warehouse_url)  # a first complete load
    # More customers, some in the cursor's own second; the next sync is killed, then rerun.
    later = [rest.api.stripe_add("customers", created=EPOCH0 + 199 + i // 5) for i in range(500)]
    word, _, number = marker.partition(" ")
    after = None if number else "batch"
    kill_child_at(child_args(rest, duckdb_warehouse_url), word, int(number or 1), after=after)
    assert sorted(i for i, _ in loaded(duckdb_warehouse_url)) == sorted(first)
    rerun(rest, duckdb_warehouse_url)
    rows = loaded(duckdb_warehouse_url)
    assert sorted(i for i, _ in rows) == sorted(first + later)
    assert {n for _, n in rows} == {1}
