"""Object storage as the file runner sees it: list a prefix, read one version of an object.

Every read names the ETag it expects (`If-Match`): an object rewritten while we read it fails
the read instead of mixing two versions' bytes.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from dw_pipelines.sync.errors import SyncError


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str
    size: int
    last_modified: datetime


class ObjectChanged(SyncError):
    """The object was rewritten or deleted since it was listed; it is picked up next time."""


PART_BYTES = 16 << 20
PARTS_AT_ONCE = 4


class S3Error(SyncError):
    """The store refused or could not be reached; nothing was loaded from it."""


def describe(exc: Exception) -> str:
    """botocore's error without request details: the code and AWS's message (never the keys)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return str(exc)


class S3Store:
    """A boto3 S3 client seen as listings and reads."""

    def __init__(
        self, client: Any, *, small_read_buffer: int = 64 << 10, part_bytes: int = PART_BYTES
    ) -> None:
        self.client, self.small_read_buffer = client, small_read_buffer
        self.part_bytes = part_bytes

    def list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under the prefix, page by page (1,000 keys each)."""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        item["Key"], item["ETag"].strip('"'), item["Size"], item["LastModified"]
                    )
        except (ClientError, BotoCoreError) as exc:
            raise S3Error(f"cannot list s3://{bucket}/{prefix}: {describe(exc)}") from None

    def open(self, bucket: str, obj: ObjectInfo) -> BinaryIO:
        """The object's bytes as one streamed GET."""
        response = self._get(bucket, obj)
        return response["Body"]  # type: ignore[no-any-return]

    def open_random(self, bucket: str, obj: ObjectInfo) -> BinaryIO:
        """A seekable reader over ranged GETs, for formats read out of order (Parquet).

        One GET per read: the reader asks for whole column chunks, which a large buffer would
        only re-fetch after every seek. The small buffer serves the footer's small reads."""
        return io.BufferedReader(_RangeReader(self, bucket, obj), self.small_read_buffer)

    def download(self, bucket: str, obj: ObjectInfo, target: BinaryIO) -> None:
        """Copy the object into a local file: ranged GETs of `part_bytes`, PARTS_AT_ONCE at a time
        (one connection is far from a store's bandwidth), each written at its offset."""
        size, step = obj.size, self.part_bytes
        parts = [(start, min(size, start + step) - 1) for start in range(0, size, step)]
        fd = target.fileno()

        def fetch(part: tuple[int, int]) -> None:
            body = self._get(bucket, obj, f"bytes={part[0]}-{part[1]}")["Body"]
            offset = part[0]
            try:
                for chunk in body.iter_chunks(1 << 20):
                    os.pwrite(fd, chunk, offset)
                    offset += len(chunk)
            except (ClientError, BotoCoreError) as exc:
                raise S3Error(f"cannot read s3://{bucket}/{obj.key}: {describe(exc)}") from None

        if len(parts) <= 1:
            for part in parts:
                fetch(part)
            return
        with ThreadPoolExecutor(PARTS_AT_ONCE) as pool:
            for future in [pool.submit(fetch, part) for part in parts]:
                future.result()

    def read(self, bucket: str, obj: ObjectInfo) -> bytes:
        """A small object's bytes (a manifest), of the version listed."""
        return self._get(bucket, obj)["Body"].read()  # type: ignore[no-any-return]

    def _get(self, bucket: str, obj: ObjectInfo, byte_range: str | None = None) -> Any:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": obj.key, "IfMatch": f'"{obj.etag}"'}
        if byte_range:
            kwargs["Range"] = byte_range
        try:
            return self.client.get_object(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("PreconditionFailed", "412", "NoSuchKey", "404"):
                raise ObjectChanged(
                    f"s3://{bucket}/{obj.key} changed or disappeared while being read"
                ) from None
            raise S3Error(f"cannot read s3://{bucket}/{obj.key}: {describe(exc)}") from None
        except BotoCoreError as exc:
            raise S3Error(f"cannot read s3://{bucket}/{obj.key}: {describe(exc)}") from None


class _RangeReader(io.RawIOBase):
    def __init__(self, store: S3Store, bucket: str, obj: ObjectInfo) -> None:
        self.store, self.bucket, self.obj, self.position = store, bucket, obj, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.obj.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self.obj.size - self.position)
        if want <= 0:
            return 0
        end = self.position + want - 1
        body = self.store._get(self.bucket, self.obj, f"bytes={self.position}-{end}")["Body"]
        data = body.read()
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)
