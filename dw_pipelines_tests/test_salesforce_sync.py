"""Salesforce streams through the engine: modes, types, deletes and the REST/Bulk 2.0 switch.

The fake org serves HTTPS on a free port; simple-salesforce is the client; the warehouse is
real (DuckDB, and PostgreSQL where the test is about what lands in the table).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from dw_pipelines.devservices.salesforce_fake import field_def, system_fields
from dw_pipelines.sync.errors import SyncError
from dw_pipelines.sync.sources.salesforce import BulkJobFailed
from dw_pipelines_tests.conftest import warehouse_rows

UTC = dt.UTC


def add_accounts(org, n: int, **values) -> list[str]:  # type: ignore[no-untyped-def]
    return [org.insert("Account", Name=f"Account {i}", **values) for i in range(n)]


def names(warehouse_url: str, table: str = "salesforce.account") -> list[tuple]:
    return warehouse_rows(warehouse_url, f'SELECT "Id", "Name" FROM {table} ORDER BY "Id"')


def live_names(org, obj: str = "Account") -> list[tuple]:  # type: ignore[no-untyped-def]
    return sorted((r["Id"], r["Name"]) for r in org.live(obj))


# -- describe -------------------------------------------------------------------------------------


def test_describe_maps_each_salesforce_field_type_to_a_faithful_column(salesforce) -> None:
    source = salesforce.source()
    try:
        account = {c.name: c.type_label for c in source.describe("Account")}
        task = {c.name: c.type_label for c in source.describe("Task")}
    finally:
        source.close()
    assert account["Id"] == "string"  # id
    assert account["OwnerId"] == "string"  # reference
    assert account["Type"] == "string"  # picklist
    assert account["Tier__c"] == "string"  # multipicklist
    assert account["Description"] == "string"  # textarea
    assert account["Website"] == account["Phone"] == "string"  # url, phone
    assert account["IsDeleted"] == "boolean"
    assert account["NumberOfEmployees"] == "int32"  # int
    assert account["AnnualRevenue"] == "decimal(18,0)"  # currency keeps its scale
    assert account["Rating__c"] == "decimal(5,2)"  # percent
    assert account["BillingLatitude"] == "decimal(18,15)"  # double with precision
    assert account["SystemModstamp"] == "timestamptz"  # datetime
    assert task["ActivityDate"] == "date"
    assert task["ReminderTime__c"] == "time"
    assert task["Subject"] == "string"  # combobox


def test_compound_fields_come_as_their_components_and_base64_is_left_out(salesforce) -> None:
    source = salesforce.source()
    try:
        columns = [c.name for c in source.describe("Account")]
    finally:
        source.close()
    assert "BillingAddress" not in columns
    assert {"BillingStreet", "BillingCity", "BillingLatitude", "BillingLongitude"} <= set(columns)
    assert "Logo__c" not in columns


# -- modes ----------------------------------------------------------------------------------------


def test_full_refresh_loads_every_live_record_with_exact_values(salesforce, warehouse_url) -> None:
    org = salesforce.org
    account = org.insert(
        "Account",
        Name="Acme",
        AnnualRevenue=Decimal("1250000"),
        NumberOfEmployees=42,
        Rating__c=Decimal("97.25"),
        BillingCity="Paris",
        BillingLatitude=Decimal("48.856613"),
        Tier__c="Gold;Strategic",
    )
    gone = org.insert("Account", Name="Deleted Ltd")
    org.delete("Account", gone)
    org.insert("Contact", AccountId=account, LastName="Lovelace", Birthdate=dt.date(1815, 12, 10))

    result = salesforce.sync(warehouse_url, object="Account", mode="full_refresh")

    assert result.rows_read == 1
    rows = warehouse_rows(
        warehouse_url,
        'SELECT "Id", "Name", "AnnualRevenue", "NumberOfEmployees", "Rating__c", "BillingCity",'
        ' "BillingLatitude", "Tier__c", "IsDeleted", "SystemModstamp" FROM salesforce.account',
    )
    stamp = org.records["Account"][account]["SystemModstamp"]
    assert rows == [
        (
            account,
            "Acme",
            Decimal("1250000"),
            42,
            Decimal("97.25"),
            "Paris",
            Decimal("48.856613000000000"),
            "Gold;Strategic",
            False,
            stamp,
        )
    ]
    salesforce.sync(warehouse_url, object="Contact", mode="full_refresh")
    assert warehouse_rows(warehouse_url, 'SELECT "Birthdate" FROM salesforce.contact') == [
        (dt.date(1815, 12, 10),)
    ]


def test_incremental_reads_only_records_changed_since_the_cursor(salesforce, warehouse_url) -> None:
    org = salesforce.org
    ids = add_accounts(org, 5)
    first = salesforce.sync(
        warehouse_url, object="Account", mode="incremental_merge", cursor="SystemModstamp"
    )
    org.update("Account", ids[2], Name="Renamed")
    new = org.insert("Account", Name="Newcomer")

    second = salesforce.sync(
        warehouse_url, object="Account", mode="incremental_merge", cursor="SystemModstamp"
    )

    assert first.rows_read == 5
    assert (second.rows_read, second.rows_updated, second.rows_inserted) == (3, 1, 1)
    assert second.rows_unchanged == 1  # the record at the cursor itself is read again, unchanged
    assert second.cursor_after == org.records["Account"][new]["SystemModstamp"]
    assert names(warehouse_url) == live_names(org)


def test_a_lookback_rereads_records_without_duplicating_them(salesforce, warehouse_url) -> None:
    org = salesforce.org
    add_accounts(org, 4)
    spec = {"object": "Account", "mode": "incremental_merge", "cursor": "SystemModstamp"}
    salesforce.sync(warehouse_url, lookback="1 hour", **spec)

    again = salesforce.sync(warehouse_url, lookback="1 hour", **spec)

    assert (again.rows_read, again.rows_unchanged, again.rows_inserted) == (4, 4, 0)
    assert warehouse_rows(warehouse_url, "SELECT count(*) FROM salesforce.account") == [(4,)]


def test_records_sharing_the_cursor_value_are_all_read_once(
    salesforce, duckdb_warehouse_url
) -> None:
    org = salesforce.org
    ids = add_accounts(org, 3)
    stamp = org.records["Account"][ids[-1]]["SystemModstamp"]
    for record_id in ids:  # one transaction in Salesforce stamps every record alike
        org.records["Account"][record_id]["SystemModstamp"] = stamp
    spec = {"object": "Account", "mode": "incremental_merge", "cursor": "SystemModstamp"}
    salesforce.sync(duckdb_warehouse_url, **spec)
    late = org.insert("Account", Name="Same instant")
    org.records["Account"][late]["SystemModstamp"] = stamp

    second = salesforce.sync(duckdb_warehouse_url, **spec)

    assert (second.rows_read, second.rows_inserted, second.rows_unchanged) == (4, 1, 3)
    assert names(duckdb_warehouse_url) == live_names(org)


def test_incremental_streams_default_to_the_system_modstamp_cursor(
    salesforce, duckdb_warehouse_url
) -> None:
    add_accounts(salesforce.org, 2)
    result = salesforce.sync(duckdb_warehouse_url, object="Account", mode="incremental_merge")
    assert result.cursor_after == max(
        r["SystemModstamp"] for r in salesforce.org.records["Account"].values()
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (["CreatedDate", "LastModifiedDate"], "LastModifiedDate"),
        (["CreatedDate"], "CreatedDate"),
    ],
)
def test_the_cursor_falls_back_to_last_modified_then_created_date(
    salesforce, duckdb_warehouse_url, fields, expected
) -> None:
    org = salesforce.org
    org.objects["Reading__c"] = [
        f for f in system_fields() if f["name"] in ("Id", "IsDeleted", *fields)
    ] + [field_def("Name", "string")]
    record_id = org.insert("Reading__c", Name="r1")
    org.update("Reading__c", record_id, Name="r1 edited")  # LastModifiedDate moves on

    result = salesforce.sync(duckdb_warehouse_url, object="Reading__c", mode="incremental_merge")

    assert result.rows_read == 1
    assert result.cursor_after == org.records["Reading__c"][record_id][expected]


def test_a_window_loads_only_its_range_and_leaves_the_cursor(
    salesforce, duckdb_warehouse_url
) -> None:
    from dw_pipelines.sync.engine import Window

    org = salesforce.org
    ids = add_accounts(org, 6)
    spec = {"object": "Account", "mode": "incremental_merge", "cursor": "SystemModstamp"}
    first = salesforce.sync(duckdb_warehouse_url, **spec)
    stamps = [org.records["Account"][i]["SystemModstamp"] for i in ids]
    for record_id in ids:
        org.update("Account", record_id, Name="moved on")  # all now past the window
    org.records["Account"][ids[2]]["SystemModstamp"] = stamps[2]
    org.records["Account"][ids[3]]["SystemModstamp"] = stamps[3]

    result = salesforce.sync(
        duckdb_warehouse_url, window=Window(stamps[2].isoformat(), stamps[4].isoformat()), **spec
    )

    assert (result.rows_read, result.rows_updated) == (2, 2)
    assert result.cursor_after == first.cursor_after


# -- deletes --------------------------------------------------------------------------------------


def test_hard_deletes_remove_the_rows_in_the_same_sync(salesforce, warehouse_url) -> None:
    org = salesforce.org
    ids = add_accounts(org, 4)
    spec = {"object": "Account", "mode": "incremental_merge", "cursor": "SystemModstamp"}
    salesforce.sync(warehouse_url, **spec)
    org.delete("Account", ids[0])
    org.delete("Account", ids[3])

    result = salesforce.sync(warehouse_url, **spec)

    assert result.rows_deleted == 2
    assert result.row_count == 2
    assert names(warehouse_url) == live_names(org)


def test_soft_deletes_keep_the_row_with_deleted_at_and_an_undelete_revives_it(
    salesforce, warehouse_url
) -> None:
    org = salesforce.org
    ids = add_accounts(org, 3)
    spec = {
        "object": "Account",
        "mode": "incremental_merge",
        "cursor": "SystemModstamp",
        "deletes": "soft",
    }
    salesforce.sync(warehouse_url, **spec)
    org.delete("Account", ids[1])

    deleted = salesforce.sync(warehouse_url, **spec)
    marked = warehouse_rows(
        warehouse_url,
        'SELECT "Id" FROM salesforce.account WHERE _dw_deleted_at IS NOT NULL',
    )
    org.undelete("Account", ids[1])
    salesforce.sync(warehouse_url, **spec)

    assert deleted.rows_deleted == 1
    assert marked == [(ids[1],)]
    assert warehouse_rows(
        warehouse_url, "SELECT count(*) FROM salesforce.account WHERE _dw_deleted_at IS NULL"
    ) == [(3,)]


def test_a_delete_already_applied_is_not_counted_again(salesforce, duckdb_warehouse_url) -> None:
    org = salesforce.org
    ids = add_accounts(org, 2)
    spec = {
        "object": "Account",
        "mode": "incremental_merge",
        "cursor": "SystemModstamp",
        "lookback": "1 hour",
    }
    salesforce.sync(duckdb_warehouse_url, **spec)
    org.delete("Account", ids[0])
    salesforce.sync(duckdb_warehouse_url, **spec)

    again = salesforce.sync(duckdb_warehouse_url, **spec)

    assert again.rows_deleted == 0
    assert again.row_count == 1


def test_soft_deletes_from_a_source_that_cannot_report_deletes_fail_clearly(
    tmp_path, duckdb_warehouse_url
) -> None:
    import sqlite3

    from dw_pipelines_tests.conftest import run_sync

    db = tmp_path / "src.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, updated_at INTEGER NOT NULL)")
        con.execute("INSERT INTO t VALUES (1, 1)")
    spec = {"object": "t", "mode": "incremental_merge", "primary_key": ["id"]}
    run_sync(f"sqlite:///{db}", duckdb_warehouse_url, cursor="updated_at", **spec)

    with pytest.raises(SyncError, match="soft deletes need a source that reports deletes"):
        run_sync(
            f"sqlite:///{db}", duckdb_warehouse_url, cursor="updated_at", deletes="soft", **spec
        )


def test_full_refresh_drops_deleted_and_purged_records(salesforce, duckdb_warehouse_url) -> None:
    org = salesforce.org
    ids = add_accounts(org, 3)
    salesforce.sync(duckdb_warehouse_url, object="Account", mode="full_refresh")
    org.delete("Account", ids[0])
    org.purge("Account", ids[1])

    salesforce.sync(duckdb_warehouse_url, object="Account", mode="full_refresh")

    assert names(duckdb_warehouse_url) == live_names(org)


# -- REST or Bulk 2.0 -----------------------------------------------------------------------------


def test_reads_below_the_bulk_threshold_use_rest_query_and_query_more(
    salesforce, duckdb_warehouse_url
) -> None:
    org = salesforce.org
    org.page_size = 7
    add_accounts(org, 30)

    result = salesforce.sync(
        duckdb_warehouse_url, object="Account", mode="full_refresh", settings={"bulk_threshold": 31}
    )

    assert result.rows_read == 30
    assert result.api.bulk_jobs == 0
    assert org.api_calls("/query/01g") == 4  # queryMore pages 2..5 through nextRecordsUrl
    assert not org.jobs


def test_reads_at_the_bulk_threshold_use_a_bulk_2_query_job(salesforce, warehouse_url) -> None:
    org = salesforce.org
    add_accounts(org, 30, AnnualRevenue=Decimal("1000"), Description='multi\nline, "quoted"')

    result = salesforce.sync(
        warehouse_url,
        object="Account",
        mode="full_refresh",
        settings={"bulk_threshold": 30, "bulk_page_records": 8},
    )

    assert result.rows_read == 30
    assert result.api.bulk_jobs == 1
    assert org.api_calls("/results") == 4  # pages of 8, 8, 8, 6 through Sforce-Locator
    assert warehouse_rows(
        warehouse_url, 'SELECT DISTINCT "Description", "AnnualRevenue" FROM salesforce.account'
    ) == [('multi\nline, "quoted"', Decimal("1000"))]


def test_bulk_and_rest_deliver_identical_rows(salesforce, duckdb_warehouse_url, tmp_path) -> None:
    from dw_pipelines.devservices.salesforce_fake import seed_demo

    seed_demo(salesforce.org, accounts=25)
    for obj in ("Account", "Contact", "Opportunity", "Lead"):
        salesforce.sync(duckdb_warehouse_url, object=obj, mode="full_refresh")
    bulk_url = str(tmp_path / "bulk.duckdb")
    for obj in ("Account", "Contact", "Opportunity", "Lead"):
        result = salesforce.sync(
            bulk_url, object=obj, mode="full_refresh", settings={"bulk_threshold": 1}
        )
        assert result.api.bulk_jobs == 1
    for table in ("account", "contact", "opportunity", "lead"):
        sql = f'SELECT * EXCLUDE (_dw_synced_at) FROM salesforce."{table}" ORDER BY "Id"'
        assert warehouse_rows(bulk_url, sql) == warehouse_rows(duckdb_warehouse_url, sql)


def test_objects_bulk_2_does_not_support_are_read_through_rest(
    salesforce, duckdb_warehouse_url
) -> None:
    org = salesforce.org
    org.insert(
        "Task",
        Subject="Call back",
        ReminderTime__c=dt.time(9, 30),
        ActivityDate=dt.date(2026, 2, 1),
    )

    result = salesforce.sync(
        duckdb_warehouse_url, object="Task", mode="full_refresh", settings={"bulk_threshold": 1}
    )

    assert result.rows_read == 1
    assert result.api.bulk_jobs == 0
    assert warehouse_rows(
        duckdb_warehouse_url,
        'SELECT "Subject", "ReminderTime__c", "ActivityDate" FROM salesforce.task',
    ) == [("Call back", dt.time(9, 30), dt.date(2026, 2, 1))]


def test_incremental_reads_through_bulk_use_the_same_cursor_range(
    salesforce, duckdb_warehouse_url
) -> None:
    org = salesforce.org
    ids = add_accounts(org, 10)
    spec = {"object": "Account", "mode": "incremental_merge", "cursor": "SystemModstamp"}
    bulk = {"bulk_threshold": 1}
    salesforce.sync(duckdb_warehouse_url, settings=bulk, **spec)
    org.update("Account", ids[4], Name="Changed")
    org.delete("Account", ids[5])

    second = salesforce.sync(duckdb_warehouse_url, settings=bulk, **spec)

    assert (second.rows_read, second.rows_updated, second.rows_deleted) == (2, 1, 1)
    assert second.api.bulk_jobs == 1
    assert names(duckdb_warehouse_url) == live_names(org)


def before_and_after_failure(salesforce, warehouse_url, fault: str):  # type: ignore[no-untyped-def]
    """A first good sync, a change, then a sync whose Bulk job has `fault`: (error, rows, log)."""
    org = salesforce.org
    ids = add_accounts(org, 6)
    spec = {"object": "Account", "mode": "incremental_merge", "cursor": "SystemModstamp"}
    salesforce.sync(warehouse_url, **spec)
    before = names(warehouse_url)
    org.update("Account", ids[0], Name="Changed")
    org.bulk_faults["Account"] = fault
    # Only a job that never finishes meets the short timeout; the others finish whatever the
    # machine's load, long before the default one.
    timeout = {"bulk_timeout_seconds": 0.2} if fault == "timeout" else {}
    with pytest.raises(SyncError) as failure:
        salesforce.sync(warehouse_url, settings={"bulk_threshold": 1, **timeout}, **spec)
    assert names(warehouse_url) == before
    assert warehouse_rows(warehouse_url, "SELECT count(*) FROM _dw.sync_log") == [(1,)]
    return failure.value


def test_a_bulk_job_delivering_fewer_rows_than_announced_fails_and_advances_nothing(
    salesforce, duckdb_warehouse_url
) -> None:
    error = before_and_after_failure(salesforce, duckdb_warehouse_url, "short")
    assert isinstance(error, BulkJobFailed)
    assert "delivered 1 rows in a page whose Sforce-NumberOfRecords says 2" in str(error)


def test_a_bulk_job_delivering_fewer_rows_than_it_processed_fails_and_advances_nothing(
    salesforce, duckdb_warehouse_url
) -> None:
    error = before_and_after_failure(salesforce, duckdb_warehouse_url, "miscount")
    assert isinstance(error, BulkJobFailed)
    assert "processed 3 records but delivered 2" in str(error)


def test_a_failed_bulk_job_fails_and_advances_nothing(salesforce, duckdb_warehouse_url) -> None:
    error = before_and_after_failure(salesforce, duckdb_warehouse_url, "fail")
    assert isinstance(error, BulkJobFailed)
    assert "Failed" in str(error) and "InternalServerError" in str(error)


def test_a_bulk_job_that_does_not_finish_in_time_is_aborted_and_fails(
    salesforce, duckdb_warehouse_url
) -> None:
    error = before_and_after_failure(salesforce, duckdb_warehouse_url, "timeout")
    assert isinstance(error, BulkJobFailed)
    assert "aborted" in str(error)
    assert [job.state for job in salesforce.org.jobs.values()] == ["Aborted"]


# -- reconciliation -------------------------------------------------------------------------------


def reconcile(salesforce, warehouse_url: str, **spec):  # type: ignore[no-untyped-def]
    from dw_pipelines.sync.engine import reconcile_stream
    from dw_pipelines.sync.spec import StreamSpec
    from dw_pipelines.sync.warehouses import open_warehouse

    source, warehouse = salesforce.source(), open_warehouse(warehouse_url)
    try:
        return reconcile_stream(StreamSpec(source="salesforce", **spec), source, warehouse)
    finally:
        warehouse.close()
        source.close()


@pytest.mark.parametrize("deletes", ["hard", "soft"])
def test_reconciliation_finds_purged_records_and_repairs_them_per_policy(
    salesforce, warehouse_url, deletes
) -> None:
    org = salesforce.org
    ids = add_accounts(org, 5)
    spec = {
        "object": "Account",
        "mode": "incremental_merge",
        "cursor": "SystemModstamp",
        "primary_key": ["Id"],
        "deletes": deletes,
    }
    salesforce.sync(warehouse_url, **spec)
    org.purge("Account", ids[1])  # emptied from the recycle bin: queryAll never reports it
    assert salesforce.sync(warehouse_url, **spec).rows_deleted == 0

    result = reconcile(salesforce, warehouse_url, **spec)

    assert (result.rows_read, result.rows_deleted) == (4, 1)
    if deletes == "hard":
        assert names(warehouse_url) == live_names(org)
    else:
        assert warehouse_rows(
            warehouse_url, 'SELECT "Id" FROM salesforce.account WHERE _dw_deleted_at IS NOT NULL'
        ) == [(ids[1],)]
    assert warehouse_rows(
        warehouse_url,
        "SELECT mode, rows_deleted FROM _dw.sync_log ORDER BY finished_at DESC LIMIT 1",
    ) == [("reconcile", 1)]


def test_reconciliation_keeps_the_cursor_and_a_following_sync_continues_from_it(
    salesforce, duckdb_warehouse_url
) -> None:
    org = salesforce.org
    ids = add_accounts(org, 3)
    spec = {"object": "Account", "mode": "incremental_merge", "cursor": "SystemModstamp"}
    first = salesforce.sync(duckdb_warehouse_url, **spec)
    org.purge("Account", ids[0])

    reconciled = reconcile(salesforce, duckdb_warehouse_url, primary_key=["Id"], **spec)
    org.insert("Account", Name="After")
    after = salesforce.sync(duckdb_warehouse_url, **spec)

    assert reconciled.cursor_after == first.cursor_after
    assert after.rows_inserted == 1
    assert after.row_count == 3
    assert names(duckdb_warehouse_url) == live_names(org)


# -- pure helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        (dt.datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=UTC), "2026-01-05T09:00:00.123Z"),
        (
            dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))),
            "2026-01-05T09:00:00.000Z",
        ),
        (dt.date(2026, 1, 5), "2026-01-05"),
        (42, "42"),
        ("O'Brien", "'O\\'Brien'"),
    ],
)
def test_cursor_values_become_soql_literals(value, literal) -> None:
    from dw_pipelines.sync.sources.salesforce import soql_literal

    assert soql_literal(value) == literal


@pytest.mark.parametrize(
    ("text", "column", "expected"),
    [
        (
            "2026-01-05T09:00:00.123+0000",
            ("timestamptz",),
            dt.datetime(2026, 1, 5, 9, 0, 0, 123000, tzinfo=UTC),
        ),
        (
            "2026-01-05T09:00:00.123Z",
            ("timestamptz",),
            dt.datetime(2026, 1, 5, 9, 0, 0, 123000, tzinfo=UTC),
        ),
        ("12.50", ("decimal", 18, 2), Decimal("12.50")),
        ("true", ("boolean",), True),
        ("09:30:00.000Z", ("time",), dt.time(9, 30)),
        (None, ("int32",), None),
    ],
)
def test_rest_and_bulk_text_values_convert_exactly(text, column, expected) -> None:
    import pyarrow as pa

    from dw_pipelines.sync.schema import Column
    from dw_pipelines.sync.sources.salesforce import to_arrow

    col = Column("f", column[0], True, *column[1:])
    batch = to_arrow([col], {"f": pa.array([text], pa.string())})
    assert batch.column(0).to_pylist() == [expected]


def test_reconciliation_refuses_to_empty_a_table_when_the_source_lists_no_key(
    salesforce, duckdb_warehouse_url
) -> None:
    org = salesforce.org
    ids = add_accounts(org, 2)
    spec = {"object": "Account", "mode": "incremental_merge", "cursor": "SystemModstamp"}
    salesforce.sync(duckdb_warehouse_url, **spec)
    for record_id in ids:  # e.g. the integration user lost sharing access to every record
        org.purge("Account", record_id)

    with pytest.raises(SyncError, match="listed no key at all"):
        reconcile(salesforce, duckdb_warehouse_url, primary_key=["Id"], **spec)

    assert len(names(duckdb_warehouse_url)) == 2
