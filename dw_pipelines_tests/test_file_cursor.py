"""Which listed objects a file sensor's tick requests: one decision, stated by its cases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from dw_pipelines.ingest.file_cursor import FileCursor, pending_batches
from dw_pipelines.sync.files.spec import FileStreamSpec
from dw_pipelines.sync.files.store import ObjectInfo

SPEC = FileStreamSpec(
    source="drops", name="events", bucket="b", prefix="in/", partitioning="key_date"
)
TODAY = date(2025, 3, 10)


def obj(key: str, etag: str = "e1") -> ObjectInfo:
    return ObjectInfo(f"in/{key}", etag, 10, datetime(2025, 3, 9, tzinfo=UTC))


def requested(objects: list[ObjectInfo], cursor: FileCursor | None = None) -> list[str]:
    batches = pending_batches(
        SPEC,
        objects,
        cursor or FileCursor(),
        lookback=timedelta(hours=1),
        max_files=10,
        max_runs=10,
        first_day=date(2025, 3, 1),
        today=TODAY,
    )
    return [o.key.removeprefix("in/") for b in batches for o in b.objects]


def test_dated_keys_from_the_first_day_to_today_are_requested() -> None:
    assert requested([obj("2025-03-01.csv"), obj("2025-03-10.csv")]) == [
        "2025-03-01.csv",
        "2025-03-10.csv",
    ]


def test_undated_keys_days_before_the_first_and_future_days_are_not() -> None:
    assert requested([obj("notes.csv"), obj("2025-02-28.csv"), obj("2025-03-11.csv")]) == []


def test_an_object_is_requested_again_only_when_rewritten() -> None:
    cursor = FileCursor()
    assert requested([obj("2025-03-05.csv")], cursor) == ["2025-03-05.csv"]
    assert requested([obj("2025-03-05.csv")], cursor) == []
    assert requested([obj("2025-03-05.csv", etag="e2")], cursor) == ["2025-03-05.csv"]
