"""Declaring streams in defs.yaml: good entries become assets, bad ones fail loading clearly."""

from __future__ import annotations

import textwrap

import dagster as dg
import pydantic
import pytest

from dw_pipelines.components import StreamCatalog
from dw_pipelines.sync.spec import DeclarationError

# The `attributes:` of a defs.yaml, resolved the way Dagster's loader resolves them.
ATTRIBUTES = """
sources:
  shop:
    type: postgres
    url_env: SHOP_URL
streams:
"""


def load(streams: str) -> dg.Definitions:
    component = StreamCatalog.resolve_from_yaml(
        ATTRIBUTES + textwrap.indent(textwrap.dedent(streams), "  ")
    )
    return component.build_defs(None)  # type: ignore[arg-type]  # build_defs ignores its context


def test_one_yaml_entry_is_one_asset_with_its_owners_and_group() -> None:
    defs = load(
        """
        - source: shop
          object: sales.orders
          mode: incremental_merge
          primary_key: [id]
          cursor: updated_at
          lookback: 5 minutes
          group: sales
          owners: [alice@example.com]
        """,
    )
    spec = next(iter(defs.get_assets_def(dg.AssetKey(["shop", "orders"])).specs))
    assert spec.group_name == "sales"
    assert spec.owners == ["alice@example.com"]
    assert spec.metadata["source_object"] == "sales.orders"


def test_unknown_source_names_the_entry_and_field() -> None:
    with pytest.raises(
        DeclarationError, match=r"streams\[0\].*field 'source'.*unknown source 'crm'"
    ):
        load("- {source: crm, object: accounts}\n")


def test_merge_without_primary_key_names_the_entry_and_field() -> None:
    with pytest.raises(
        DeclarationError, match=r"streams\[0\].*field 'primary_key'.*incremental_merge"
    ):
        load("- {source: shop, object: orders, mode: incremental_merge, cursor: ts}\n")


def test_duplicate_stream_names_both_entries() -> None:
    with pytest.raises(
        DeclarationError, match=r"streams\[1\].*duplicate stream 'shop.orders'.*streams\[0\]"
    ):
        load(
            """
            - {source: shop, object: orders}
            - {source: shop, object: public.orders}
            """,
        )


def test_unknown_mode_is_rejected_naming_the_field() -> None:
    with pytest.raises(
        pydantic.ValidationError, match=r"(?s)mode.*Input should be 'full_refresh'.*'upsert'"
    ):
        load("- {source: shop, object: orders, mode: upsert}\n")


def test_cursor_outside_the_selected_columns_names_the_field() -> None:
    with pytest.raises(
        DeclarationError, match=r"field 'cursor'.*'updated_at' is not in the stream's 'columns'"
    ):
        load(
            """
            - source: shop
              object: orders
              mode: incremental_append
              cursor: updated_at
              columns: [id, total]
            """,
        )


def test_unknown_field_in_an_entry_is_rejected_naming_it() -> None:
    with pytest.raises(
        pydantic.ValidationError, match=r"(?s)primary_keys.*Extra inputs are not permitted"
    ):
        load("- {source: shop, object: orders, primary_keys: [id]}\n")


def test_invalid_cron_names_the_entry_and_field() -> None:
    with pytest.raises(DeclarationError, match=r"field 'schedule'.*not a valid cron"):
        load("- {source: shop, object: orders, schedule: 'every day'}\n")
