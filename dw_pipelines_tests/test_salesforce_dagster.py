"""Salesforce streams as Dagster assets: the YAML catalog, materialization metadata (API calls
included), failures that say why without a secret, and the concurrency pool."""

from __future__ import annotations

import dagster as dg
import pytest

from dw_pipelines.components.stream_catalog import StreamCatalog
from dw_pipelines.resources.warehouse import WarehouseResource
from dw_pipelines.sync.spec import DeclarationError
from dw_pipelines_tests.conftest import warehouse_rows

CATALOG = """
sources:
  crm:
    type: salesforce
    salesforce:
      username_env: T_SF_USER
      password_env: T_SF_PASSWORD
      security_token_env: T_SF_TOKEN
      domain_env: T_SF_DOMAIN
      ca_bundle_env: T_SF_CA
      pool: crm_api
streams:
  - {source: crm, object: Account, mode: incremental_merge, exclude_columns: [Description]}
  - {source: crm, object: Contact, mode: incremental_merge, deletes: soft}
"""


def load_catalog(text: str) -> dg.Definitions:
    return StreamCatalog.resolve_from_yaml(text).build_defs(None)  # type: ignore[arg-type]


@pytest.fixture
def crm_env(salesforce, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for name, value in {
        "T_SF_USER": salesforce.org.username,
        "T_SF_PASSWORD": salesforce.org.password,
        "T_SF_TOKEN": salesforce.org.security_token,
        "T_SF_DOMAIN": salesforce.domain,
        "T_SF_CA": str(salesforce.ca),
    }.items():
        monkeypatch.setenv(name, value)


def materialize(defs: dg.Definitions, warehouse_url: str, key: list[str], **config):  # type: ignore[no-untyped-def]
    assets = defs.get_assets_def(dg.AssetKey(key))
    resources = {**defs.resources, "warehouse": WarehouseResource(url=warehouse_url)}  # type: ignore[dict-item]
    run_config = {"ops": {"__".join(key): {"config": config}}} if config else None
    return dg.materialize(
        [assets], resources=resources, raise_on_error=False, run_config=run_config
    )


def test_a_salesforce_stream_materializes_with_counts_schema_and_api_calls(
    salesforce, crm_env, duckdb_warehouse_url
) -> None:
    for n in range(3):
        salesforce.org.insert("Account", Name=f"Account {n}", Description="long text")
    defs = load_catalog(CATALOG)

    result = materialize(defs, duckdb_warehouse_url, ["crm", "account"])

    assert result.success
    metadata = result.asset_materializations_for_node("crm__account")[0].metadata
    assert metadata["dagster/row_count"].value == 3
    assert metadata["api_calls"].value == 4  # limits, describe, count, query
    assert metadata["api_daily_limit"].value == 15000
    columns = {c.name for c in metadata["dagster/column_schema"].value.columns}
    assert "SystemModstamp" in columns and "Description" not in columns
    assert warehouse_rows(duckdb_warehouse_url, "SELECT count(*) FROM crm.account") == [(3,)]


def test_a_soft_delete_stream_shows_the_deleted_at_column(
    salesforce, crm_env, duckdb_warehouse_url
) -> None:
    account = salesforce.org.insert("Account", Name="Acme")
    contact = salesforce.org.insert("Contact", AccountId=account, LastName="Hopper")
    defs = load_catalog(CATALOG)
    materialize(defs, duckdb_warehouse_url, ["crm", "contact"])
    salesforce.org.delete("Contact", contact)

    result = materialize(defs, duckdb_warehouse_url, ["crm", "contact"])

    metadata = result.asset_materializations_for_node("crm__contact")[0].metadata
    assert metadata["rows_deleted"].value == 1
    assert "_dw_deleted_at" in {c.name for c in metadata["dagster/column_schema"].value.columns}


def test_a_failed_salesforce_sync_says_why_and_shows_no_secret(
    salesforce, crm_env, duckdb_warehouse_url, monkeypatch
) -> None:
    monkeypatch.setenv("T_SF_PASSWORD", "Wr0ng-Secret-Pw!")
    defs = load_catalog(CATALOG)

    result = materialize(defs, duckdb_warehouse_url, ["crm", "account"])

    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    text = str(failure.event_specific_data)
    assert "login refused" in text and "INVALID_LOGIN" in text
    logged = "\n".join(str(e) for e in result.all_events)
    assert "Wr0ng-Secret-Pw!" not in logged
    assert salesforce.org.security_token not in logged


def test_salesforce_streams_run_in_the_source_pool(salesforce) -> None:
    defs = load_catalog(CATALOG)
    assets = defs.get_assets_def(dg.AssetKey(["crm", "account"]))
    assert assets.node_def.pool == "crm_api"


def test_salesforce_streams_default_to_the_id_key(salesforce) -> None:
    defs = load_catalog(CATALOG)
    spec = next(iter(defs.get_assets_def(dg.AssetKey(["crm", "contact"])).specs))
    assert spec.metadata["primary_key"] == "Id"


@pytest.mark.parametrize(
    ("stream", "error"),
    [
        ("{source: crm, object: Account, mode: full_refresh, deletes: soft}", r"field 'deletes'"),
        (
            "{source: crm, object: Account, mode: incremental_merge, exclude_columns: [Id]}",
            r"field 'exclude_columns'.*'Id'",
        ),
    ],
)
def test_invalid_salesforce_streams_are_refused_naming_the_field(stream, error) -> None:
    """A bad stream entry fails loading, naming the entry and the field."""
    text = CATALOG.split("streams:")[0] + f"streams:\n  - {stream}\n"
    with pytest.raises(DeclarationError, match=error):
        load_catalog(text)


def test_a_reconciling_run_removes_rows_whose_record_was_purged(
    salesforce, crm_env, duckdb_warehouse_url
) -> None:
    ids = [salesforce.org.insert("Account", Name=f"Account {n}") for n in range(3)]
    defs = load_catalog(CATALOG)
    materialize(defs, duckdb_warehouse_url, ["crm", "account"])
    salesforce.org.purge("Account", ids[0])

    result = materialize(defs, duckdb_warehouse_url, ["crm", "account"], reconcile=True)

    metadata = result.asset_materializations_for_node("crm__account")[0].metadata
    assert metadata["rows_deleted"].value == 1
    assert metadata["dagster/row_count"].value == 2


def test_the_instance_runs_at_most_two_streams_of_a_pool_at_once(
    salesforce, pg_warehouse_url, tmp_path
) -> None:
    """Three streams of the `salesforce` pool materialized in one run, as `dagster asset
    materialize` runs them: two hold the pool's slots (and are in flight at the org), the third
    waits for a slot, and all three finish once the org answers."""
    import os
    import shutil
    import subprocess
    import sys
    import threading
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(root / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DW_WAREHOUSE_URL": pg_warehouse_url,
        "DW_SALESFORCE_USERNAME": salesforce.org.username,
        "DW_SALESFORCE_PASSWORD": salesforce.org.password,
        "DW_SALESFORCE_SECURITY_TOKEN": salesforce.org.security_token,
        "DW_SALESFORCE_DOMAIN": salesforce.domain,
        "DW_SALESFORCE_CA_BUNDLE": str(salesforce.ca),
        # Room for every step at once: only the pool may hold the third stream back.
        "DAGSTER_MULTIPROCESS_EXECUTOR_MAX_CONCURRENT": "8",
    }
    org = salesforce.org
    org.gate = threading.Event()  # every stream stops at its first API request
    selection = "salesforce/account,salesforce/contact,salesforce/opportunity"
    run = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "asset", "materialize"]
        + ["--select", selection, "-m", "dw_pipelines.definitions"],
        env=env,
        cwd=tmp_path,  # not the project root, whose `.env` (from `make demo`) Dagster would load
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 180
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            # Until the run has placed all three steps; a run that ended, or a pool that let
            # all three through, stops the wait too (and fails below).
            while time.monotonic() < deadline:
                info = instance.event_log_storage.get_concurrency_info("salesforce")
                if (org.held, info.pending_step_count) == (2, 1) or org.held > 2:
                    break
                try:
                    run.wait(timeout=0.1)
                    break
                except subprocess.TimeoutExpired:
                    pass
            in_flight, waiting, slots = org.held, info.pending_step_count, info.slot_count
    finally:
        org.gate.set()
    _, err = run.communicate(timeout=300)

    assert (in_flight, waiting, slots) == (2, 1, 2), err[-3000:]
    assert run.returncode == 0, err[-3000:]
    assert org.most_held == 2
    for table in ("account", "contact", "opportunity"):
        assert warehouse_rows(pg_warehouse_url, f"SELECT count(*) FROM salesforce.{table}")


def test_a_failed_salesforce_run_through_the_cli_says_why_and_stores_no_secret(
    salesforce, tmp_path
) -> None:
    """Through `dagster asset materialize`, as a data engineer runs it: a run with a wrong
    password fails saying why, and no file Dagster wrote holds the password or the token."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(root / "dagster.yaml", home / "dagster.yaml")
    secret = "Sup3r-SF-Secret-Pw!"  # not the org's password: the login is refused
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DW_WAREHOUSE_URL": str(tmp_path / "warehouse.duckdb"),
        "DW_SALESFORCE_USERNAME": salesforce.org.username,
        "DW_SALESFORCE_PASSWORD": secret,
        "DW_SALESFORCE_SECURITY_TOKEN": salesforce.org.security_token,
        "DW_SALESFORCE_DOMAIN": salesforce.domain,
        "DW_SALESFORCE_CA_BUNDLE": str(salesforce.ca),
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "asset", "materialize"]
        + ["--select", "salesforce/account", "-m", "dw_pipelines.definitions"],
        env=env,
        cwd=tmp_path,  # not the project root, whose `.env` (from `make demo`) Dagster would load
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode != 0
    assert "login refused" in done.stdout + done.stderr
    for text in (done.stdout, done.stderr):
        assert secret not in text and salesforce.org.security_token not in text
    files = [p for p in home.rglob("*") if p.is_file()]
    assert files
    for path in files:
        content = path.read_bytes()
        assert secret.encode() not in content, path
        assert salesforce.org.security_token.encode() not in content, path


def test_an_invalid_reconcile_schedule_is_refused_naming_the_source() -> None:
    text = CATALOG.replace("pool: crm_api", "pool: crm_api\n      reconcile_schedule: every day")
    with pytest.raises(
        DeclarationError, match=r"sources.crm: field 'salesforce.reconcile_schedule'"
    ):
        load_catalog(text)
