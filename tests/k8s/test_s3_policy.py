"""Per-user S3 keys (issue 15): a user's jobs read the catalogue and their own space with
keys of their own, scoped by the policy `avip k8s s3-policy` prints — checked against
the devstack's MinIO (a real IAM user with that policy attached through MinIO's admin
API), with the same clients the platform reads through (delta-rs for the catalogue)."""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pytest
from minio import Minio, MinioAdmin
from minio.credentials import StaticProvider
from minio.error import S3Error
from typer.testing import CliRunner

from cli.main import app


@dataclass
class Store:
    endpoint: str
    bucket: str
    root: Minio
    admin: MinioAdmin
    run: str


@pytest.fixture
def store() -> Iterator[Store]:
    names = ("AVIP_TEST_S3_ENDPOINT", "AVIP_TEST_S3_ACCESS_KEY", "AVIP_TEST_S3_SECRET_KEY",
             "AVIP_TEST_S3_BUCKET")
    if not all(os.environ.get(n) for n in names):
        pytest.skip("no MinIO: run through `make test` (the devstack starts one)")
    endpoint = os.environ["AVIP_TEST_S3_ENDPOINT"].removeprefix("http://")
    root_keys = StaticProvider(os.environ["AVIP_TEST_S3_ACCESS_KEY"],
                               os.environ["AVIP_TEST_S3_SECRET_KEY"])
    yield Store(endpoint, os.environ["AVIP_TEST_S3_BUCKET"],
                Minio(endpoint, credentials=root_keys, secure=False),
                MinioAdmin(endpoint=endpoint, credentials=root_keys, secure=False),
                f"policy-{uuid.uuid4().hex[:8]}")


def _job_keys(store: Store, user: str, *flags: str) -> Minio:
    """Create ``user``'s job keys with the policy the CLI prints, as docs/deploy.md does."""
    lakehouse = f"s3a://{store.bucket}/{store.run}/catalogue"
    printed = CliRunner().invoke(app, ["k8s", "s3-policy", user, "--lakehouse", lakehouse,
                                       "--space-prefix", f"{store.run}/space", *flags])
    assert printed.exit_code == 0, printed.output
    name, secret = f"{store.run}-{user}", uuid.uuid4().hex
    store.admin.policy_add(name, policy=json.loads(printed.stdout))
    store.admin.user_add(name, secret)
    store.admin.policy_set(name, user=name)
    return Minio(store.endpoint, credentials=StaticProvider(name, secret), secure=False)


def _put(client: Minio, bucket: str, key: str, data: bytes = b"x") -> None:
    client.put_object(bucket, key, io.BytesIO(data), len(data))


def _denied(action) -> bool:  # type: ignore[no-untyped-def]
    try:
        action()
    except S3Error as error:
        return error.code == "AccessDenied"
    return False


@pytest.mark.slow
def test_a_users_job_keys_reach_the_catalogue_and_their_space_only(store: Store) -> None:
    from deltalake import DeltaTable, write_deltalake

    bucket, run = store.bucket, store.run
    root_options = {"AWS_ENDPOINT_URL": f"http://{store.endpoint}", "AWS_ALLOW_HTTP": "true",
                    "AWS_REGION": "us-east-1", "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
                    "AWS_ACCESS_KEY_ID": os.environ["AVIP_TEST_S3_ACCESS_KEY"],
                    "AWS_SECRET_ACCESS_KEY": os.environ["AVIP_TEST_S3_SECRET_KEY"]}
    catalogue = f"s3://{bucket}/{run}/catalogue/gaia_source"
    stars = pa.table({"source_id": [1, 2, 3], "ra": [10.0, 20.0, 30.0]})
    write_deltalake(catalogue, stars, storage_options=root_options)
    _put(store.root, bucket, f"{run}/space/bob/results.csv", b"bob's")
    _put(store.root, bucket, f"{run}/checkpoints/offsets", b"platform's")

    alice = _job_keys(store, "alice")
    alice_keys = alice._provider.retrieve()  # type: ignore[attr-defined]
    # The catalogue: a Delta read with alice's keys sees the table, at its version.
    alice_options = {**root_options, "AWS_ACCESS_KEY_ID": alice_keys.access_key,
                     "AWS_SECRET_ACCESS_KEY": alice_keys.secret_key}
    assert DeltaTable(catalogue, storage_options=alice_options).to_pyarrow_table() \
        .sort_by("source_id").equals(stars)
    # ...which she cannot change.
    assert _denied(lambda: _put(alice, bucket, f"{run}/catalogue/gaia_source/evil.parquet"))
    # Her own space: write, list, read, delete.
    _put(alice, bucket, f"{run}/space/alice/jobs/1/result/sources.csv", b"alice's")
    listed = [o.object_name for o in alice.list_objects(bucket, f"{run}/space/alice/",
                                                        recursive=True)]
    assert listed == [f"{run}/space/alice/jobs/1/result/sources.csv"]
    assert alice.get_object(bucket, listed[0]).read() == b"alice's"
    alice.remove_object(bucket, listed[0])
    # Bob's space and the platform's files: not read, not listed, not written, not deleted.
    assert _denied(lambda: alice.get_object(bucket, f"{run}/space/bob/results.csv"))
    assert _denied(lambda: list(alice.list_objects(bucket, f"{run}/space/bob/")))
    assert _denied(lambda: list(alice.list_objects(bucket, f"{run}/space/")))
    assert _denied(lambda: _put(alice, bucket, f"{run}/space/bob/results.csv", b"evil"))
    assert _denied(lambda: alice.remove_object(bucket, f"{run}/space/bob/results.csv"))
    assert _denied(lambda: alice.get_object(bucket, f"{run}/checkpoints/offsets"))
    assert _denied(lambda: list(alice.list_objects(bucket, "")))
    assert store.root.get_object(bucket, f"{run}/space/bob/results.csv").read() == b"bob's"
    # A user whose name starts another's lists only their own folder, not "space/al*".
    _put(store.root, bucket, f"{run}/space/alice/secret-name.csv", b"x")
    al = _job_keys(store, "al")
    assert _denied(lambda: list(al.list_objects(bucket, f"{run}/space/al")))
    assert list(al.list_objects(bucket, f"{run}/space/al/")) == []
    # Zeppelin's interpreters' key (--read-only): the catalogue, and no space at all.
    notes = _job_keys(store, "notes", "--read-only")
    some_catalogue_file = next(o.object_name for o in store.root.list_objects(
        bucket, f"{run}/catalogue/", recursive=True))
    assert notes.get_object(bucket, some_catalogue_file).read()
    assert _denied(lambda: _put(notes, bucket, f"{run}/space/notes/x"))
    assert _denied(lambda: _put(notes, bucket, f"{run}/catalogue/gaia_source/x"))
    assert _denied(lambda: notes.get_object(bucket, f"{run}/space/bob/results.csv"))


def test_the_policy_command_refuses_what_is_not_an_s3_catalogue_or_a_user() -> None:
    runner = CliRunner()
    for args in (["alice", "--lakehouse", "/data/lakehouse"],
                 ["alice", "--lakehouse", "s3a:///no-bucket"],
                 ["alice", "--lakehouse", "s3a://bucket"],  # the root: all would be listable
                 ["a/b"], ["*"], ["al?ce"], ["Alice"]):
        result = runner.invoke(app, ["k8s", "s3-policy", *args])
        assert result.exit_code == 2, (args, result.output)
        assert "error" in result.output.lower()
