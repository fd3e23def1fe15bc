"""The README's Stripe, HubSpot and generic declarations are valid catalogs, as a reader would
copy them."""

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


SOURCES = ["stripe", "hubspot", "tickets_api"]


def test_the_readme_shows_a_declaration_per_source() -> None:
    assert [re.search(r"sources:\n  (\w+):", y)[1] for y in rest_examples()] == SOURCES  # type: ignore[index]


@pytest.mark.parametrize("yaml", rest_examples(), ids=SOURCES)
def test_the_readme_declaration_builds_its_streams(yaml: str) -> None:
    defs = StreamCatalog.resolve_from_yaml(yaml).build_defs(None)  # type: ignore[arg-type]
    streams = len(re.findall(r"^    - \{source:", yaml, re.M))
    assert streams and len(defs.assets) == streams  # type: ignore[arg-type]
    assert {a.key.path[0] for a in defs.assets} == {re.search(r"sources:\n  (\w+):", yaml)[1]}  # type: ignore[union-attr, index]
