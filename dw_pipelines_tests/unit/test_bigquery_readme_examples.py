"""The README's BigQuery declarations are valid catalogs, and its billing export is the one
shipped in docs/examples/gcp, as a reader would copy either."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from dw_pipelines.components import StreamCatalog

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## BigQuery tables and queries (`type: bigquery`)"


def examples() -> list[str]:
    section = (ROOT / "README.md").read_text().split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```yaml\n(.*?)```", section, re.S)


@pytest.mark.parametrize("text", examples(), ids=["analytics", "gcp_billing"])
def test_the_readme_declaration_builds_its_streams(text: str) -> None:
    defs = StreamCatalog.resolve_from_yaml(text).build_defs(None)  # type: ignore[arg-type]
    assert defs.assets and all(a.key.path[0] in ("analytics", "gcp") for a in defs.assets)  # type: ignore[union-attr]


def test_the_readme_billing_export_is_the_shipped_declaration() -> None:
    shipped = yaml.safe_load((ROOT / "docs/examples/gcp/defs.yaml").read_text())["attributes"]
    shown = yaml.safe_load(examples()[1])
    [stream] = shipped["streams"]
    assert shown["sources"] == shipped["sources"]
    assert shown["streams"] == [{k: v for k, v in stream.items() if k != "description"}]
