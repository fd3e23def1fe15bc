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


def assumed_role(local_s3, monkeypatch):  # type: ignore[no-untyped-def]
    """A resource that reads through a role assumed at the local server's STS."""
    from dw_pipelines.resources.s3 import S3Resource

    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", local_s3.endpoint_url)
    return S3Resource(
        endpoint_url=local_s3.endpoint_url,
        access_key_id=local_s3.access_key_id,
        secret_access_key=local_s3.secret_access_key,
        role_arn=local_s3.role_arn,
        region="us-east-1",
        path_style=True,
    )


def test_with_a_role_the_resource_reads_with_the_roles_credentials(
    local_s3, bucket, monkeypatch
) -> None:
    local_s3.client().put_object(Bucket=bucket, Key="blob", Body=b"x")
    resource = assumed_role(local_s3, monkeypatch)

    with resource.open() as store:
        assert [o.key for o in store.list(bucket, "")] == ["blob"]
    credentials = resource.session().get_credentials()
    assert credentials.method == "assume-role"
    assert credentials.get_frozen_credentials().access_key != local_s3.access_key_id


def test_assumed_role_credentials_are_renewed_before_they_expire(
    local_s3, bucket, monkeypatch
) -> None:
    local_s3.client().put_object(Bucket=bucket, Key="blob", Body=b"x")
    resource = assumed_role(local_s3, monkeypatch)
    session = resource.session()
    credentials = session.get_credentials()  # the object the session's clients sign with
    store = S3Store(session.client("s3", endpoint_url=local_s3.endpoint_url))

    first = credentials.get_frozen_credentials()
    # The local STS issues 15-minute sessions: already inside botocore's refresh window.
    assert credentials.refresh_needed()
    renewed = credentials.get_frozen_credentials()

    assert renewed.access_key != first.access_key
    assert [o.key for o in store.list(bucket, "")] == ["blob"]
