"""The demo's Salesforce: the fake org as a background process, seeded, then a day later."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from dw_pipelines.demo.salesforce import fake_org
from dw_pipelines.devservices.salesforce_fake import FakeOrg, seed_demo
from dw_pipelines.sync.sources.salesforce import (
    SalesforceAuth,
    SalesforceSettings,
    SalesforceSource,
)
from dw_pipelines.sync.spec import StreamSpec
from dw_pipelines_tests.conftest import warehouse_rows


def sync_demo_objects(variables: dict[str, str], warehouse_url: str) -> dict[str, object]:
    from dw_pipelines.sync.engine import sync_stream
    from dw_pipelines.sync.warehouses import open_warehouse

    source = SalesforceSource(
        SalesforceAuth(
            username=variables["DW_SALESFORCE_USERNAME"],
            password=variables["DW_SALESFORCE_PASSWORD"],
            security_token=variables["DW_SALESFORCE_SECURITY_TOKEN"],
        ),
        SalesforceSettings(
            domain=variables["DW_SALESFORCE_DOMAIN"], ca_bundle=variables["DW_SALESFORCE_CA_BUNDLE"]
        ),
    )
    warehouse = open_warehouse(warehouse_url)
    try:
        return {
            obj: sync_stream(
                StreamSpec(
                    source="salesforce",
                    object=obj,
                    mode="incremental_merge",
                    primary_key=("Id",),
                    deletes="soft",
                ),
                source,
                warehouse,
            )
            for obj in ("Account", "Contact", "Opportunity", "Lead")
        }
    finally:
        warehouse.close()
        source.close()


def test_the_demo_org_is_seeded_then_a_day_of_crm_activity_later_on_each_start(
    tmp_path, duckdb_warehouse_url
) -> None:
    with fake_org(tmp_path) as variables:
        first = sync_demo_objects(variables, duckdb_warehouse_url)
    with fake_org(tmp_path) as variables:
        second = sync_demo_objects(variables, duckdb_warehouse_url)

    assert {obj: r.rows_read for obj, r in first.items()} == {
        "Account": 40,
        "Contact": 105,
        "Opportunity": 54,
        "Lead": 20,
    }
    assert second["Lead"].rows_inserted == 3
    assert second["Opportunity"].rows_updated == 3
    assert second["Contact"].rows_deleted == 1
    assert warehouse_rows(
        duckdb_warehouse_url,
        'SELECT count(*) FROM salesforce.account WHERE "BillingCity" IS NOT NULL',
    ) == [(40,)]


def test_the_saved_org_loads_back_with_every_value_and_type(tmp_path: Path) -> None:
    org = FakeOrg()
    seed_demo(org, accounts=5)
    org.save(tmp_path / "org.json")

    loaded = FakeOrg()
    loaded.load(tmp_path / "org.json")
    assert (loaded.records, loaded.clock, loaded.last_id) == (org.records, org.clock, org.last_id)
    assert {type(v) for r in loaded.records["Opportunity"].values() for v in r.values()} == {
        type(v) for r in org.records["Opportunity"].values() for v in r.values()
    }


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def test_a_state_file_holding_a_pickle_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    state = tmp_path / "org.json"
    state.write_bytes(pickle.dumps({"records": _RunsCode(marker)}))

    with pytest.raises(ValueError):
        FakeOrg().load(state)
    assert not marker.exists()
