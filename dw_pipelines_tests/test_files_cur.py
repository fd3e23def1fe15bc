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


# -- AWS's documented samples, written here by hand rather than by our own generator -----------
# Legacy CUR: "<report-prefix>/<report-name>/yyyymmdd-yyyymmdd/<assemblyId>/<report-name>-
# <file-number>.csv.<zip|gz>" with the period's manifest "<report-name>-Manifest.json" beside the
# assembly folders (AWS Data Exports guide, "Understanding your report versions"; its example
# report is `example-report-name` under `example-report-prefix`, period 20160101-20160131,
# assembly 123456789). CUR 2.0: "s3://<bucket>/<prefix>/<export-name>/data/BILLING_PERIOD=YYYY-MM/"
# and ".../metadata/BILLING_PERIOD=YYYY-MM/<export-name>-Manifest.json" ("Understanding export
# delivery"; its example is my-cur-files/business_group_a_cur, BILLING_PERIOD=2023-11).

AWS_LEGACY_FOLDER = "example-report-prefix/example-report-name/20160101-20160131"
AWS_LEGACY_HEADER = (
    "identity/LineItemId,identity/TimeInterval,bill/PayerAccountId,lineItem/UsageStartDate,"
    "lineItem/ProductCode,lineItem/UsageAmount,lineItem/UnblendedCost,resourceTags/user:team\n"
)


def aws_legacy_manifest(bucket: str, keys: list[str]) -> dict[str, object]:
    columns = [
        ("identity", "LineItemId", "String"),
        ("identity", "TimeInterval", "Interval"),
        ("bill", "PayerAccountId", "String"),
        ("lineItem", "UsageStartDate", "DateTime"),
        ("lineItem", "ProductCode", "String"),
        ("lineItem", "UsageAmount", "OptionalBigDecimal"),
        ("lineItem", "UnblendedCost", "BigDecimal"),
        ("resourceTags", "user:team", "OptionalString"),
    ]
    return {
        "assemblyId": "123456789",
        "account": "123456789012",
        "columns": [{"category": c, "name": n, "type": t} for c, n, t in columns],
        "charset": "UTF-8",
        "compression": "GZIP",
        "contentType": "text/csv",
        "reportId": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "reportName": "example-report-name",
        "billingPeriod": {"start": "20160101T000000.000Z", "end": "20160201T000000.000Z"},
        "bucket": bucket,
        "reportKeys": keys,
        "additionalArtifactKeys": [],
    }


def test_legacy_cur_in_awss_documented_layout_and_manifest_loads(
    local_s3, bucket, warehouse_url
) -> None:
    import gzip

    client = local_s3.client()
    lines = [
        "li-1,2016-01-01T00:00:00Z/2016-01-01T01:00:00Z,123456789012,2016-01-01T00:00:00Z,"
        "AmazonEC2,1.0000000000,0.0123456789,web\n",
        "li-2,2016-01-02T00:00:00Z/2016-01-02T01:00:00Z,123456789012,2016-01-02T00:00:00Z,"
        "AmazonS3,2048.5,1.5000000001,\n",
    ]
    keys = [f"{AWS_LEGACY_FOLDER}/123456789/example-report-name-{n}.csv.gz" for n in (1, 2)]
    for key, line in zip(keys, lines, strict=True):
        body = gzip.compress((AWS_LEGACY_HEADER + line).encode())
        client.put_object(Bucket=bucket, Key=key, Body=body)
    manifest = json.dumps(aws_legacy_manifest(bucket, keys)).encode()
    client.put_object(
        Bucket=bucket, Key=f"{AWS_LEGACY_FOLDER}/example-report-name-Manifest.json", Body=manifest
    )
    result = run_files(
        local_s3, warehouse_url, bucket, name="cost_and_usage", prefix="example-report-prefix/",
        layout="cur_legacy",
    )  # fmt: skip

    assert (result.files_loaded, result.files_quarantined) == (2, 0)
    assert legacy_rows(warehouse_url) == [
        ("li-1", Decimal("0.0123456789"), "web"),
        ("li-2", Decimal("1.5000000001"), None),
    ]


def test_cur2_in_awss_documented_layout_and_manifest_loads(local_s3, bucket, warehouse_url) -> None:
    import io
    from datetime import UTC, datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    client = local_s3.client()
    export = "my-cur-files/business_group_a_cur"
    data_key = f"{export}/data/BILLING_PERIOD=2023-11/business_group_a_cur-00001.snappy.parquet"
    table = pa.table(
        {
            "identity_line_item_id": ["li-1", "li-2"],
            "line_item_usage_start_date": pa.array(
                [datetime(2023, 11, 1, tzinfo=UTC), datetime(2023, 11, 2, tzinfo=UTC)],
                pa.timestamp("ms", tz="UTC"),
            ),
            "line_item_unblended_cost": [0.25, 1.5],
            "resource_tags": pa.array(
                [[("user_team", "web")], []], pa.map_(pa.string(), pa.string())
            ),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    client.put_object(Bucket=bucket, Key=data_key, Body=sink.getvalue())
    manifest = {
        "exportArn": "arn:aws:bcm-data-exports:us-east-1:123456789012:export/business_group_a_cur",
        "exportName": "business_group_a_cur",
        "billingPeriod": {"start": "2023-11-01T00:00:00.000Z", "end": "2023-12-01T00:00:00.000Z"},
        "dataFiles": [f"s3://{bucket}/{data_key}"],
    }
    client.put_object(
        Bucket=bucket,
        Key=f"{export}/metadata/BILLING_PERIOD=2023-11/business_group_a_cur-Manifest.json",
        Body=json.dumps(manifest).encode(),
    )
    result = run_files(
        local_s3, warehouse_url, bucket, name="cost_and_usage", prefix="my-cur-files/",
        layout="cur2",
    )  # fmt: skip

    assert (result.files_loaded, result.files_quarantined) == (1, 0)
    assert [(r[0], r[1]) for r in cur2_rows(warehouse_url)] == [("li-1", 0.25), ("li-2", 1.5)]


def test_a_manifest_rewritten_after_listing_is_left_for_the_next_run(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    from dw_pipelines.sync.files.cur import cur_units
    from dw_pipelines.sync.files.runner import listed_objects
    from dw_pipelines.sync.files.spec import FileStreamSpec
    from dw_pipelines_tests.conftest import s3_resource

    client = local_s3.client()
    cur.put_cur2(client, bucket, "cur/", "daily", NOV, cur.line_items(NOV, 1, 10, seed=1))
    spec = FileStreamSpec(source="drops", bucket=bucket, **CUR2)  # type: ignore[arg-type]
    said: list[str] = []
    with s3_resource(local_s3).open() as store:
        listed = listed_objects(spec, store)
        # AWS restates the period between the listing and the read of its manifest.
        cur.put_cur2(client, bucket, "cur/", "daily", NOV, cur.line_items(NOV, 1, 8, seed=2))

        units = cur_units(spec, store, listed, {}, said.append)

    assert units == []
    assert said and "changed since it was listed; left for the next run" in said[0]
    assert run_files(local_s3, duckdb_warehouse_url, bucket, **CUR2).row_count == 8
