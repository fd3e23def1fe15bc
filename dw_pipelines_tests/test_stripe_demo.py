"""The demo's payments: the shop's orders charged in a Stripe-like API, synced by the shipped
`stripe.charges` stream, a day of new charges on every run."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml

import dw_pipelines
from dw_pipelines.components.stream_catalog import StreamCatalog
from dw_pipelines.demo import payments, shop
from dw_pipelines.resources.warehouse import WarehouseResource
from dw_pipelines_tests.conftest import warehouse_rows

SHIPPED = Path(dw_pipelines.__file__).parent / "defs/stripe/defs.yaml"
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.fixture
def demo_shop(tmp_path: Path) -> Path:
    path = tmp_path / "shop.sqlite"
    shop.build(path, now=NOW)
    return path


def charges(data: Path) -> list[dict]:
    return json.loads(data.read_text())["charges"]


def test_every_order_that_left_pending_is_charged_once_for_its_total_by_its_customer(
    demo_shop: Path, tmp_path: Path
) -> None:
    data = tmp_path / "stripe/charges.json"
    payments.charge_orders(demo_shop, data)
    again = payments.charge_orders(demo_shop, data)

    with sqlite3.connect(demo_shop) as db:
        orders = {
            str(oid): (str(cid), email, round(total * 100))
            for oid, cid, email, total in db.execute(
                "SELECT o.id, o.customer_id, c.email, o.total_amount FROM orders o"
                " JOIN customers c ON c.id = o.customer_id"
                " WHERE o.status IN ('paid', 'shipped', 'delivered')"
            )
        }
    succeeded = [c for c in charges(data) if c["status"] == "succeeded"]
    assert again == 0
    assert sorted(c["metadata"]["shop_order_id"] for c in succeeded) == sorted(orders)
    assert all(
        (c["metadata"]["shop_customer_id"], c["receipt_email"], c["amount"])
        == orders[c["metadata"]["shop_order_id"]]
        for c in succeeded
    )
    assert {c["status"] for c in charges(data)} == {"succeeded", "failed"}


def test_a_day_of_business_charges_the_orders_it_moved_out_of_pending(
    demo_shop: Path, tmp_path: Path
) -> None:
    data = tmp_path / "stripe/charges.json"
    payments.charge_orders(demo_shop, data)
    before = len(charges(data))
    day = NOW + timedelta(days=1)
    shop.churn(demo_shop, seed=3, now=day)

    added = payments.charge_orders(demo_shop, data)

    with sqlite3.connect(demo_shop) as db:
        (paid_today,) = db.execute(
            "SELECT count(*) FROM order_events WHERE status = 'paid' AND occurred_at >= ?",
            (day.strftime("%Y-%m-%d %H:%M:%S"),),
        ).fetchone()
    new = charges(data)[before:]
    assert paid_today > 0
    assert [c for c in new if c["status"] == "succeeded"] and added == len(new)
    assert len([c for c in new if c["status"] == "succeeded"]) == paid_today
    assert {c["created"] for c in new} <= {int(day.timestamp()), int(day.timestamp()) - 60}


def test_the_shipped_stream_syncs_the_demo_charges_then_only_the_new_ones(
    demo_shop: Path, tmp_path: Path, duckdb_warehouse_url: str, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "stripe"
    catalog = StreamCatalog.resolve_from_yaml(
        yaml.safe_dump(yaml.safe_load(SHIPPED.read_text())["attributes"])
    )
    defs = catalog.build_defs(None)  # type: ignore[arg-type]
    resources = {**defs.resources, "warehouse": WarehouseResource(url=duckdb_warehouse_url)}  # type: ignore[dict-item]
    results = []
    for day in (NOW, NOW + timedelta(days=1)):
        if day != NOW:
            shop.churn(demo_shop, seed=3, now=day)
        payments.charge_orders(demo_shop, home / "charges.json")
        with payments.stripe_api(home) as variables:
            for name, value in variables.items():
                monkeypatch.setenv(name, value)
            results.append(
                dg.materialize(
                    [defs.get_assets_def(dg.AssetKey(["stripe", "charges"]))],
                    resources=resources,
                    raise_on_error=False,
                )
            )

    assert all(r.success for r in results)
    assert all(e.passed for r in results for e in r.get_asset_check_evaluations())
    first, second = (
        r.asset_materializations_for_node("stripe__charges")[0].metadata for r in results
    )
    total = len(charges(home / "charges.json"))
    assert first["rows_inserted"].value + second["rows_inserted"].value == total
    assert 0 < second["rows_inserted"].value < first["rows_inserted"].value
    assert warehouse_rows(
        duckdb_warehouse_url,
        "SELECT count(*), count(DISTINCT id), min(shop_customer_id) >= 1 FROM stripe.charges",
    ) == [(total, total, True)]
