"""The pieces of `make demo` a newcomer reads: its `.env`, its progress log, its summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from dotenv import dotenv_values

from dw_pipelines.demo import localenv, progress
from dw_pipelines.demo.summary import LastRun, last_run
from dw_pipelines.sync.state import SyncLogLine
from dw_pipelines.sync.warehouses import open_warehouse

S3 = {"DW_S3_ENDPOINT_URL": "http://127.0.0.1:9000", "DW_S3_SECRET_ACCESS_KEY": "s3cr3t"}


def test_env_file_keeps_a_changed_setting_and_rewrites_the_demo_services(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    localenv.write(path, {"DW_WAREHOUSE_URL": "/p/.dw/warehouse.duckdb"}, S3)
    path.write_text(path.read_text().replace("/p/.dw/warehouse.duckdb", "postgresql://h/wh"))

    moved = {**S3, "DW_S3_ENDPOINT_URL": "http://127.0.0.1:9100"}
    localenv.write(path, {"DW_WAREHOUSE_URL": "/p/.dw/warehouse.duckdb"}, moved)

    assert dotenv_values(path) == {"DW_WAREHOUSE_URL": "postgresql://h/wh", **moved}


def test_env_file_values_make_cannot_read_bare_are_quoted_for_dotenv(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    localenv.write(path, {"DW_HOME": "/home/a user/it's here/.dw"}, {})

    assert dotenv_values(path) == {"DW_HOME": "/home/a user/it's here/.dw"}
    assert path.stat().st_mode & 0o777 == 0o600


def test_dagster_log_lines_are_shortened_to_their_time_and_message() -> None:
    run = "all_streams_job - 8cb6ee01-177a-47f4-a3ec-e6778cdb058d"
    lines = [
        f"2026-12-03 14:04:35 +0000 - dagster - INFO - {run} - demo_shop__orders - demo_shop.orders:"
        " read 500, inserted 500\n",
        f"2026-12-03 14:04:36 +0000 - dagster - DEBUG - {run} - demo_shop__orders - STEP_WORKER_STARTED"
        " - Executing step\n",
        f"2026-12-03 14:04:37 +0000 - dagster - ERROR - {run} - salesforce__lead - STEP_FAILURE -"
        " Execution of step failed.\n",
        "Traceback (most recent call last):\n",
    ]

    assert list(progress.shorten(lines)) == [
        "  14:04:35  demo_shop.orders: read 500, inserted 500",
        "  14:04:37  ERROR: STEP_FAILURE - Execution of step failed.",
        "Traceback (most recent call last):",
    ]


def test_a_syncs_summary_line_is_told_in_words() -> None:
    run = "all_streams_job - 8cb6ee01-177a-47f4-a3ec-e6778cdb058d"
    line = (
        f"2026-12-03 14:04:35 +0000 - dagster - INFO - {run} - demo_shop__orders - stream"
        " demo_shop.orders synced: table=demo_shop.orders mode=incremental_merge rows_read=500"
        " rows_inserted=480 rows_updated=20 rows_unchanged=0 rows_deleted=0 row_count=500"
        ' cursor_before="" cursor_after="2026-12-03 14:00:00" duration_s=0.2\n'
    )

    assert list(progress.shorten([line])) == [
        "  14:04:35  demo_shop.orders: read 500, inserted 480, updated 20,"
        " cursor 2026-12-03 14:00:00"
    ]


def test_dbt_lines_per_model_are_left_out_but_its_verdict_and_failures_stay() -> None:
    lines = [
        "Running with dbt=1.11.16\n",
        "1 of 57 START sql view model staging.stg_demo_shop__orders ........ [RUN]\n",
        "1 of 57 OK created sql view model staging.stg_demo_shop__orders ... [\x1b[32mOK\x1b[0m in 0.03s]\n",
        "2 of 57 FAIL 1 accepted_values_stg_salesforce__opportunity_stage ... [\x1b[31mFAIL 1\x1b[0m in 0.02s]\n",
        "\n",
        "Done. PASS=56 WARN=0 ERROR=1 SKIP=0 NO-OP=0 TOTAL=57\n",
    ]

    assert list(progress.shorten(lines)) == [
        "2 of 57 FAIL 1 accepted_values_stg_salesforce__opportunity_stage ... [FAIL 1 in 0.02s]",
        "Done. PASS=56 WARN=0 ERROR=1 SKIP=0 NO-OP=0 TOTAL=57",
    ]


def test_the_last_run_of_a_file_stream_adds_up_its_lines_and_leaves_earlier_runs_out(
    duckdb_warehouse_url: str,
) -> None:
    start = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    warehouse = open_warehouse(duckdb_warehouse_url)
    try:
        warehouse.ensure_state_table()
        for minutes, read, cursor in [(-60, 336, "m-10"), (1, 336, "m-10"), (2, 24, "m-11")]:
            line = SyncLogLine(
                "aws.cost_and_usage",
                "files",
                rows_read=read,
                rows_inserted=read,
                cursor_after=cursor,
            )
            warehouse.log_sync(line, start + timedelta(minutes=minutes))

        run = last_run(warehouse, "aws.cost_and_usage", (start, start + timedelta(minutes=5)))
    finally:
        warehouse.close()

    assert run == LastRun("files", read=360, inserted=360, updated=0, deleted=0, cursor="m-11")
