"""Values a resource reads from the environment when a sync opens its source, not before.

Dagster validates the config of every resource a run uses before any step starts, so a
`dg.EnvVar` left unset would fail the whole run (every source's streams). A resource carries the
variable's *name* instead and reads it here: only the streams of the source that needs it fail,
with a message naming the source and the variable. The value never enters config, UI or logs.
"""

from __future__ import annotations

import os

from dw_pipelines.sync.errors import SyncError


class SourceNotConfigured(SyncError):
    """A source's environment variable is unset: its streams fail, the others sync."""


def read_env(source: str, variable: str | None, setting: str) -> str | None:
    """The value of `variable` (None when the YAML names no variable); unset or empty is an error."""
    if not variable:
        return None
    value = os.environ.get(variable)
    if not value:
        raise SourceNotConfigured(
            f"source '{source}' is not configured: set the environment variable {variable}"
            f" (its {setting})"
        )
    return value
