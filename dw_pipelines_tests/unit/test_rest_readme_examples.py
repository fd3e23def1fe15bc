"""The README's Stripe and HubSpot declarations are valid catalogs, as a reader would copy them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dw_pipelines.components import StreamCatalog

README = Path(__file__).resolve().parents[2] / "README.md"


def rest_examples() -> list[str]:
    text = README.read_text()
    section = text.split("## REST APIs (`type: rest`)", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```yaml\n(.*?)```", section, re.S)


@pytest.mark.parametrize("yaml", rest_examples(), ids=["stripe", "hubspot"])
def test_the_readme_declaration_builds_its_streams(yaml: str) -> None:
    defs = StreamCatalog.resolve_from_yaml(yaml).build_defs(None)  # type: ignore[arg-type]
    assert defs.assets and all(a.key.path[0] in ("stripe", "hubspot") for a in defs.assets)  # type: ignore[union-attr]
