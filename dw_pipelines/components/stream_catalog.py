"""The stream catalog: sources and the streams read from them, declared in YAML.

Adding a table is one entry under `streams:`; connection URLs come from environment variables
that the YAML names, so no secret is ever written in it. The catalog checks the YAML's shape and
the rules across entries; everything particular to a kind of source (its settings, resource,
stream rules and definitions) lives in that kind's module under `dw_pipelines.kinds`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import dagster as dg
from pydantic import BaseModel

from dw_pipelines.ingest.assets import source_resource_key
from dw_pipelines.ingest.checks import freshness_defs
from dw_pipelines.kinds import AnySourceModel, Stream, StreamModel, kind_of
from dw_pipelines.sync.checks import declared_checks
from dw_pipelines.sync.spec import DeclarationError

# Where a YAML path is, as `file:line` ("" when the YAML has no file, e.g. in tests).
Locate = Callable[[Sequence[str | int]], str]


class CatalogModel(dg.Model):
    """A catalog's `attributes:`."""

    sources: dict[str, AnySourceModel]
    streams: list[StreamModel]
    owners: list[str] = []
    """Default owners for every stream that names none."""


class StreamCatalog(dg.Component, dg.Resolvable):
    """Declares sources and streams; builds one asset per stream, one resource per source."""

    def __init__(self, catalog: CatalogModel, streams: Sequence[Stream]) -> None:
        self.catalog = catalog
        self.streams = list(streams)

    @classmethod
    def model(cls) -> type[BaseModel]:
        # Dagster's derived model would also accept a template string for each field, so a bad
        # stream got a second error ("not a valid string") and the position of `streams:`.
        return CatalogModel

    @classmethod
    def resolve_from_model(cls, context: dg.ResolutionContext, model: BaseModel) -> StreamCatalog:
        assert isinstance(model, CatalogModel)
        return cls(model, declared_streams(model, _locator(context)))

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        defs = [
            kind_of(source).build_defs(
                name, source, [s for s in self.streams if s.model.source == name]
            )
            for name, source in self.catalog.sources.items()
        ]
        resources = {
            source_resource_key(name): kind_of(source).resource(name, source)
            for name, source in self.catalog.sources.items()
        }
        freshness = [
            freshness_defs(
                name,
                [
                    (dg.AssetKey([s.spec.source, s.spec.name]), c)
                    for s in self.streams
                    if s.model.source == name
                    for c in s.checks
                    if c.type == "freshness"
                ],
            )
            for name in self.catalog.sources
        ]
        return dg.Definitions.merge(*defs, *freshness, dg.Definitions(resources=resources))


def declared_streams(catalog: CatalogModel, locate: Locate = lambda path: "") -> list[Stream]:
    """Every stream validated, or an error naming the offending entry, its line and field."""
    streams: list[Stream] = []
    seen: dict[str, int] = {}
    for index, model in enumerate(catalog.streams):
        sid = model.stream_label

        def where(field_name: str, index: int = index, sid: str = sid) -> str:
            at = locate(["streams", index, *_yaml_path(field_name)])
            return (f"{at}: " if at else "") + f"streams[{index}] ('{sid}')"

        source = catalog.sources.get(model.source)
        try:
            if source is None:
                known = ", ".join(sorted(catalog.sources)) or "none declared"
                raise DeclarationError(
                    sid, "source", f"unknown source '{model.source}' (sources: {known})"
                )
            kind = kind_of(source)
            spec = kind.spec(model.source, source, model)
            checks = declared_checks(
                sid,
                [c.model_dump(exclude_none=True) for c in model.checks],
                kind.check_types(source, model),
            )
            if spec.stream_id in seen:
                raise DeclarationError(
                    sid,
                    "name",
                    f"duplicate stream '{spec.stream_id}' (also streams[{seen[spec.stream_id]}]);"
                    " give one of them a distinct 'name'",
                )
        except DeclarationError as exc:
            raise DeclarationError(
                sid, exc.field_name, exc.problem, where(exc.field_name)
            ) from None
        seen[spec.stream_id] = index
        owners = model.owners if model.owners is not None else catalog.owners
        streams.append(Stream(model, spec, owners, checks))
    for name, source in catalog.sources.items():
        try:
            kind_of(source).validate_source(name, source)
        except DeclarationError as exc:
            at = locate(["sources", name, *exc.field_name.split(".")])
            raise DeclarationError(
                name, exc.field_name, exc.problem, (f"{at}: " if at else "") + f"sources.{name}"
            ) from None
    return streams


def _yaml_path(field_name: str) -> list[str | int]:
    """`checks[2].min` -> ["checks", 2, "min"]: the path of a field in its stream entry."""
    path: list[str | int] = []
    for part in field_name.split("."):
        name, _, index = part.partition("[")
        path.append(name)
        if index:
            path.append(int(index.rstrip("]")))
    return path


def _locator(context: dg.ResolutionContext) -> Locate:
    tree = context.source_position_tree
    if tree is None:
        return lambda path: ""

    def locate(path: Sequence[str | int]) -> str:
        position, _ = tree.lookup_closest_and_path([*context.path, *path], None)
        file = "" if position.filename == "<string>" else f"{position.filename}:"
        return f"{file}{position.start.line}" if file else f"line {position.start.line}"

    return locate


__all__ = ["CatalogModel", "StreamCatalog", "declared_streams"]
