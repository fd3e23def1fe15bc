"""SIGKILL a Salesforce sync anywhere, rerun it: the warehouse equals the org's live records,
with no duplicate, no loss and every delete applied, through REST and through Bulk 2.0."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dw_pipelines_tests.conftest import kill_child_at, warehouse_rows

RECORDS = 2000
ROOT = Path(__file__).resolve().parents[1]


def stream(mode: str) -> dict[str, object]:
    spec: dict[str, object] = {"object": "Account", "mode": mode, "primary_key": ["Id"]}
    if mode != "full_refresh":
        spec |= {"cursor": "SystemModstamp", "lookback": "1 minute"}
    return spec


def source_settings(bulk: bool) -> dict[str, object]:
    return {"batch_rows": 200, "bulk_page_records": 200, "bulk_threshold": 1 if bulk else 10**6}


def child_config(salesforce, warehouse_url: str, mode: str, bulk: bool) -> str:  # type: ignore[no-untyped-def]
    settings = dataclasses.asdict(salesforce.settings(**source_settings(bulk)))
    auth = {k: v for k, v in dataclasses.asdict(salesforce.auth()).items() if v is not None}
    return json.dumps(
        {"warehouse_url": warehouse_url, "settings": settings, "spec": stream(mode), "auth": auth}
    )


def run_child(config: str, kill_at: str | None = None) -> None:
    """Sync in a child process; with `kill_at` ("batch N", or "commit": the first commit after
    a batch), SIGKILL it in that phase instead."""
    module = ["dw_pipelines_tests._salesforce_sync_child", config]
    if kill_at is not None:
        word, _, number = kill_at.partition(" ")
        kill_child_at(module, word, int(number or 1), after=None if number else "batch")
        return
    done = subprocess.run(
        [sys.executable, "-m", *module], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]


def churn(org) -> None:  # type: ignore[no-untyped-def]
    ids = sorted(org.records["Account"])
    for record_id in ids[::20]:
        org.update("Account", record_id, Name="changed")
    for record_id in ids[5::97]:
        org.delete("Account", record_id)
    org.purge("Account", ids[7])  # gone without trace: only a full refresh can notice
    for n in range(300):
        org.insert("Account", Name=f"new {n}")


@pytest.mark.parametrize("marker", ["batch 3", "commit"])
@pytest.mark.parametrize(
    ("mode", "bulk"),
    [("full_refresh", False), ("incremental_merge", False), ("incremental_merge", True)],
)
def test_rerun_after_kill_leaves_the_warehouse_equal_to_the_org(
    salesforce, duckdb_warehouse_url, mode, bulk, marker
) -> None:
    org = salesforce.org
    org.page_size = 200
    for n in range(RECORDS):
        org.insert("Account", Name=f"Account {n}")
    config = child_config(salesforce, duckdb_warehouse_url, mode, bulk)
    salesforce.sync(duckdb_warehouse_url, settings=source_settings(bulk), **stream(mode))
    before = dict(
        warehouse_rows(duckdb_warehouse_url, 'SELECT "Id", "Name" FROM salesforce.account')
    )
    purged = sorted(org.records["Account"])[7]
    churn(org)

    run_child(config, kill_at=marker)
    run_child(config)

    rows = warehouse_rows(
        duckdb_warehouse_url, 'SELECT "Id", "Name" FROM salesforce.account ORDER BY "Id"'
    )
    want = {r["Id"]: r["Name"] for r in org.live("Account")}
    if mode != "full_refresh":
        want[purged] = before[purged]  # a purge leaves no trace for queryAll to report
    assert rows == sorted(want.items())
