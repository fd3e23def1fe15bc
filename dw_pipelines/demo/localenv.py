"""The project's `.env`: the local settings every command reads, written by `make demo`.

Dagster's CLIs (`dagster dev`, `dg launch`, `dagster asset materialize`, `dagster job backfill`)
load `.env` from the working directory before they open the instance or load code, so
DAGSTER_HOME and the sources' variables written here reach a command typed in a plain shell at
the project root. The Makefile includes the same file. Settings a reader has changed are kept;
the demo services' coordinates are rewritten on every run, since a restarted server may move.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

ENV_FILE = Path(".env")
SETTINGS = ("DW_HOME", "DAGSTER_HOME", "DW_WAREHOUSE_URL", "DW_DEMO_SHOP_URL")
HEADER = (
    "# Local settings, written by `make demo` (git-ignored). Dagster's CLIs and the Makefile read\n"
    "# this file from the project root. Edit a setting and it is kept; the DW_S3_* lines are the\n"
    "# demo's local S3 server, rewritten on every `make demo`.\n"
)
# Make reads the file too, so values are written bare unless they need quotes.
_BARE = re.compile(r"[\w./:@%+,=-]*")


def write(path: Path, settings: Mapping[str, str], services: Mapping[str, str]) -> None:
    """Write `settings` where the file has no value yet, and `services` always."""
    current = dotenv_values(path) if path.exists() else {}
    values = {
        **settings,
        **{k: v for k, v in current.items() if v is not None and k not in services},
        **services,
    }
    lines = [f"{key}={_quoted(value)}" for key, value in values.items()]
    partial = path.with_name(path.name + ".partial")
    # The S3 secret is in it: readable by its owner only, from the first byte.
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(HEADER + "\n".join(lines) + "\n")
    os.replace(partial, path)


def current_settings() -> dict[str, str]:
    """The settings as this process sees them (the Makefile's defaults, or the file's values)."""
    return {name: os.environ[name] for name in SETTINGS if os.environ.get(name)}


def _quoted(value: str) -> str:
    if _BARE.fullmatch(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
