"""The storage under the spaces fails: a full file system (a small tmpfs) is 507 and a
stopped MinIO 503, each with a message, nothing half-written and the quota unchanged."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from testing_utils import new_user

from api.bootstrap import ensure_operator
from api.main import create_app
from config.settings import Settings


def _platform(settings: Settings) -> tuple[TestClient, dict[str, str]]:
    client = TestClient(create_app(settings))
    token = ensure_operator(client.app.state.sessions, settings.data_dir, 1)  # type: ignore[attr-defined]
    assert token is not None
    operator = {"Authorization": f"Bearer {token.read_text().strip()}"}
    return client, new_user(client, operator, "alice")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs where the spaces live (root only: CI and `make test` run as root)."""
    space = tmp_path / "data" / "space"
    space.mkdir(parents=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(space)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield space
    finally:
        subprocess.run(["umount", "-l", str(space)], check=False)


@pytest.mark.slow
def test_a_full_file_system_is_507_and_leaves_nothing(tmp_path: Path, small_disk: Path,
                                                     record_figures) -> None:
    client, alice = _platform(Settings(data_dir=tmp_path / "data"))
    with client:
        assert client.put("/space/files/small.bin", headers=alice,
                          content=b"s" * 1000).status_code == 201
        before = client.get("/space", headers=alice).json()["used_bytes"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: it fills the disk as it streams
            for _ in range(40):
                yield b"x" * 65536

        refused = [client.put("/space/files/big.bin", headers=alice, content=b"y" * (2 << 20)),
                   client.put("/space/files/big.bin", headers=alice, content=chunks())]
        for r in refused:
            assert r.status_code == 507, r.text
            assert "storage is full" in r.json()["detail"]
        files = sorted(p.relative_to(small_disk).as_posix()
                       for p in small_disk.rglob("*") if p.is_file())
        assert files == ["alice/small.bin"]  # no half file, no temporary left
        assert client.get("/space", headers=alice).json()["used_bytes"] == before
        assert client.put("/space/files/after.bin", headers=alice,
                          content=b"a" * 1000).status_code == 201  # room again once it fits
    record_figures({"fault": "user space on a full file system (1 MiB tmpfs)",
                    "bad_uploads": len(refused), "status": 507, "half_written": 0,
                    "quota_changed": 0})


@pytest.mark.slow
def test_minio_stopped_during_an_s3_upload_is_503_and_leaves_nothing(
    tmp_path: Path, devstack, record_figures
) -> None:
    names = ("AVIP_TEST_S3_ENDPOINT", "AVIP_TEST_S3_ACCESS_KEY", "AVIP_TEST_S3_SECRET_KEY",
             "AVIP_TEST_S3_BUCKET")
    if not all(os.environ.get(n) for n in names):
        pytest.skip("no MinIO: AVIP_TEST_S3_* unset (run through `make test`)")
    s3 = {n.removeprefix("AVIP_TEST_").lower(): os.environ[n] for n in names}
    settings = Settings(data_dir=tmp_path / "data", user_space_backend="s3",
                        s3_space_prefix=f"faults-{uuid.uuid4().hex[:10]}", **s3)  # type: ignore[arg-type]
    client, alice = _platform(settings)
    with client:
        assert client.put("/space/files/kept.bin", headers=alice,
                          content=b"k" * 1000).status_code == 201
        before = client.get("/space", headers=alice).json()["used_bytes"]
        stopped = False

        def chunks() -> Iterator[bytes]:
            nonlocal stopped
            for i in range(20):
                if i == 5 and not stopped:
                    devstack("minio", "down")  # mid-upload
                    stopped = True
                yield b"z" * 65536

        try:
            r = client.put("/space/files/cut.bin", headers=alice, content=chunks())
        finally:
            devstack("minio", "up")
        assert r.status_code == 503 and "nothing was written" in r.json()["detail"], r.text
        assert r.headers["retry-after"] == "30"
        listing = client.get("/space", headers=alice).json()
        assert [e["path"] for e in listing["data"]] == ["kept.bin"]
        assert listing["used_bytes"] == before
        assert client.get("/space/files/kept.bin", headers=alice).content == b"k" * 1000
    record_figures({"fault": "MinIO stopped mid-upload to an S3 space", "status": 503,
                    "half_written": 0, "quota_changed": 0})
