"""End to end through the `dagster` CLI, as a data engineer runs it: real runs, a real instance."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from dw_pipelines.demo import drops, shop
from dw_pipelines.demo.payments import stripe_api
from dw_pipelines.devservices.salesforce_fake import seed_demo
from dw_pipelines_tests.conftest import MYSQL_HOST, MYSQL_PORT, warehouse_rows

ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).parent / "dagster")
SECRET = "Sup3r-S3cret-Pw!"


@pytest.fixture
def project_env(tmp_path: Path, local_s3, salesforce) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    db = tmp_path / "shop.sqlite"
    shop.build(db)
    drops.seed(local_s3.client())  # the demo's file drops, on the test session's S3 server
    seed_demo(salesforce.org, accounts=10)
    # The shipped catalog's stripe.charges reads the demo's Stripe API (no charges yet).
    with stripe_api(tmp_path) as stripe_env:
        yield {
            **os.environ,
            **local_s3.env(),
            "DAGSTER_HOME": str(home),
            "DW_WAREHOUSE_URL": str(tmp_path / "warehouse.duckdb"),
            "DW_DEMO_SHOP_URL": f"sqlite:///{db}",
            **salesforce_env(salesforce),
            **stripe_env,
        }


def salesforce_env(salesforce) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The variables defs/salesforce/defs.yaml names, pointing at the test's fake org."""
    return {
        "DW_SALESFORCE_USERNAME": salesforce.org.username,
        "DW_SALESFORCE_PASSWORD": salesforce.org.password,
        "DW_SALESFORCE_SECURITY_TOKEN": salesforce.org.security_token,
        "DW_SALESFORCE_DOMAIN": salesforce.domain,
        "DW_SALESFORCE_CA_BUNDLE": str(salesforce.ca),
    }


def dagster(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # Started outside the project root: Dagster's CLI loads `.env` from its working directory,
    # and the one `make demo` leaves there would override this test's variables.
    return subprocess.run(
        [DAGSTER, *args, "-m", "dw_pipelines.definitions"],
        env=env,
        cwd=Path(env["DAGSTER_HOME"]).parent,
        capture_output=True,
        text=True,
        timeout=300,
    )


def latest_metadata(env: dict[str, str], key: list[str]) -> dict[str, object]:
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(key))
        assert event is not None and event.asset_materialization is not None
        return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_asset_materialize_records_counts_cursor_and_schema(project_env: dict[str, str]) -> None:
    done = dagster(project_env, "asset", "materialize", "--select", "demo_shop/orders")
    assert done.returncode == 0, done.stderr[-3000:]

    metadata = latest_metadata(project_env, ["demo_shop", "orders"])
    assert metadata["dagster/row_count"] == 2000
    assert metadata["rows_inserted"] == 2000
    assert metadata["rows_read"] == 2000
    assert metadata["cursor_before"] == ""
    assert metadata["cursor_after"]
    assert metadata["dagster/table_name"] == "warehouse.demo_shop.orders"
    schema = metadata["dagster/column_schema"]
    assert [c.name for c in schema.columns][:3] == ["id", "customer_id", "status"]
    assert {c.name: c.type for c in schema.columns}["total_amount"] == "decimal(12,2)"


def test_second_run_of_the_main_job_reads_only_the_changes(
    project_env: dict[str, str], tmp_path: Path
) -> None:
    assert dagster(project_env, "job", "execute", "-j", "all_streams_job").returncode == 0
    changes = shop.churn(tmp_path / "shop.sqlite")
    done = dagster(project_env, "job", "execute", "-j", "all_streams_job")
    assert done.returncode == 0, done.stderr[-3000:]

    orders = latest_metadata(project_env, ["demo_shop", "orders"])
    assert orders["rows_inserted"] == changes["orders_inserted"]
    assert orders["rows_updated"] == changes["orders_updated"]
    assert orders["dagster/row_count"] == 2000 + changes["orders_inserted"]
    count = warehouse_rows(project_env["DW_WAREHOUSE_URL"], "SELECT count(*) FROM demo_shop.orders")
    assert count == [(2000 + changes["orders_inserted"],)]


def test_a_window_backfill_loads_the_range_and_leaves_the_cursor(
    project_env: dict[str, str],
) -> None:
    config = (
        '{"ops": {"demo_shop__orders": {"config":'
        ' {"window_start": "2000-01-01", "window_end": "2100-01-01"}}}}'
    )
    done = dagster(
        project_env, "asset", "materialize", "--select", "demo_shop/orders", "--config-json", config
    )
    assert done.returncode == 0, done.stderr[-3000:]

    metadata = latest_metadata(project_env, ["demo_shop", "orders"])
    assert metadata["rows_inserted"] == 2000
    assert metadata["cursor_after"] == ""
    assert metadata["window"] == "[2000-01-01, 2100-01-01)"


def test_a_failed_sync_says_why_and_never_shows_the_password(project_env: dict[str, str]) -> None:
    env = {**project_env, "DW_DEMO_SHOP_URL": f"postgresql://dw_user:{SECRET}@127.0.0.1:1/shop"}
    done = dagster(env, "asset", "materialize", "--select", "demo_shop/orders")
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "cannot connect" in output
    assert SECRET not in output

    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        records = instance.get_records_for_run(instance.get_runs()[0].run_id).records
        logged = "\n".join(str(r.event_log_entry) for r in records)
    assert "cannot connect" in logged
    assert SECRET not in logged
    # Nothing Dagster stored (run and event databases, compute logs) holds it either.
    for path in Path(env["DAGSTER_HOME"]).rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_a_password_with_url_special_characters_never_reaches_output_or_instance(
    project_env: dict[str, str],
) -> None:
    # Unencoded, as people paste generated passwords; MariaDB really checks and refuses it.
    password = "Zq7x/Kx9w@Wm3v:Pv5u%Ty8t?Rb2s#Hn6r Lc4q"
    url = f"mysql://dw_nobody:{password}@{MYSQL_HOST}:{MYSQL_PORT}/shop"
    env = {**project_env, "DW_DEMO_SHOP_URL": url}
    done = dagster(env, "asset", "materialize", "--select", "demo_shop/orders")

    assert done.returncode != 0
    assert "Access denied for user 'dw_nobody'" in done.stdout + done.stderr
    pieces = [
        password,
        *password.replace("/", " ")
        .replace("@", " ")
        .replace(":", " ")
        .replace("%", " ")
        .replace("?", " ")
        .replace("#", " ")
        .split(),
    ]
    stored = [p for p in Path(env["DAGSTER_HOME"]).rglob("*") if p.is_file()]
    # The scan covers the compute logs, where a printed traceback would land.
    assert any("compute_logs" in p.parts for p in stored)
    for piece in pieces:
        assert piece not in done.stdout + done.stderr, piece
        for path in stored:
            assert piece.encode() not in path.read_bytes(), (piece, path)


def test_s3_keys_never_reach_the_output_or_the_instance(project_env: dict[str, str]) -> None:
    secret = project_env["DW_S3_SECRET_ACCESS_KEY"]
    ok = dagster(project_env, "asset", "materialize", "--select", "partner_drops/returns")
    wrong = {**project_env, "DW_S3_SECRET_ACCESS_KEY": "x" + secret[1:]}
    refused = dagster(wrong, "asset", "materialize", "--select", "partner_drops/returns")

    assert ok.returncode == 0, ok.stderr[-3000:]
    assert refused.returncode != 0
    assert "cannot list s3://demo-drops/partner/returns/: SignatureDoesNotMatch" in refused.stderr
    for done in (ok, refused):
        assert secret[1:] not in done.stdout + done.stderr
    for path in Path(project_env["DAGSTER_HOME"]).rglob("*"):
        if path.is_file():
            assert secret[1:].encode() not in path.read_bytes(), path
