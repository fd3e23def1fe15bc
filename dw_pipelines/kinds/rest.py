"""JSON REST APIs declared in YAML: base URL, authentication, and per endpoint its path,
record selector, pagination and incremental filter; each stream reads one endpoint."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import dagster as dg

from dw_pipelines.kinds.base import (
    SourceKind,
    SourceModel,
    Spec,
    Stream,
    check_cron,
    table_stream_defs,
)
from dw_pipelines.kinds.sql import table_stream_spec
from dw_pipelines.resources.rest import RestResource
from dw_pipelines.sync.sources.rest.config import Endpoint, RestApi, type_problem
from dw_pipelines.sync.spec import DeclarationError, SyncMode

if TYPE_CHECKING:
    from dw_pipelines.kinds.streams import StreamModel


class RestSourceModel(SourceModel):
    type: Literal["rest"]
    rest: RestApi
    """The API (see `RestApi`): base URL, auth, limits and endpoints."""
    pool: str | None = None
    """Dagster concurrency pool of the source's streams (default: the source's name), so its
    rate limit is shared by at most the pool's limit of concurrent steps."""


class RestKind(SourceKind):
    types = ("rest",)
    model = RestSourceModel

    def resource(self, name: str, source: SourceModel) -> RestResource:
        assert isinstance(source, RestSourceModel)
        return RestResource(name=name, api=source.rest.model_dump_json())

    def validate_source(self, name: str, source: SourceModel) -> None:
        assert isinstance(source, RestSourceModel)
        api, where = source.rest, f"sources.{name}"
        if not api.base_url and not api.base_url_env:
            raise DeclarationError(name, "rest.base_url", "give base_url or base_url_env", where)
        for key, endpoint in api.endpoints.items():
            for column, label in endpoint.columns.items():
                problem = type_problem(label)
                if problem:
                    raise DeclarationError(
                        name, f"rest.endpoints.{key}.columns.{column}", problem, where
                    )
            if endpoint.parent is not None:
                if endpoint.parent not in api.endpoints or endpoint.parent == key:
                    raise DeclarationError(
                        name,
                        f"rest.endpoints.{key}.parent",
                        f"'{endpoint.parent}' is not another endpoint of this source",
                        where,
                    )
                if endpoint.parent_batch is not None:
                    batch_problem = _batch_problem(endpoint)
                    if batch_problem:
                        field, problem = batch_problem
                        raise DeclarationError(
                            name, f"rest.endpoints.{key}.{field}", problem, where
                        )
                elif "{parent." not in endpoint.path:
                    raise DeclarationError(
                        name,
                        f"rest.endpoints.{key}.path",
                        "a child endpoint's path takes a parent field, e.g. /invoices/{parent.id}/lines",
                        where,
                    )
            elif endpoint.parent_batch is not None:
                raise DeclarationError(
                    name,
                    f"rest.endpoints.{key}.parent_batch",
                    "a batch read lists the records of a `parent:` endpoint; name it",
                    where,
                )
            for field, listing in (("deletes", endpoint.deletes), ("changes", endpoint.changes)):
                if listing is not None and (
                    listing.endpoint not in api.endpoints or listing.endpoint == key
                ):
                    raise DeclarationError(
                        name,
                        f"rest.endpoints.{key}.{field}.endpoint",
                        f"'{listing.endpoint}' is not another endpoint of this source",
                        where,
                    )
            inc = endpoint.incremental
            if endpoint.paginator.type == "keyset" and (inc is None or endpoint.parent):
                raise DeclarationError(
                    name,
                    f"rest.endpoints.{key}.paginator",
                    "keyset paging writes its bound where `incremental:` says (declare it) and"
                    " reads no parent",
                    where,
                )
            if inc is not None and not inc.param and inc.body is None:
                raise DeclarationError(
                    name,
                    f"rest.endpoints.{key}.incremental",
                    "give the query `param` or the `body` that carries the lower bound",
                    where,
                )
            if inc is not None and inc.body is not None and endpoint.method != "POST":
                raise DeclarationError(
                    name, f"rest.endpoints.{key}.incremental.body", "needs method: POST", where
                )

    def spec(self, name: str, source: SourceModel, stream: StreamModel) -> Spec:
        assert isinstance(source, RestSourceModel)
        spec = table_stream_spec(stream)
        endpoints = source.rest.endpoints
        if spec.object not in endpoints:
            raise DeclarationError(
                stream.stream_label,
                "object",
                f"source '{name}' declares no endpoint '{spec.object}'"
                f" (it has: {', '.join(endpoints) or 'none'})",
            )
        if spec.mode is SyncMode.CDC:
            raise DeclarationError(stream.stream_label, "mode", "an API has no change log (cdc)")
        endpoint = endpoints[spec.object]
        for field, listing, what in (
            ("changes", endpoint.changes, "updates"),
            ("deletes", endpoint.deletes, "deletions"),
        ):
            if listing is not None and spec.mode is SyncMode.INCREMENTAL_APPEND:
                # Append keeps a row it holds (same key and cursor) and would skip the changed
                # record, or, keyless, add it as another row; it never removes one: only a
                # merge applies what these listings report.
                raise DeclarationError(
                    stream.stream_label,
                    "mode",
                    f"endpoint '{spec.object}' lists its {what} in `{field}:` (endpoint"
                    f" '{listing.endpoint}'), which incremental_append cannot apply: use mode"
                    " incremental_merge with a primary_key (or full_refresh, which reads every"
                    " record as it now is)",
                )
        gone = endpoint.deletes
        if spec.deletes == "soft" and gone is None:
            raise DeclarationError(
                stream.stream_label,
                "deletes",
                f"endpoint '{spec.object}' declares no `deletes:` listing to read them from",
            )
        missing = [k for k in spec.primary_key if gone is not None and k not in gone.keys]
        if missing:
            raise DeclarationError(
                stream.stream_label,
                "primary_key",
                f"endpoint '{spec.object}' deletes.keys has no path for {', '.join(missing)}",
            )
        spec.validate()
        if stream.schedule:
            check_cron(stream.stream_label, stream.schedule)
        return spec

    def build_defs(
        self, name: str, source: SourceModel, streams: Sequence[Stream]
    ) -> dg.Definitions:
        assert isinstance(source, RestSourceModel)
        pool = source.pool or name
        defs = [table_stream_defs(s, source_kind="rest", pool=pool) for s in streams]
        return dg.Definitions.merge(*defs) if defs else dg.Definitions()


def _batch_problem(endpoint: Endpoint) -> tuple[str, str] | None:
    """The field at fault, and why, in a batch read's declaration (`parent_batch:`)."""
    if endpoint.method != "POST":
        return "method", "a batch read lists its parents in the JSON body: needs method: POST"
    if "{parent." in endpoint.path:
        return "path", "a batch read asks for many parents at once: its path takes no parent field"
    if endpoint.paginator.type != "none":
        return "paginator", (
            "a batch read pages each result by its own token (`parent_batch.result_next`):"
            " give no paginator"
        )
    assert endpoint.parent_batch is not None
    if endpoint.parent_batch.no_records and endpoint.parent_batch.errors is None:
        return "parent_batch.no_records", (
            "says which per-parent errors mean no records: give `errors:`, the path of the"
            " answer's error list"
        )
    return None
