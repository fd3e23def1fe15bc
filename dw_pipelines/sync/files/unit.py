"""The unit of a file stream's load: what one warehouse transaction takes from the store.

Its own module so that the plain file runner and the CUR manifest reader (`cur.py`) both build
units without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dw_pipelines.sync.files.store import ObjectInfo


@dataclass
class Unit:
    """What one warehouse transaction loads: one object, or a whole delivery (a CUR manifest)."""

    objects: list[ObjectInfo]
    manifest: ObjectInfo | None = None  # recorded with the delivery it describes
    replaces: list[str] = field(default_factory=list)  # earlier keys whose rows it supersedes
    hints: dict[str, str] = field(default_factory=dict)  # column types the manifest declares
    error: str | None = None  # a delivery that cannot be read: quarantined as it is
    listed_prior: str | None = None  # the manifest's recorded ETag when the run listed it

    @property
    def key(self) -> str:
        return self.manifest.key if self.manifest else self.objects[0].key
