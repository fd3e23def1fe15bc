"""Materialization metadata per stream kind, against what the README promises: pure, no server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dw_pipelines.ingest.metadata import result_metadata
from dw_pipelines.sync.result import SyncResult
from dw_pipelines.sync.schema import Column

README = Path(__file__).resolve().parents[2] / "README.md"
CONDITIONAL = {
    "window", "partition", "columns_added", "columns_altered", "columns_dropped", "late_row_guard",
    "read_horizon",
}  # fmt: skip


def promised() -> tuple[set[str], dict[str, tuple[set[str], set[str]]]]:
    """The keys every materialization records, and per stream kind (always, all) from the
    README's metadata paragraph and table."""
    text = README.read_text()
    section = text[text.index("Every materialization, whatever") : text.index("## Performance")]
    core = set(re.findall(r"`([^`]+)`", section[: section.index("The cursor is")]))
    kinds = {}
    for kind, cell in re.findall(r"^\| (files|CDC) \| (.*) \|$", section, re.MULTILINE):
        always = set(re.findall(r"`([^`]+)`", cell.split(";")[0]))
        kinds[kind] = (always, set(re.findall(r"`([^`]+)`", cell)))
    return core, kinds


def sql_result() -> SyncResult:
    return SyncResult(
        "shop.orders", "incremental_merge", "shop.orders", columns=[Column("id", "int64")]
    )


def files_result() -> SyncResult:
    return SyncResult("drops.events", "files", "drops.events", loaded=["in/a.csv"])


def cdc_result() -> SyncResult:
    return SyncResult("app.items", "cdc", "app.items", replication_slot="dw_app", lsn_after=16)


@pytest.mark.parametrize(
    ("make", "kind"), [(sql_result, None), (files_result, "files"), (cdc_result, "CDC")]
)
def test_each_stream_kind_records_what_the_readme_promises_and_nothing_it_omits(make, kind) -> None:
    core, kinds = promised()
    always, documented = kinds[kind] if kind else (set(), set())

    keys = set(result_metadata(make()))

    assert core | always <= keys
    assert keys <= core | documented | CONDITIONAL


def test_file_streams_report_their_position_like_every_other_stream() -> None:
    result = files_result()
    result.cursor_before, result.cursor_after = "in/a.csv", "in/b.csv"

    metadata = result_metadata(result)

    assert (metadata["cursor_before"], metadata["cursor_after"]) == ("in/a.csv", "in/b.csv")
    assert metadata["rows_unchanged"] == 0


def test_bookkeeping_columns_follow_the_data_columns_in_the_schema() -> None:
    result = cdc_result()
    result.columns = [Column("id", "int64")]
    result.bookkeeping = [Column("_dw_lsn", "int64")]

    schema = result_metadata(result)["dagster/column_schema"]

    assert [c.name for c in schema.columns] == ["id", "_dw_synced_at", "_dw_lsn"]  # type: ignore[attr-defined]
