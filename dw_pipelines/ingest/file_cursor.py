"""The new-object sensor's cursor: what it has already asked to load, by LastModified and key.

S3 lists keys in lexicographic order only, so every tick lists the whole prefix (page by page)
and compares by modification time. The cursor keeps a high-water mark and the (key, ETag) of
every object requested within `lookback` of it: an object whose LastModified lands late (a
multipart upload is stamped when it started) is still seen, and a rewritten object (new ETag)
is seen again. Objects beyond one tick's batches stay unrequested for the next tick.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from dw_pipelines.sync.files.spec import FileStreamSpec, Partitioning
from dw_pipelines.sync.files.store import ObjectInfo


@dataclass
class FileCursor:
    high_water: datetime | None = None
    recent: dict[str, list[str]] = field(default_factory=dict)  # key -> [ETag, LastModified]

    @staticmethod
    def load(text: str | None) -> FileCursor:
        if not text:
            return FileCursor()
        raw = json.loads(text)
        mark = raw.get("high_water")
        return FileCursor(datetime.fromisoformat(mark) if mark else None, dict(raw["recent"]))

    def dump(self) -> str:
        mark = self.high_water.isoformat() if self.high_water else None
        return json.dumps({"high_water": mark, "recent": self.recent}, sort_keys=True)

    def unseen(self, objects: list[ObjectInfo], lookback: timedelta) -> list[ObjectInfo]:
        """Objects not yet requested, oldest first."""
        floor = self.high_water - lookback if self.high_water else None
        fresh = [
            o
            for o in objects
            if (floor is None or o.last_modified >= floor)
            and (self.recent.get(o.key) or [None])[0] != o.etag
        ]
        return sorted(fresh, key=lambda o: (o.last_modified, o.key))

    def mark(
        self, requested: list[ObjectInfo], left: list[ObjectInfo], lookback: timedelta
    ) -> None:
        """Remember `requested`; `left` (new but not requested this tick) must stay visible."""
        for o in requested:
            self.recent[o.key] = [o.etag, o.last_modified.isoformat()]
            if self.high_water is None or o.last_modified > self.high_water:
                self.high_water = o.last_modified
        if left and self.high_water is not None:
            self.high_water = min(self.high_water, min(o.last_modified for o in left))
        # Forget what is older than the window: the listing will not offer it as new again.
        if self.high_water is not None:
            floor = self.high_water - lookback
            self.recent = {
                k: v for k, v in self.recent.items() if datetime.fromisoformat(v[1]) >= floor
            }


@dataclass(frozen=True)
class Batch:
    partition: date | None
    objects: list[ObjectInfo]

    @property
    def run_key(self) -> str:
        digest = hashlib.sha256(
            "\n".join(f"{o.key}\t{o.etag}" for o in self.objects).encode()
        ).hexdigest()[:16]
        return f"{self.partition.isoformat() if self.partition else 'all'}:{digest}"


def plan_batches(
    spec: FileStreamSpec, objects: list[ObjectInfo], max_files: int, max_runs: int
) -> list[Batch]:
    """New objects in runs of at most `max_files`, per daily partition when partitioned."""
    groups: dict[date | None, list[ObjectInfo]] = defaultdict(list)
    for o in objects:
        groups[spec.partition_of(o.key, o.last_modified)].append(o)
    batches: list[Batch] = []
    for partition, members in sorted(groups.items(), key=lambda kv: kv[1][0].last_modified):
        for start in range(0, len(members), max_files):
            batches.append(Batch(partition, members[start : start + max_files]))
    return batches[:max_runs]


def pending_batches(
    spec: FileStreamSpec,
    objects: list[ObjectInfo],
    cursor: FileCursor,
    *,
    lookback: timedelta,
    max_files: int,
    max_runs: int,
    first_day: date,
    today: date,
) -> list[Batch]:
    """The one decision of which listed objects a tick requests, and the cursor moved past them.

    A partitioned stream never requests an undated key or a day before its first partition; a
    key dated in the future waits (holding the cursor back) until its day's partition exists;
    an object already requested with the same ETag within `lookback` is not requested again.
    What does not fit in `max_runs` batches of `max_files` stays pending for the next tick.
    """
    eligible = [o for o in objects if _eligible(spec, o, first_day)]
    unseen = cursor.unseen(eligible, lookback)
    ready = [o for o in unseen if not _future(spec, o, today)]
    batches = plan_batches(spec, ready, max_files, max_runs)
    requested = [o for b in batches for o in b.objects]
    taken = {o.key for o in requested}
    cursor.mark(requested, [o for o in unseen if o.key not in taken], lookback)
    return batches


def _eligible(spec: FileStreamSpec, obj: ObjectInfo, first_day: date) -> bool:
    if spec.partitioning is Partitioning.NONE:
        return True
    day = spec.partition_of(obj.key, obj.last_modified)
    return day is not None and day >= first_day


def _future(spec: FileStreamSpec, obj: ObjectInfo, today: date) -> bool:
    day = spec.partition_of(obj.key, obj.last_modified)
    return day is not None and day > today
