"""The contract between the engine and any source (SQL databases today; files, SaaS APIs later)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Protocol

import pyarrow as pa

from dw_pipelines.sync.schema import Column
from dw_pipelines.sync.state import CursorValue


@dataclass(frozen=True)
class ReadRequest:
    """Rows of `object` with `lower <= cursor < upper` (either bound optional), these columns."""

    object: str
    columns: tuple[Column, ...]
    cursor: str | None = None
    lower: CursorValue | None = None
    upper: CursorValue | None = None
    # The stream's schema policy keeps dropped columns (evolve): a source that finds a column
    # gone while reading may deliver it as NULL instead of failing.
    tolerate_missing_columns: bool = False


@dataclass(frozen=True)
class SourceAbilities:
    """What a source can do beyond the required methods, stated by the source (not probed).

    Each ability set to True promises the method of the same purpose:
    - `default_cursor`: `default_cursor(obj) -> str | None`, the cursor of an incremental
      stream naming none;
    - `reports_deletes`: `deleted_keys(request) -> RecordBatchReader`, keys
      (`request.columns`) of rows deleted with the cursor in `[lower, upper)`, applied by
      incremental_merge in its transaction;
    - `lists_all_keys`: `all_keys(request) -> RecordBatchReader`, every live key, for
      `reconcile_stream`;
    - `run_metadata`: `run_metadata() -> dict`, what the run cost (API calls ...), for the
      materialization;
    - `read_horizon`: `read_horizon() -> ReadHorizon`, asked just before an incremental read;
    - `checksums`: `key_checksums(obj, keys, cursor, below)` and `key_rows(...)`, the source
      side of a reconciliation check, computed by the source database (`sync/checks.py`).
    """

    default_cursor: bool = False
    reports_deletes: bool = False
    lists_all_keys: bool = False
    run_metadata: bool = False
    read_horizon: bool = False
    checksums: bool = False


@dataclass(frozen=True)
class ReadHorizon:
    """Where rows not yet visible to a read may still appear: the start of the oldest
    transaction open on the source when the read began (the read's own start if none), in UTC
    (`at`) and in the source's wall-clock time zone (`local_at`, for timestamps without one).

    A transaction stamps its rows no earlier than its start, so the next read starting at the
    horizon sees the rows of every transaction that committed after this read, however long it
    ran. `at` is None when the source cannot tell (`reason` says why): the lookback alone then
    guards late rows.
    """

    at: datetime | None
    local_at: datetime | None = None
    reason: str = ""


class Source(Protocol):
    """What every source implements; `abilities` says which optional methods it has."""

    abilities: ClassVar[SourceAbilities]

    def describe(self, obj: str) -> list[Column]:
        """The object's columns in source order; SourceObjectMissing if it does not exist."""
        ...

    def read(self, request: ReadRequest) -> pa.RecordBatchReader:
        """A stream of batches typed exactly as `request.columns` say, bounded in size."""
        ...

    def count_nulls(self, obj: str, column: str) -> int: ...

    def close(self) -> None: ...
