"""The new-object sensor's cursor and batch plan: what is new, what is remembered, what runs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from dw_pipelines.ingest.file_cursor import Batch, FileCursor, plan_batches
from dw_pipelines.sync.files.spec import FileStreamSpec, Partitioning
from dw_pipelines.sync.files.store import ObjectInfo

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LOOKBACK = timedelta(hours=1)


def obj(key: str, minutes: float = 0, etag: str = "e1") -> ObjectInfo:
    return ObjectInfo(key, etag, 10, T0 + timedelta(minutes=minutes))


def spec(partitioning: Partitioning = Partitioning.NONE) -> FileStreamSpec:
    return FileStreamSpec("s3src", "events", "bucket", "in/", partitioning=partitioning)


def test_an_empty_cursor_offers_every_object_oldest_first() -> None:
    objects = [obj("in/b", 5), obj("in/a", 5), obj("in/c", 1)]

    assert [o.key for o in FileCursor().unseen(objects, LOOKBACK)] == ["in/c", "in/a", "in/b"]


def test_a_requested_object_is_not_offered_again() -> None:
    cursor = FileCursor()
    cursor.mark([obj("in/a")], [], LOOKBACK)

    assert cursor.unseen([obj("in/a")], LOOKBACK) == []


def test_a_rewritten_object_with_a_new_etag_is_offered_again() -> None:
    cursor = FileCursor()
    cursor.mark([obj("in/a")], [], LOOKBACK)

    assert cursor.unseen([obj("in/a", 1, etag="e2")], LOOKBACK) == [obj("in/a", 1, etag="e2")]


def test_an_object_stamped_late_within_the_lookback_is_still_offered() -> None:
    cursor = FileCursor()
    cursor.mark([obj("in/a", 30)], [], LOOKBACK)

    assert cursor.unseen([obj("in/early", 0)], LOOKBACK) == [obj("in/early", 0)]


def test_an_object_older_than_the_lookback_is_not_offered() -> None:
    cursor = FileCursor()
    cursor.mark([obj("in/a", 120)], [], LOOKBACK)

    assert cursor.unseen([obj("in/old", 0)], LOOKBACK) == []


def test_objects_left_for_a_later_tick_hold_the_high_water_mark_back() -> None:
    cursor = FileCursor()
    cursor.mark([obj("in/a", 300)], [obj("in/b", 10)], LOOKBACK)

    assert cursor.high_water == T0 + timedelta(minutes=10)
    assert cursor.unseen([obj("in/b", 10)], LOOKBACK) == [obj("in/b", 10)]


def test_entries_older_than_the_window_are_forgotten() -> None:
    cursor = FileCursor()
    cursor.mark([obj("in/a", 0)], [], LOOKBACK)
    cursor.mark([obj("in/b", 180)], [], LOOKBACK)

    assert set(cursor.recent) == {"in/b"}


def test_the_cursor_round_trips_through_its_text_form() -> None:
    cursor = FileCursor()
    cursor.mark([obj("in/a", 3)], [], LOOKBACK)

    assert FileCursor.load(cursor.dump()) == cursor
    assert FileCursor.load(None) == FileCursor()


def test_unpartitioned_objects_are_planned_in_runs_of_at_most_max_files() -> None:
    objects = [obj(f"in/{i}", i) for i in range(5)]
    batches = plan_batches(spec(), objects, max_files=2, max_runs=10)

    assert [[o.key for o in b.objects] for b in batches] == [
        ["in/0", "in/1"],
        ["in/2", "in/3"],
        ["in/4"],
    ]
    assert {b.partition for b in batches} == {None}


def test_no_more_than_max_runs_batches_are_planned() -> None:
    objects = [obj(f"in/{i}", i) for i in range(5)]

    assert len(plan_batches(spec(), objects, max_files=1, max_runs=3)) == 3


def test_key_date_partitioning_groups_objects_by_the_date_in_their_key() -> None:
    objects = [obj("in/2026/11/29/a", 0), obj("in/2026-11-30/b", 1), obj("in/2026/11/29/c", 2)]
    batches = plan_batches(spec(Partitioning.KEY_DATE), objects, max_files=10, max_runs=10)

    assert [(b.partition, [o.key for o in b.objects]) for b in batches] == [
        (date(2026, 11, 29), ["in/2026/11/29/a", "in/2026/11/29/c"]),
        (date(2026, 11, 30), ["in/2026-11-30/b"]),
    ]


def test_a_key_without_a_date_is_left_out_of_a_key_date_plan() -> None:
    objects = [obj("in/undated", 0), obj("in/2026/13/45/impossible", 1)]

    assert plan_batches(spec(Partitioning.KEY_DATE), objects, max_files=10, max_runs=10) == []


def test_modified_date_partitioning_uses_the_utc_date_of_last_modified() -> None:
    batches = plan_batches(
        spec(Partitioning.MODIFIED_DATE), [obj("in/a", 13 * 60)], max_files=10, max_runs=10
    )

    assert [b.partition for b in batches] == [date(2026, 12, 1)]


def test_a_run_key_names_the_partition_and_changes_with_an_etag() -> None:
    first = Batch(date(2026, 11, 30), [obj("in/a")])
    rewritten = Batch(date(2026, 11, 30), [obj("in/a", etag="e2")])

    assert first.run_key.startswith("2026-11-30:")
    assert first.run_key != rewritten.run_key
    assert Batch(None, [obj("in/a")]).run_key.startswith("all:")
