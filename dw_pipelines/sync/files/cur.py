"""AWS Cost and Usage Reports: each billing period's delivery, as its manifest lists it.

AWS restates a billing period by delivering it again: legacy CUR writes a new assembly folder
(CSV.gz) and rewrites the period's manifest; CUR 2.0 (Data Exports, Parquet) overwrites the
period's files and its manifest. Either way the manifest names the period's current files. A
new manifest version is one unit: its files are loaded and every row the period held before
is replaced, in one warehouse transaction, so a query never sees half a restatement.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from dw_pipelines.sync.files.spec import FileStreamSpec, Layout
from dw_pipelines.sync.files.store import ObjectChanged, ObjectInfo, S3Store
from dw_pipelines.sync.files.unit import Unit

# <prefix><report>/<yyyymmdd-yyyymmdd>/<report>-Manifest.json (assembly copies sit one deeper)
LEGACY_MANIFEST = re.compile(r"(?:^|/)\d{8}-\d{8}/[^/]+-Manifest\.json$")
# <prefix><export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json
CUR2_MANIFEST = re.compile(r"(?:^|/)metadata/BILLING_PERIOD=[^/]+/[^/]+-Manifest\.json$")

# Legacy manifests type each column; keep AWS's exact values (costs carry up to 10 decimals).
LEGACY_TYPES = {
    "BigDecimal": "decimal(38,10)",
    "OptionalBigDecimal": "decimal(38,10)",
    "DateTime": "timestamptz",
}


def is_manifest(spec: FileStreamSpec, key: str) -> bool:
    pattern = LEGACY_MANIFEST if spec.layout is Layout.CUR_LEGACY else CUR2_MANIFEST
    return bool(pattern.search(key))


def cur_units(
    spec: FileStreamSpec,
    store: S3Store,
    objects: list[ObjectInfo],
    done: dict[str, str],
    say: Callable[[str], None],
) -> list[Unit]:
    """One unit per billing-period manifest not yet loaded in this version, oldest first."""
    by_key = {o.key: o for o in objects}
    units = []
    for manifest in objects:
        if not is_manifest(spec, manifest.key) or done.get(manifest.key) == manifest.etag:
            continue
        try:
            body = json.loads(store.read(spec.bucket, manifest))
            keys, period, hints = _read_manifest(spec, manifest.key, body)
        except ObjectChanged:
            # AWS rewrote the delivery since it was listed: the next run lists the new one.
            say(f"{spec.stream_id}: {manifest.key} changed since it was listed; left for the"
                " next run")  # fmt: skip
            continue
        except (ValueError, KeyError, TypeError) as exc:
            units.append(
                Unit([], manifest, error=f"unreadable manifest: {exc}",
                     listed_prior=done.get(manifest.key))
            )  # fmt: skip
            continue
        missing = [k for k in keys if k not in by_key]
        if missing:
            say(f"{spec.stream_id}: {manifest.key} lists {len(missing)} file(s) not yet there;"
                " waiting for the rest of the delivery")  # fmt: skip
            continue
        replaces = [
            k for k in done if k.startswith(period) and k not in keys and not is_manifest(spec, k)
        ]
        units.append(
            Unit([by_key[k] for k in keys], manifest, replaces, hints,
                 listed_prior=done.get(manifest.key))
        )  # fmt: skip
    return units


def _read_manifest(
    spec: FileStreamSpec, key: str, body: dict
) -> tuple[list[str], str, dict[str, str]]:
    """(data file keys, the key prefix of the period's files, column type hints)."""
    if spec.layout is Layout.CUR_LEGACY:
        keys = [str(k) for k in body["reportKeys"]]
        hints = {
            f"{c['category']}/{c['name']}": LEGACY_TYPES[c["type"]]
            for c in body.get("columns", [])
            if c.get("type") in LEGACY_TYPES
        }
        return keys, key[: key.rindex("/") + 1], hints
    bucket_prefix = f"s3://{spec.bucket}/"
    keys = [
        str(f)[len(bucket_prefix) :] if str(f).startswith(bucket_prefix) else str(f)
        for f in body["dataFiles"]
    ]
    folder = key[: key.rindex("/") + 1]
    period = folder.replace("/metadata/", "/data/", 1) if "/metadata/" in folder else folder
    return keys, period, {}
