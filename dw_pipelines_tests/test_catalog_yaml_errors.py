"""A mistake in a defs.yaml is reported once, at the line of the entry that holds it."""

from __future__ import annotations

import textwrap
import traceback
from pathlib import Path

import dagster as dg
import pytest

CATALOG = """\
type: dw_pipelines.components.StreamCatalog
attributes:
  sources:
    shop: {{type: postgres, url_env: SHOP_URL}}
  streams:
    - source: shop
      object: customers
    - source: shop
      object: products
    - source: shop
      object: orders
      {mistake}
"""
THIRD_ENTRY_LINE = 10  # `- source: shop` of the orders entry


def load_project(root: Path, package: str, mistake: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lays out a one-catalog dg project under `root` and loads it the way `dg check defs` does."""
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [tool.dg]
            directory_type = "project"
            [tool.dg.project]
            root_module = "{package}"
            defs_module = "{package}.defs"
            """
        )
    )
    folder = root / package / "defs" / "catalog"
    folder.mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    (root / package / "defs" / "__init__.py").write_text("")
    (folder / "defs.yaml").write_text(CATALOG.format(mistake=mistake))
    monkeypatch.syspath_prepend(str(root))
    dg.load_from_defs_folder(path_within_project=root)


def error_text(exc: BaseException) -> str:
    """What the user sees: the error and the errors it was raised from."""
    return "".join(traceback.format_exception(exc))


def test_an_unknown_field_in_the_third_stream_is_reported_once_at_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(Exception) as caught:
        load_project(tmp_path, "yaml_errors_shape", "cursr: updated_at", monkeypatch)
    text = error_text(caught.value)
    assert "1 validation error for" in text and "validation errors for" not in text
    assert f"defs.yaml:{THIRD_ENTRY_LINE + 2}" in text  # the line of `cursr:` itself


def test_an_invalid_value_in_the_third_stream_is_reported_at_its_line_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(Exception) as caught:
        load_project(tmp_path, "yaml_errors_value", "schedule: every day", monkeypatch)
    text = error_text(caught.value)
    assert f"defs.yaml:{THIRD_ENTRY_LINE + 2}: streams[2] ('shop.orders'): field 'schedule'" in text


def test_a_missing_field_of_the_third_stream_is_reported_at_the_entry_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(Exception) as caught:
        load_project(tmp_path, "yaml_errors_missing", "mode: incremental_merge", monkeypatch)
    text = error_text(caught.value)
    assert f"defs.yaml:{THIRD_ENTRY_LINE}: streams[2] ('shop.orders'): field 'primary_key'" in text


def test_a_bad_check_of_the_third_stream_is_reported_at_its_line_naming_the_check_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mistake = "checks:\n        - not_null: [status]\n        - {range: total_amount}"
    with pytest.raises(Exception) as caught:
        load_project(tmp_path, "yaml_errors_check", mistake, monkeypatch)
    text = error_text(caught.value)
    assert (
        f"defs.yaml:{THIRD_ENTRY_LINE + 4}: streams[2] ('shop.orders'): field 'checks[1].range':"
        " needs a 'min', a 'max' or both"
    ) in text


def test_an_unknown_key_in_a_check_is_reported_at_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mistake = "checks:\n        - {range: total_amount, minimum: 0}"
    with pytest.raises(Exception) as caught:
        load_project(tmp_path, "yaml_errors_check_key", mistake, monkeypatch)
    text = error_text(caught.value)
    assert "minimum" in text and f"defs.yaml:{THIRD_ENTRY_LINE + 3}" in text
