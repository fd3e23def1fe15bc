"""REST streams declared in a catalog run in Dagster: a configured API syncs and reports its
requests, an unconfigured one fails only its own streams, and no secret reaches any event."""

from __future__ import annotations

import dagster as dg
import pytest

from dw_pipelines.components import StreamCatalog
from dw_pipelines.ingest.jobs import all_streams_job
from dw_pipelines.resources.warehouse import WarehouseResource
from dw_pipelines_tests.conftest import warehouse_rows
from dw_pipelines_tests.rest_fixtures import STRIPE_KEY

CATALOG = """
sources:
  payments:
    type: rest
    rest:
      base_url_env: T_PAYMENTS_URL
      ca_bundle_env: T_PAYMENTS_CA
      auth: {type: bearer, token_env: T_PAYMENTS_KEY}
      backoff_seconds: 0
      endpoints:
        customers:
          path: /v1/customers
          params: {limit: 2}
          records: data
          paginator: {type: cursor}
          incremental: {param: "created[gte]", format: unix}
          columns: {id: string, created: timestamptz}
  crm:
    type: rest
    rest:
      base_url: https://crm.invalid
      auth: {type: bearer, token_env: T_CRM_TOKEN}
      endpoints:
        contacts: {path: /crm/v3/objects/contacts, records: results}
streams:
  - {source: payments, object: customers, mode: incremental_merge, primary_key: [id], cursor: created}
  - {source: crm, object: contacts, primary_key: [id]}
"""


def run_all(warehouse_url: str) -> dg.ExecuteInProcessResult:
    catalog = StreamCatalog.resolve_from_yaml(CATALOG).build_defs(None)  # type: ignore[arg-type]
    defs = dg.Definitions.merge(
        catalog,
        dg.Definitions(
            jobs=[all_streams_job],
            resources={"warehouse": WarehouseResource(url=warehouse_url)},
        ),
    )
    return defs.resolve_job_def("all_streams_job").execute_in_process(raise_on_error=False)


@pytest.fixture
def configured(rest, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("T_PAYMENTS_URL", rest.base_url)
    monkeypatch.setenv("T_PAYMENTS_CA", str(rest.ca))
    monkeypatch.setenv("T_PAYMENTS_KEY", STRIPE_KEY)
    monkeypatch.delenv("T_CRM_TOKEN", raising=False)
    for i in range(5):
        rest.api.stripe_add("customers", created=1_772_366_400 + i, email=f"d{i}@example.com")
    return rest


def test_the_api_stream_syncs_and_reports_its_requests(configured, duckdb_warehouse_url) -> None:  # type: ignore[no-untyped-def]
    run = run_all(duckdb_warehouse_url)
    [materialization] = run.asset_materializations_for_node("payments__customers")
    metadata = materialization.metadata
    assert metadata["rows_inserted"].value == 5
    assert metadata["api_requests"].value == 4  # describe + 3 pages of 2
    assert metadata["api_retries"].value == 0
    assert warehouse_rows(duckdb_warehouse_url, "SELECT count(*) FROM payments.customers") == [(5,)]


def test_the_unconfigured_api_fails_only_its_own_stream_naming_the_variable(
    configured, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    run = run_all(duckdb_warehouse_url)
    [failure] = [e for e in run.all_events if e.is_step_failure]
    assert failure.step_key == "crm__contacts"
    description = failure.step_failure_data.user_failure_data.description
    assert "source 'crm'" in description and "T_CRM_TOKEN" in description


def test_a_refused_key_fails_the_step_without_the_key_in_any_event(
    configured, duckdb_warehouse_url, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    wrong = "sk_test_WRONG_KEY_ZZZ_987654321"
    monkeypatch.setenv("T_PAYMENTS_KEY", wrong)
    configured.api.fail("/v1/customers", 503, times=1)  # a retry, logged, before the refusal
    run = run_all(duckdb_warehouse_url)
    failures = [e for e in run.all_events if e.is_step_failure]
    description = next(
        e.step_failure_data.user_failure_data.description
        for e in failures
        if e.step_key == "payments__customers"
    )
    assert "HTTP 401" in description and "endpoint 'customers'" in description
    everything = "\n".join(str(e) for e in run.all_events)
    assert wrong not in everything and STRIPE_KEY not in everything


PRESET_CATALOG = """
sources:
  stripe:
    type: rest
    rest: {preset: stripe, base_url_env: T_STRIPE_URL, ca_bundle_env: T_STRIPE_CA}
streams:
  - {source: stripe, object: customers, mode: incremental_merge, primary_key: [id], cursor: created}
"""


def test_a_stripe_preset_stream_runs_with_only_its_key_and_url_set(
    rest, duckdb_warehouse_url, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("T_STRIPE_URL", rest.base_url)
    monkeypatch.setenv("T_STRIPE_CA", str(rest.ca))
    monkeypatch.setenv("STRIPE_API_KEY", STRIPE_KEY)  # the preset's variable
    made = [
        rest.api.stripe_add("customers", created=1_772_366_400 + i, email="old") for i in range(3)
    ]
    catalog = StreamCatalog.resolve_from_yaml(PRESET_CATALOG).build_defs(None)  # type: ignore[arg-type]
    defs = dg.Definitions.merge(
        catalog,
        dg.Definitions(resources={"warehouse": WarehouseResource(url=duckdb_warehouse_url)}),
    )
    job = dg.define_asset_job("stripe_job", selection="stripe/customers")
    defs = dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))
    assert defs.resolve_job_def("stripe_job").execute_in_process().success
    rest.api.stripe_update("customers", made[0], at=1_772_366_500, email="new")
    second = defs.resolve_job_def("stripe_job").execute_in_process()
    [materialization] = second.asset_materializations_for_node("stripe__customers")
    assert materialization.metadata["rows_updated"].value == 1
    rows = warehouse_rows(duckdb_warehouse_url, "SELECT id, email FROM stripe.customers")
    assert dict(rows)[made[0]] == "new"  # type: ignore[arg-type]
    everything = "\n".join(str(e) for e in second.all_events)
    assert STRIPE_KEY not in everything
