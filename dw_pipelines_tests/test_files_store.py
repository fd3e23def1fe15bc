"""The S3 store reads exactly one version of an object, whole or in parallel parts."""

from __future__ import annotations

import os
import tempfile

import pytest

from dw_pipelines.sync.files.store import ObjectChanged, S3Store


def only_object(store: S3Store, bucket: str):  # type: ignore[no-untyped-def]
    [obj] = list(store.list(bucket, ""))
    return obj


def test_a_download_in_parallel_parts_is_byte_exact(local_s3, bucket) -> None:
    body = os.urandom(10_000)
    local_s3.client().put_object(Bucket=bucket, Key="blob", Body=body)
    store = S3Store(local_s3.client(), part_bytes=999)
    with tempfile.TemporaryFile() as local:
        store.download(bucket, only_object(store, bucket), local)  # type: ignore[arg-type]
        local.seek(0)
        assert local.read() == body


def test_an_object_rewritten_after_listing_is_not_read(local_s3, bucket) -> None:
    client = local_s3.client()
    client.put_object(Bucket=bucket, Key="blob", Body=b"first version")
    store = S3Store(client, part_bytes=4)
    listed = only_object(store, bucket)
    client.put_object(Bucket=bucket, Key="blob", Body=b"second version")

    with tempfile.TemporaryFile() as local, pytest.raises(ObjectChanged):
        store.download(bucket, listed, local)  # type: ignore[arg-type]
    with pytest.raises(ObjectChanged):
        store.open(bucket, listed)


def test_without_keys_the_resource_uses_boto3s_default_chain(local_s3, bucket, monkeypatch) -> None:
    from dw_pipelines.resources.s3 import S3Resource

    local_s3.client().put_object(Bucket=bucket, Key="blob", Body=b"x")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", local_s3.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", local_s3.secret_access_key)
    resource = S3Resource(endpoint_url=local_s3.endpoint_url, region="us-east-1", path_style=True)
    with resource.open() as store:
        assert [o.key for o in store.list(bucket, "")] == ["blob"]
