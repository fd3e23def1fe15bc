"""Source kinds: registered once, each answering its own `type:` values with its own settings."""

from __future__ import annotations

import pydantic
import pytest

from dw_pipelines.components import StreamCatalog
from dw_pipelines.kinds import KINDS


def test_no_two_kinds_answer_the_same_type() -> None:
    types = [t for kind in KINDS for t in kind.types]
    assert len(types) == len(set(types))


def test_an_unknown_source_type_is_refused_listing_the_types_there_are() -> None:
    with pytest.raises(
        pydantic.ValidationError,
        match=r"'postgres', 'mysql', 'sqlite', 's3', 'salesforce', 'rest' or 'bigquery'",
    ):
        StreamCatalog.resolve_from_yaml("sources:\n  d: {type: oracle}\nstreams: []\n")


def test_a_setting_of_another_kind_is_refused_for_this_source() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"S3SourceModel\.url_env"):
        StreamCatalog.resolve_from_yaml("sources:\n  d: {type: s3, url_env: X}\nstreams: []\n")
