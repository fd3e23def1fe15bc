"""Data-quality checks declared on a stream, and what each one finds in the warehouse.

A check is declared in the stream's YAML entry (`checks:`) and names what it tests; this module
holds the declarations and their evaluation against a warehouse (and, for reconciliation, the
source), with no Dagster import: `ingest/checks.py` turns them into asset checks. Every
evaluation is a few aggregate queries built by the warehouse's write/query vocabulary, so its
cost does not grow with the rows held in Python, and a failure names a few offending keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from dw_pipelines.sync.spec import DeclarationError, StreamSpec, parse_duration

if TYPE_CHECKING:
    from dw_pipelines.sync.result import SyncResult
    from dw_pipelines.sync.schema import Column
    from dw_pipelines.sync.warehouses.base import Warehouse

Severity = Literal["warn", "error"]
EXAMPLES = 5  # offending keys or values named in a failing check's description

CHECK_TYPES = ("not_null", "accepted_values", "range", "freshness", "schema_drift", "reconcile")
VALUE_CHECKS = ("not_null", "accepted_values", "range")
# checks every stream of a kind already has (key uniqueness, file quarantine, CDC slot lag)
BUILT_IN_CHECKS = ("primary_key_is_unique", "no_quarantined_files", "replication_slot_lag")


@dataclass(frozen=True)
class StreamCheck:
    """One declared check: its type, its Dagster check name and its severity.

    `error` checks are blocking: models downstream of the stream do not build in a run where
    one fails. Value checks and reconciliation default to `error` (the data is wrong); freshness
    and schema drift to `warn` (the data is still right, only late or reshaped, and the sync's
    schema policy already refuses drift it does not accept)."""

    type: str
    name: str
    severity: Severity
    columns: tuple[str, ...] = ()
    values: tuple[Any, ...] = ()
    min: float | None = None
    max: float | None = None
    within: timedelta | None = None
    within_text: str = ""

    @property
    def blocking(self) -> bool:
        return self.severity == "error"

    @property
    def description(self) -> str:
        cols = ", ".join(self.columns)
        if self.type == "not_null":
            return f"No live row has NULL in {cols}."
        if self.type == "accepted_values":
            shown = ", ".join(str(v) for v in self.values)
            return f"{cols} holds only {shown} (or NULL)."
        if self.type == "range":
            bounds = [f">= {self.min:g}" if self.min is not None else ""]
            bounds.append(f"<= {self.max:g}" if self.max is not None else "")
            return f"{cols} is {' and '.join(b for b in bounds if b)} (or NULL)."
        if self.type == "freshness":
            return f"The stream was synced successfully within the last {self.within_text}."
        if self.type == "schema_drift":
            return "No column appeared, disappeared or changed type since the previous sync."
        return (
            "The warehouse holds the source's rows: row count and a checksum over key and cursor"
            " agree, rows changed at the source after the sync's read set aside."
        )


@dataclass(frozen=True)
class CheckOutcome:
    """What one evaluation found: pass or fail, a sentence naming what failed, metadata."""

    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


DEFAULT_SEVERITY: dict[str, Severity] = {
    "not_null": "error",
    "accepted_values": "error",
    "range": "error",
    "reconcile": "error",
    "freshness": "warn",
    "schema_drift": "warn",
}


def declared_checks(
    stream: str, entries: Sequence[dict[str, Any]], allowed: Sequence[str]
) -> tuple[StreamCheck, ...]:
    """The validated checks of one stream entry, or a DeclarationError naming the field
    (`checks[i].<field>`). `entries` are the YAML mappings; `allowed` the types this stream's
    kind and mode can evaluate."""
    checks: list[StreamCheck] = []
    for index, entry in enumerate(entries):
        at = f"checks[{index}]"

        def refuse(field_name: str, problem: str, at: str = at) -> DeclarationError:
            return DeclarationError(stream, f"{at}.{field_name}" if field_name else at, problem)

        types = [t for t in CHECK_TYPES if entry.get(t) is not None]
        if len(types) != 1:
            raise refuse("", f"names exactly one of {', '.join(CHECK_TYPES)} (found {len(types)})")
        kind = types[0]
        if kind not in allowed:
            raise refuse(kind, f"is not evaluated on this stream (here: {', '.join(allowed)})")
        check = _one_check(kind, entry, refuse)
        if check.name in BUILT_IN_CHECKS:
            raise refuse("name", f"'{check.name}' is a built-in check: choose another name")
        clash = next((c for c in checks if c.name == check.name), None)
        if clash is not None:
            raise refuse(
                "name", f"a second check named '{check.name}': give one of them a distinct 'name'"
            )
        checks.append(check)
    return tuple(checks)


def _one_check(kind: str, entry: dict[str, Any], refuse: Any) -> StreamCheck:
    value = entry[kind]
    extra = {k for k in entry if k not in (kind, "severity", "name")}
    allowed_extra = {"accepted_values": {"values"}, "range": {"min", "max"}}.get(kind, set())
    if extra - allowed_extra:
        raise refuse(sorted(extra - allowed_extra)[0], f"does not apply to a {kind} check")
    severity = entry.get("severity") or DEFAULT_SEVERITY[kind]
    if severity not in ("warn", "error"):
        raise refuse("severity", f"must be 'warn' or 'error', not {severity!r}")
    name = entry.get("name")
    fields: dict[str, Any] = {}
    if kind == "not_null":
        columns = [value] if isinstance(value, str) else value
        if (
            not isinstance(columns, list)
            or not columns
            or not all(isinstance(c, str) and c for c in columns)
        ):
            raise refuse(kind, "lists the columns that must not be NULL")
        fields["columns"] = tuple(columns)
        default = "not_null"
    elif kind in ("accepted_values", "range"):
        if not isinstance(value, str) or not value:
            raise refuse(kind, "names one column")
        fields["columns"] = (value,)
        default = f"{kind}_{value}"
        if kind == "accepted_values":
            values = entry.get("values")
            if not isinstance(values, list) or not values:
                raise refuse("values", "lists the values the column may hold")
            fields["values"] = tuple(values)
        else:
            for bound in ("min", "max"):
                number = entry.get(bound)
                if number is not None and (
                    isinstance(number, bool) or not isinstance(number, int | float)
                ):
                    raise refuse(bound, f"must be a number, not {number!r}")
                fields[bound] = number
            if fields["min"] is None and fields["max"] is None:
                raise refuse(kind, "needs a 'min', a 'max' or both")
            if fields["min"] is not None and fields["max"] is not None:
                if fields["min"] > fields["max"]:
                    raise refuse("max", f"{fields['max']} is below min {fields['min']}")
    elif kind == "freshness":
        try:
            fields["within"] = parse_duration(str(value))
        except ValueError as exc:
            raise refuse(kind, str(exc)) from None
        fields["within_text"] = str(value)
        if name is not None:
            raise refuse("name", "does not apply: the check is Dagster's own `freshness_check`")
        default = "freshness_check"
    else:
        if value is not True:
            raise refuse(kind, "is `true` to turn the check on")
        default = {"schema_drift": "schema_unchanged", "reconcile": "matches_source"}[kind]
    if name is not None and (not isinstance(name, str) or not name.isidentifier()):
        raise refuse("name", "is a check name of letters, digits and underscores")
    return StreamCheck(kind, name or default, severity, **fields)


# -- evaluation ---------------------------------------------------------------------------------


def evaluate_value_check(
    check: StreamCheck,
    warehouse: Warehouse,
    table: str,
    *,
    keys: Sequence[str],
    live_column: str | None = None,
) -> CheckOutcome:
    """not_null, accepted_values and range over the live rows of `table`; a failure names up to
    EXAMPLES offending rows by `keys` (the stream's primary key) and the value found."""
    found = warehouse.violations(
        table,
        check.type,
        check.columns,
        values=check.values,
        low=check.min,
        high=check.max,
        keys=keys,
        live_column=live_column,
        limit=EXAMPLES,
    )
    examples = [_example(check, keys, row) for row in found.examples]
    metadata: dict[str, Any] = {"failing_rows": found.total, "failing_examples": examples}
    if not found.total:
        return CheckOutcome(True, check.description, metadata)
    what = {
        "not_null": f"NULL in {', '.join(check.columns)}",
        "accepted_values": f"{check.columns[0]} outside the accepted values",
        "range": f"{check.columns[0]} out of range",
    }[check.type]
    return CheckOutcome(False, f"{found.total} row(s) with {what}: {'; '.join(examples)}", metadata)


def _example(check: StreamCheck, keys: Sequence[str], row: Sequence[Any]) -> str:
    key = ", ".join(f"{k}={v}" for k, v in zip(keys, row, strict=False))
    shown = row[len(keys) :]
    if check.type == "not_null":
        nulls = [c for c, v in zip(check.columns, shown, strict=True) if v is None]
        found = f"NULL {', '.join(nulls)}"
    else:
        found = f"{check.columns[0]}={shown[0]}"
    return f"{key}: {found}" if key else found


def evaluate_schema_drift(result: SyncResult) -> CheckOutcome:
    """What changed in the table's columns against the schema recorded at the previous sync (the
    warehouse's `_dw` state, read by the sync before it wrote the new one)."""
    types = {c.name: c.type_label for c in result.columns}
    changes = [f"appeared: {n} ({types.get(n, '?')})" for n in result.columns_added]
    changes += [f"disappeared: {n}" for n in result.columns_dropped]
    changes += [f"changed type: {n} (now {types.get(n, '?')})" for n in result.columns_altered]
    metadata = {
        "columns_added": list(result.columns_added),
        "columns_dropped": list(result.columns_dropped),
        "columns_altered": list(result.columns_altered),
    }
    if not changes:
        return CheckOutcome(True, "The columns are those of the previous sync.", metadata)
    return CheckOutcome(
        False, "Columns changed since the previous sync: " + "; ".join(changes), metadata
    )


def evaluate_source_schema(spec: StreamSpec, source: Any, warehouse: Warehouse) -> CheckOutcome:
    """Schema drift without a sync (a run of the check alone): the source's columns now against
    those recorded at the previous sync, i.e. the drift the next sync will meet."""
    from dw_pipelines.sync.engine import select_columns
    from dw_pipelines.sync.result import SyncResult
    from dw_pipelines.sync.schema import column_changes

    state = warehouse.read_state(spec.stream_id)
    if state is None or not state.columns:
        return CheckOutcome(True, f"{spec.stream_id} has not been synced yet: nothing to compare.")
    now = select_columns(spec, source.describe(spec.object))
    drift = SyncResult(spec.stream_id, spec.mode.value, "", columns=now)
    drift.columns_added, drift.columns_dropped, drift.columns_altered = column_changes(
        state.columns, now, state.kept_columns
    )
    return evaluate_schema_drift(drift)


def key_columns(columns: Sequence[Column], names: Sequence[str]) -> list[Column]:
    by_name = {c.name: c for c in columns}
    return [by_name[n] for n in names if n in by_name]


DRILL_BUCKETS = 3  # buckets whose rows are read to name differing keys


def evaluate_reconciliation(spec: StreamSpec, source: Any, warehouse: Warehouse) -> CheckOutcome:
    """Row count and an order-independent checksum over key and cursor, computed by the source
    database and by the warehouse, bucket by bucket of key hash.

    The bound is the stream's cursor after its last sync (none for full refresh). Rows whose source
    cursor is at or past it changed (or appeared) after the sync's read: the next sync brings
    them, so they are set aside on both sides — at the source by the cursor, in the warehouse by
    their keys, read from the source into a stage that the check's own transaction drops. What
    still differs is a row lost, a change missed below the cursor, or a row deleted at the source
    (which incremental reads cannot see; a run with `reconcile: true` config removes it)."""
    from dw_pipelines.sync.sources.base import ReadRequest
    from dw_pipelines.sync.warehouses.base import CANONICAL_TYPES, DELETED_AT

    state = warehouse.read_state(spec.stream_id)
    table = warehouse.table(spec.source, spec.name)
    if state is None or not state.columns:
        return CheckOutcome(False, f"{spec.stream_id} has not been synced yet.")
    keys = key_columns(state.columns, spec.primary_key)
    cursor = key_columns(state.columns, [spec.cursor])[0] if spec.mode.incremental else None
    odd = [c for c in (*keys, *([cursor] if cursor else [])) if c.type not in CANONICAL_TYPES]
    if odd:
        c = odd[0]
        return CheckOutcome(
            False,
            f"column {c.name} ({c.type_label}) cannot be compared across databases"
            f" (key and cursor types: {', '.join(CANONICAL_TYPES)}).",
        )
    below = state.cursor if cursor is not None else None
    live = DELETED_AT if spec.deletes == "soft" else None
    warehouse.begin()
    try:
        stage = None
        changed = 0
        if below is not None:
            stage = warehouse.create_stage(warehouse.stage_name(spec.stream_id), keys)
            reader = source.read(
                ReadRequest(spec.object, tuple(keys), cursor=spec.cursor, lower=below)
            )
            changed = warehouse.load(stage, keys, reader)
        held = warehouse.key_checksums(
            table, keys, cursor, below=below, exclude=stage, live_column=live
        )
        read = source.key_checksums(spec.object, keys, cursor, below)
        differing = sorted(b for b in set(held) | set(read) if held.get(b) != read.get(b))
        details: list[str] = []
        for bucket in differing[:DRILL_BUCKETS]:
            ours = dict(
                warehouse.key_rows(
                    table, keys, cursor, bucket, below=below, exclude=stage, live_column=live
                )
            )
            theirs = dict(source.key_rows(spec.object, keys, cursor, bucket, below=below))
            details += _differences(ours, theirs)
    finally:
        warehouse.rollback()
    rows_held = sum(n for n, _ in held.values())
    rows_read = sum(n for n, _ in read.values())
    metadata: dict[str, Any] = {
        "source_rows": rows_read,
        "warehouse_rows": rows_held,
        "changed_after_sync": changed,
        "differing_buckets": len(differing),
        "compared_below": "" if below is None else str(below),
        "differences": details[:EXAMPLES],
    }
    if not differing:
        return CheckOutcome(
            True,
            f"{rows_read} rows agree (count and checksum); {changed} changed at the source"
            " after the sync, left for the next one.",
            metadata,
        )
    shown = (
        "; ".join(details[:EXAMPLES]) or "the differing rows were not found in the first buckets"
    )
    return CheckOutcome(
        False,
        f"source and warehouse differ: {rows_read} rows at the source, {rows_held} in the"
        f" warehouse, {len(differing)} key bucket(s) differ: {shown}",
        metadata,
    )


def _differences(ours: dict[str, str], theirs: dict[str, str]) -> list[str]:
    found = []
    for key in sorted(set(ours) | set(theirs)):
        if key not in theirs:
            found.append(f"key {key}: in the warehouse, not at the source")
        elif key not in ours:
            found.append(f"key {key}: at the source, missing from the warehouse")
        elif ours[key] != theirs[key]:
            found.append(
                f"key {key}: cursor {ours[key]} in the warehouse, {theirs[key]} at the source"
            )
    return found
