"""AWS Cost and Usage Reports: each billing period is exactly its latest delivery's rows."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from dw_pipelines.demo import cur
from dw_pipelines_tests.conftest import run_files, warehouse_rows

NOV, DEC = date(2026, 11, 1), date(2026, 12, 1)
CUR2 = {"name": "cost_and_usage", "prefix": "cur/", "layout": "cur2"}
LEGACY = {"name": "cost_and_usage", "prefix": "legacy/", "layout": "cur_legacy"}


def cur2_rows(warehouse_url: str) -> list[tuple]:
    return warehouse_rows(
        warehouse_url,
        "SELECT identity_line_item_id, line_item_unblended_cost, resource_tags"
        " FROM drops.cost_and_usage ORDER BY 1",
    )


def legacy_rows(warehouse_url: str) -> list[tuple]:
    return warehouse_rows(
        warehouse_url,
        'SELECT "identity/LineItemId", "lineItem/UnblendedCost", "resourceTags/user:team"'
        " FROM drops.cost_and_usage ORDER BY 1",
    )


def test_cur2_loads_a_period_with_aws_column_names(local_s3, bucket, warehouse_url) -> None:
    items = cur.line_items(NOV, days=3, per_day=10, seed=1)
    cur.put_cur2(local_s3.client(), bucket, "cur/", "daily", NOV, items)
    result = run_files(local_s3, warehouse_url, bucket, **CUR2)

    assert result.files_loaded == 2
    rows = cur2_rows(warehouse_url)
    assert [r[0] for r in rows] == sorted(i.id for i in items)
    tags = rows[0][2] if isinstance(rows[0][2], dict) else json.loads(rows[0][2])
    assert list(tags) == ["user_team"]
    assert [r[1] for r in rows] == [float(i.cost) for i in sorted(items, key=lambda i: i.id)]


def test_cur2_restatement_replaces_the_whole_period_even_with_fewer_files(
    local_s3, bucket, warehouse_url
) -> None:
    client = local_s3.client()
    cur.put_cur2(client, bucket, "cur/", "daily", NOV, cur.line_items(NOV, 3, 10, seed=1), files=3)
    cur.put_cur2(client, bucket, "cur/", "daily", DEC, cur.line_items(DEC, 1, 5, seed=2))
    run_files(local_s3, warehouse_url, bucket, **CUR2)
    restated = cur.line_items(NOV, 3, 8, seed=3)
    cur.put_cur2(client, bucket, "cur/", "daily", NOV, restated, files=1)
    second = run_files(local_s3, warehouse_url, bucket, **CUR2)

    ids = {r[0] for r in cur2_rows(warehouse_url)}
    december = {i.id for i in cur.line_items(DEC, 1, 5, seed=2)}
    assert ids == {i.id for i in restated} | december
    assert (second.files_loaded, second.rows_deleted) == (1, 30)


def test_legacy_cur_keeps_exact_decimals_and_replaces_a_period_by_its_new_assembly(
    local_s3, bucket, warehouse_url
) -> None:
    client = local_s3.client()
    cur.put_legacy(client, bucket, "legacy/", "hourly", NOV, cur.line_items(NOV, 2, 10, seed=1))
    run_files(local_s3, warehouse_url, bucket, **LEGACY)
    restated = cur.line_items(NOV, 2, 7, seed=4)
    cur.put_legacy(client, bucket, "legacy/", "hourly", NOV, restated)
    run_files(local_s3, warehouse_url, bucket, **LEGACY)

    assert legacy_rows(warehouse_url) == sorted((i.id, i.cost, i.team) for i in restated)
    assert isinstance(legacy_rows(warehouse_url)[0][1], Decimal)


def test_a_delivery_still_being_written_waits_for_its_last_file(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    client = local_s3.client()
    keys = cur.put_cur2(client, bucket, "cur/", "daily", NOV, cur.line_items(NOV, 1, 10, seed=1))
    body = client.get_object(Bucket=bucket, Key=keys[1])["Body"].read()
    client.delete_object(Bucket=bucket, Key=keys[1])
    waiting = run_files(local_s3, duckdb_warehouse_url, bucket, **CUR2)
    client.put_object(Bucket=bucket, Key=keys[1], Body=body)
    complete = run_files(local_s3, duckdb_warehouse_url, bucket, **CUR2)

    assert waiting.files_loaded == 0
    assert (complete.files_loaded, complete.row_count) == (2, 10)


def test_an_unreadable_manifest_is_quarantined(local_s3, bucket, duckdb_warehouse_url) -> None:
    key = "cur/daily/metadata/BILLING_PERIOD=2026-11/daily-Manifest.json"
    local_s3.client().put_object(Bucket=bucket, Key=key, Body=b"{not json")
    result = run_files(local_s3, duckdb_warehouse_url, bucket, **CUR2)

    assert [k for k, _ in result.quarantined] == [key]
    assert result.quarantined[0][1].startswith("unreadable manifest")


def test_a_column_that_appears_in_a_later_period_is_added(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    client = local_s3.client()
    cur.put_legacy(client, bucket, "legacy/", "hourly", NOV, cur.line_items(NOV, 1, 4, seed=1))
    run_files(local_s3, duckdb_warehouse_url, bucket, **LEGACY)
    extra = ("resourceTags", "user:env", "OptionalString")
    cur.LEGACY_COLUMNS.append(extra)
    try:
        cur.put_legacy(client, bucket, "legacy/", "hourly", DEC, cur.line_items(DEC, 1, 4, seed=2))
    finally:
        cur.LEGACY_COLUMNS.remove(extra)
    result = run_files(local_s3, duckdb_warehouse_url, bucket, **LEGACY)

    assert "resourceTags/user:env" in [c.name for c in result.columns]
    assert warehouse_rows(
        duckdb_warehouse_url,
        'SELECT count(*), count("resourceTags/user:env") FROM drops.cost_and_usage',
    ) == [(8, 0)]
