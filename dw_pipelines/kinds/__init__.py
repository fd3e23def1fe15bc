"""Source kinds, registered in one place. Adding a kind is one module filling in `SourceKind`
(see `base.py`) and one line in `KINDS`."""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from dw_pipelines.kinds.base import SourceKind, SourceModel, Stream
from dw_pipelines.kinds.s3_files import S3FilesKind
from dw_pipelines.kinds.salesforce import SalesforceKind
from dw_pipelines.kinds.sql import SqlKind
from dw_pipelines.kinds.streams import StreamModel

KINDS: tuple[SourceKind, ...] = (SqlKind(), S3FilesKind(), SalesforceKind())

_BY_TYPE = {type_name: kind for kind in KINDS for type_name in kind.types}

# A `sources.<name>` entry is the model of the kind its `type` names; pydantic picks it by `type`
# and reports a bad field against that kind's model only.
AnySourceModel = Annotated[
    Union[tuple(kind.model for kind in KINDS)],  # type: ignore[valid-type]  # noqa: UP007
    Field(discriminator="type"),
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
