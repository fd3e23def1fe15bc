"""Which failures the production instance retries: passing faults, never bad data."""

from __future__ import annotations

import botocore.exceptions
import psycopg
import pytest

from dw_pipelines.ingest.retries import is_transient
from dw_pipelines.sync.errors import (
    CursorNullError,
    DuplicateKeyError,
    SchemaDriftError,
    SourceUnreachable,
    SyncError,
    WarehouseUnreachable,
)


def raised_from(error: BaseException, cause: BaseException) -> BaseException:
    """`error` as the engine raises it: `raise error from None` inside `except cause`."""
    try:
        try:
            raise cause
        except BaseException:
            raise error from None
    except BaseException as exc:
        return exc


@pytest.mark.parametrize(
    "error",
    [
        SourceUnreachable("source 'shop': cannot connect"),
        WarehouseUnreachable("the DuckDB file is locked by another process"),
        TimeoutError("timed out"),
        psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"),
        psycopg.errors.DeadlockDetected("deadlock detected"),
        botocore.exceptions.EndpointConnectionError(endpoint_url="http://s3"),
        raised_from(
            SyncError("cannot list s3://b/p"),
            botocore.exceptions.ReadTimeoutError(endpoint_url="x"),
        ),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_passing_fault_is_transient(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        CursorNullError("NULL in the cursor column"),
        DuplicateKeyError("the same key twice"),
        SchemaDriftError("column dropped"),
        ValueError("bad value"),
        psycopg.errors.UndefinedColumn("column does not exist"),
        raised_from(SchemaDriftError("column dropped"), TimeoutError("while reading the schema")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_bad_data_and_bugs_are_not_transient(error: BaseException) -> None:
    assert not is_transient(error)
