"""Source kinds, registered in one place. Adding a kind is one module filling in `SourceKind`
(see `base.py`) and one line in `KINDS`."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Discriminator, Tag

from dw_pipelines.kinds.base import SourceKind, SourceModel, Stream
from dw_pipelines.kinds.bigquery import BigQueryKind
from dw_pipelines.kinds.rest import RestKind
from dw_pipelines.kinds.s3_files import S3FilesKind
from dw_pipelines.kinds.salesforce import SalesforceKind
from dw_pipelines.kinds.sql import SqlKind
from dw_pipelines.kinds.streams import StreamModel

KINDS: tuple[SourceKind, ...] = (
    SqlKind(),
    S3FilesKind(),
    SalesforceKind(),
    RestKind(),
    BigQueryKind(),
)

_BY_TYPE = {type_name: kind for kind in KINDS for type_name in kind.types}


class UnknownSource(SourceModel):
    """Where an entry whose `type` no kind declares lands: its error lists the types there are."""

    type: Literal[tuple(_BY_TYPE)]  # type: ignore[valid-type]


def _model_name(entry: object) -> str:
    type_name = entry.get("type") if isinstance(entry, dict) else getattr(entry, "type", None)
    kind = _BY_TYPE.get(type_name)  # type: ignore[arg-type]
    return kind.model.__name__ if kind else UnknownSource.__name__


# A `sources.<name>` entry is the model of the kind its `type` names, and a bad field is reported
# against that model only. Tagged by model name: a tag equal to the type (`s3`) would read, in an
# error's path, like the settings block of the same name.
AnySourceModel = Annotated[
    Union[  # type: ignore[valid-type]  # noqa: UP007
        tuple(Annotated[m, Tag(m.__name__)] for m in (*(k.model for k in KINDS), UnknownSource))
    ],
    Discriminator(_model_name),
]


def kind_of(source: SourceModel) -> SourceKind:
    return _BY_TYPE[source.type]  # type: ignore[attr-defined]


__all__ = [
    "KINDS",
    "AnySourceModel",
    "SourceKind",
    "SourceModel",
    "Stream",
    "StreamModel",
    "kind_of",
]
