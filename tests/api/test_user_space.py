# ruff: noqa: E501
"""User space: confinement (.., absolute paths, symlinks, key prefixes), byte quota with no
partial file, read-only job results, sharing with a user or a group, shared files as inputs.

Every test that can runs on both backends (``space_backend``): a local directory per
user, and a key prefix per user on the devstack's real S3 server (MinIO). What is
stored is always checked from outside the backend under test (the directory tree, or
a fresh listing of the bucket).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pyarrow import fs as pafs

from api.main import create_app
from api.space.selection import user_space
from api.space.user_space import (
    PathRefused,
    QuotaExceeded,
    StorageBackend,
    UserSpace,
    normalize,
    space_for,
)
from config.settings import Settings

S3_ENV = ("AVIP_TEST_S3_ENDPOINT", "AVIP_TEST_S3_ACCESS_KEY", "AVIP_TEST_S3_SECRET_KEY",
          "AVIP_TEST_S3_BUCKET")


def s3_settings() -> dict[str, str]:
    """AVIP s3_* settings for the devstack MinIO, or a skip saying how to get one."""
    missing = [name for name in S3_ENV if not os.environ.get(name)]
    if missing:
        pytest.skip(f"no S3 server for the user-space S3 backend ({', '.join(missing)} unset): "
                    "run `devstack/devstack.sh up minio` and source .devstack/env, or `make test`")
    return {name.removeprefix("AVIP_TEST_").lower(): os.environ[name] for name in S3_ENV}


@dataclass
class SpaceBackend:
    """One backend under test: its settings, and what it stores seen from outside."""

    name: str
    settings: dict[str, object]
    files: Callable[[str], dict[str, bytes]]  # user → {path: content}, temporary uploads too

    def backend(self, tmp_path: Path, user: str) -> StorageBackend:
        return self.space(tmp_path, user, 0).backend

    def space(self, tmp_path: Path, user: str, quota_bytes: int) -> UserSpace:
        config = Settings(data_dir=tmp_path / "data", **self.settings)  # type: ignore[arg-type]
        return user_space(config, user, quota_bytes)


@pytest.fixture(params=["local", "s3"])
def space_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SpaceBackend]:
    if request.param == "local":
        root = tmp_path / "data" / "space"

        def local_files(user: str) -> dict[str, bytes]:
            return {p.relative_to(root / user).as_posix(): p.read_bytes()
                    for p in (root / user).rglob("*") if p.is_file()}

        yield SpaceBackend("local", {}, local_files)
        return
    s3 = s3_settings()
    prefix = f"test-space-{uuid.uuid4().hex[:12]}"  # a fresh prefix per test, removed after
    bucket = s3["s3_bucket"]
    endpoint = s3["s3_endpoint"].split("://", 1)
    outside = pafs.S3FileSystem(access_key=s3["s3_access_key"], secret_key=s3["s3_secret_key"],
                                endpoint_override=endpoint[1], scheme=endpoint[0])

    def s3_files(user: str) -> dict[str, bytes]:
        base = f"{bucket}/{prefix}/{user}/"
        infos = outside.get_file_info(pafs.FileSelector(base, recursive=True,
                                                        allow_not_found=True))
        return {i.path.removeprefix(base): outside.open_input_stream(i.path).read()
                for i in infos if i.type == pafs.FileType.File and i.size}

    yield SpaceBackend("s3", {**s3, "user_space_backend": "s3", "s3_space_prefix": prefix},
                       s3_files)
    try:
        outside.delete_dir(f"{bucket}/{prefix}")
    except FileNotFoundError:  # the test wrote nothing there
        pass


@pytest.fixture
def settings(tmp_path: Path, store_url: str, space_backend: SpaceBackend) -> Settings:
    """The API's settings (see conftest.py) with the user space on the backend under test."""
    return Settings(data_dir=tmp_path / "data", database_url=store_url, cluster_cores=8,
                    cluster_memory_mb=16384, **space_backend.settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["../x", "a/../../x", "/etc/passwd", "a\\..\\b", "c:/x", "a\x00b",
                                 ".uploads/x", ""])
def test_bad_paths_are_refused(bad: str) -> None:
    with pytest.raises(PathRefused):
        normalize(bad)


def test_symlinks_are_refused_even_inside(tmp_path: Path) -> None:
    root = tmp_path / "alice"
    (root / "d").mkdir(parents=True)
    (tmp_path / "outside.txt").write_text("secret")
    os.symlink(tmp_path / "outside.txt", root / "link.txt")
    os.symlink(tmp_path, root / "d" / "up")
    space = space_for(root.parent, root.name, 10_000)
    for path in ("link.txt", "d/up/outside.txt"):
        with pytest.raises(PathRefused):
            space.open_read(path)
    with pytest.raises(PathRefused):
        with space.upload("d/up/new.txt") as sink:
            sink.write(b"x")
    assert not (tmp_path / "new.txt").exists()
    assert [e.path for e in space.list("")] == ["d"]  # links are not listed


def test_quota_refusal_leaves_no_file_and_keeps_the_old_one(tmp_path: Path, space_backend: SpaceBackend) -> None:
    space = space_backend.space(tmp_path, "u", 100)
    with space.upload("a.bin") as sink:
        sink.write(b"1" * 60)
    with pytest.raises(QuotaExceeded):
        with space.upload("b.bin") as sink:
            sink.write(b"2" * 30)
            sink.write(b"2" * 30)  # 60 + 60 > 100
    with pytest.raises(QuotaExceeded):
        with space.upload("c.bin", declared_size=41):
            pass
    with space.upload("a.bin") as sink:  # replacing frees the old size first
        sink.write(b"3" * 100)
    assert space_backend.files("u") == {"a.bin": b"3" * 100}
    assert space.used_bytes() == 100


def test_failed_upload_leaves_the_old_file_and_nothing_else(tmp_path: Path, space_backend: SpaceBackend) -> None:
    space = space_backend.space(tmp_path, "u", 10_000)
    with space.upload("d/a.bin") as sink:
        sink.write(b"old")
    with pytest.raises(ConnectionError):
        with space.upload("d/a.bin") as sink:
            sink.write(b"new, half")
            raise ConnectionError("client went away")
    assert space_backend.files("u") == {"d/a.bin": b"old"}
    with pytest.raises(PathRefused, match="folder"):
        with space.upload("d") as sink:
            sink.write(b"x")
    assert [(e.path, e.is_dir) for e in space.list("")] == [("d", True)]
    space.delete("d/a.bin")
    assert space_backend.files("u") == {} and space.used_bytes() == 0


def test_keys_and_paths_stay_inside_the_users_space(tmp_path: Path, space_backend: SpaceBackend) -> None:
    alice = space_backend.space(tmp_path, "alice", 1000)
    al = space_backend.backend(tmp_path, "al")  # a prefix of alice's name
    with alice.upload("secret.txt") as sink:
        sink.write(b"alice's")
    assert al.list("") == [] and al.used_bytes() == 0 and al.stat("secret.txt") is None
    # the backend re-checks paths even if a caller skipped UserSpace's normalize()
    for bad in ("../alice/secret.txt", "ice/../../alice/secret.txt", "/alice/secret.txt", "a//b"):
        with pytest.raises(PathRefused):
            al.open_read(bad)
        with pytest.raises(PathRefused):
            with al.open_write(bad) as handle:
                handle.write(b"x")
    assert space_backend.files("alice") == {"secret.txt": b"alice's"}
    assert space_backend.files("al") == {}


def test_api_upload_over_quota_is_413_and_leaves_nothing(client: TestClient, operator, make_user, space_backend: SpaceBackend) -> None:  # type: ignore[no-untyped-def]
    alice = make_user("alice")
    client.put("/users/alice/pool", headers=operator,
               json={"cores": 1, "memory_mb": 1024, "max_jobs": 1, "space_bytes": 1000})
    assert client.put("/space/files/data/a.txt", headers=alice, content=b"x" * 600).status_code == 201

    def chunks():  # no Content-Length: the quota is enforced while streaming
        for _ in range(10):
            yield b"y" * 100

    r = client.put("/space/files/data/b.txt", headers=alice, content=chunks())
    assert r.status_code == 413 and "quota" in r.json()["detail"]
    r = client.put("/space/files/data/c.txt", headers=alice, content=b"z" * 500)
    assert r.status_code == 413
    assert space_backend.files("alice") == {"data/a.txt": b"x" * 600}
    listing = client.get("/space", headers=alice, params={"path": "data"}).json()
    assert listing["used_bytes"] == 600 and listing["quota_bytes"] == 1000


def test_api_path_tricks_are_refused(client: TestClient, make_user, space_backend: SpaceBackend) -> None:  # type: ignore[no-untyped-def]
    alice, bob = make_user("alice"), make_user("bob")
    assert client.put("/space/files/mine.txt", headers=bob, content=b"bob's").status_code == 201
    if space_backend.name == "local":  # a link planted into bob's space (S3 has no links)
        root = Path(client.app.state.settings.space_root)  # type: ignore[attr-defined]
        (root / "alice").mkdir(parents=True, exist_ok=True)
        os.symlink(root / "bob", root / "alice" / "bobs")
    for path in ["..%2Fbob%2Fmine.txt", "%2E%2E/bob/mine.txt", "bobs/mine.txt", "%2Fetc%2Fpasswd"]:
        r = client.get(f"/space/files/{path}", headers=alice)
        assert r.status_code in (404, 422), (path, r.status_code)
        assert b"bob's" not in r.content
    assert client.get("/space", headers=alice, params={"path": "../bob"}).status_code == 422
    r = client.put("/space/files/jobs/1/result/x", headers=alice, content=b"x")
    assert r.status_code == 422 and "read-only" in r.json()["detail"]
    r = client.put("/space/files/..%2Fbob%2Fmine.txt", headers=alice, content=b"overwritten")
    assert r.status_code in (404, 422)
    assert space_backend.files("bob") == {"mine.txt": b"bob's"} and space_backend.files("alice") == {}


def test_sharing_with_user_and_group_and_as_avi_input(client: TestClient, make_user, space_backend: SpaceBackend) -> None:  # type: ignore[no-untyped-def]
    alice = make_user("alice", groups=["clusters"])
    bob = make_user("bob", groups=["clusters"])
    carol = make_user("carol")
    client.put("/space/files/cat/stars.csv", headers=alice, content=b"ra,dec\n1,2\n")
    client.put("/space/files/cat/more.csv", headers=alice, content=b"ra,dec\n3,4\n")
    to_group = client.post("/shares", headers=alice, json={"path": "cat", "group": "clusters"})
    to_carol = client.post("/shares", headers=alice,
                           json={"path": "cat/stars.csv", "user": "carol"})
    assert to_group.status_code == 201 and to_carol.status_code == 201
    g, c = to_group.json()["id"], to_carol.json()["id"]
    assert client.post("/shares", headers=alice, json={"path": "nope.csv", "user": "bob"}).status_code == 422
    got = client.get("/shares/received", headers=bob).json()
    assert [(s["owner"], s["target"]) for s in got["data"]] == [("alice", "cat")]
    files = client.get(f"/shares/received/{g}/files", headers=bob).json()
    assert sorted(f["path"] for f in files["data"]) == ["more.csv", "stars.csv"]
    assert client.get(f"/shares/received/{g}/files/stars.csv", headers=bob).content.startswith(b"ra,dec")
    assert client.get(f"/shares/received/{c}/files/stars.csv", headers=carol).status_code == 200
    assert client.get(f"/shares/received/{c}/files/more.csv", headers=carol).status_code == 422
    assert client.get(f"/shares/received/{g}/files/stars.csv", headers=carol).status_code == 404
    assert client.get(f"/shares/received/{g}/files/..%2F..%2Falice%2Fx", headers=bob).status_code in (404, 422)
    # read-only: the recipient's space API never reaches alice's files
    assert client.delete("/space/files/cat/stars.csv", headers=bob).status_code == 404
    assert client.put(f"/shares/received/{g}/files/stars.csv", headers=bob, content=b"x").status_code == 405
    assert space_backend.files("alice")["cat/stars.csv"] == b"ra,dec\n1,2\n"
    # a shared file is an AVI input through space://shared/ID/PATH (on S3: a staged copy)
    r = client.post("/jobs", headers=bob, json={"avi": "cone_count", "params": {
        "ra_deg": 1, "dec_deg": 2, "input_file": f"space://shared/{g}/stars.csv"}})
    assert r.status_code == 201
    assert r.json()["params"]["input_file"] == f"space://shared/{g}/stars.csv"  # as submitted
    r = client.post("/jobs", headers=carol, json={"avi": "cone_count", "params": {
        "ra_deg": 1, "dec_deg": 2, "input_file": f"space://shared/{g}/stars.csv"}})
    assert r.status_code == 422 and "input_file" in str(r.json())
    alice_file = str(Path(client.app.state.settings.space_root) / "alice" / "cat" / "more.csv")  # type: ignore[attr-defined]
    r = client.post("/jobs", headers=carol, json={"avi": "cone_count", "params": {
        "ra_deg": 1, "dec_deg": 2, "input_file": alice_file}})
    assert r.status_code == 422 and "is not a file of your space" in str(r.json())
    assert client.delete(f"/shares/{g}", headers=alice).status_code == 204
    assert client.get(f"/shares/received/{g}/files", headers=bob).status_code == 404


def test_s3_space_with_bad_settings_fails_at_start_up_naming_the_setting(tmp_path: Path) -> None:
    s3 = s3_settings()
    wrong = Settings(data_dir=tmp_path, user_space_backend="s3",
                     **{**s3, "s3_secret_key": "not-the-secret"})  # type: ignore[arg-type]
    from config.s3 import S3ConfigError

    with pytest.raises(S3ConfigError, match="AVIP_S3_SECRET_KEY"):
        create_app(wrong)
    with pytest.raises(RuntimeError, match="AVIP_S3_BUCKET"):
        user_space(Settings(data_dir=tmp_path, user_space_backend="s3"), "alice", 10)


def test_overlong_names_are_a_clear_422_not_a_500(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
    """Issue 14: a 300-character file name reached the file system (OSError → 500)."""
    alice = make_user("alice")
    for path in ("a" * 300 + ".csv", "d/" + "é" * 200, "/".join(["d"] * 40) + "/f.csv",
                 "/".join(["x" * 200] * 6)):
        r = client.put(f"/space/files/{path}", headers=alice, content=b"x")
        assert r.status_code == 422, (path[:20], r.status_code, r.text)
        assert "at most" in r.json()["detail"]
    longest = "a" * 236 + ".csv"  # 240 bytes: the longest name a space takes
    assert client.put(f"/space/files/{longest}", headers=alice, content=b"x").status_code == 201
    assert client.get(f"/space/files/{longest}", headers=alice).content == b"x"


def _race(space: UserSpace, declared: bool) -> list[str]:
    """Eight uploads of 60 bytes started together, written in interleaved 10-byte chunks
    (with or without a declared size); what became of each."""
    start, outcomes = threading.Barrier(8), []

    def upload(i: int) -> None:
        start.wait()
        try:
            with space.upload(f"f{i}.bin", declared_size=60 if declared else None) as sink:
                for _ in range(6):
                    sink.write(b"x" * 10)
                    time.sleep(0.01)
            outcomes.append("stored")
        except QuotaExceeded:
            outcomes.append("refused")

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "streamed"])
def test_parallel_uploads_never_exceed_the_quota(tmp_path: Path, space_backend: SpaceBackend,
                                                 declared: bool) -> None:
    """Issue 14 (defect 5): room was computed once per upload, so N parallel uploads could
    hold ~N× the quota. Eight uploads of 60 bytes into a 100-byte quota: what is stored
    never exceeds it. A declared size is claimed whole at the start, so exactly one fits;
    streamed uploads claim as they go, so under this contention any number from none to
    one may be stored (each refused one told so) — never two."""
    space = space_backend.space(tmp_path, "u", 100)
    outcomes = _race(space, declared)
    stored = space_backend.files("u")
    assert sum(len(b) for b in stored.values()) <= 100, stored
    assert len(outcomes) == 8 and outcomes.count("stored") == len(stored)
    assert len(stored) == 1 if declared else len(stored) <= 1
    assert space.used_bytes() == 60 * len(stored)  # no claim left behind
    with space.upload("after.bin") as sink:  # and the space is not wedged
        sink.write(b"y" * (100 - 60 * len(stored)))


def test_an_upload_killed_mid_way_leaves_nothing_that_counts(tmp_path: Path) -> None:
    """Issue 14 (defect 7): SIGKILL during a 5 MB upload left a temporary file that counted
    against the quota for ever. A real process is killed mid-upload: its claim stops
    counting at once, and the next start sweeps its files."""
    root = tmp_path / "data" / "space"
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from api.space.user_space import space_for\n"
        f"upload = space_for(Path({str(root)!r}), 'alice', 10 << 20).begin_upload('big.bin')\n"
        "for _ in range(3):\n"
        "    upload.write(b'x' * (1 << 20))\n"
        "print('written', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             cwd=Path(__file__).resolve().parents[2])
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"written"
        uploads = root / "alice" / ".uploads"
        assert sum(p.stat().st_size for p in uploads.iterdir()) >= 3 << 20  # mid-upload
    finally:
        child.kill()
        child.wait()
    space = space_for(root, "alice", 10 << 20)
    assert space.used_bytes() == 0  # the dead upload's claim no longer counts
    with space.upload("small.bin") as sink:  # and its room is free again
        sink.write(b"y" * (9 << 20))
    create_app(Settings(data_dir=tmp_path / "data"))  # a start sweeps what it left
    assert [p.name for p in uploads.iterdir()] == []
    assert space.used_bytes() == 9 << 20


def test_job_results_count_against_an_s3_space(tmp_path: Path) -> None:
    """Issue 14 (defect 12): with spaces on S3 a job's results (kept locally) did not count."""
    settings = Settings(data_dir=tmp_path / "data", user_space_backend="s3",
                        s3_space_prefix=f"test-results-{uuid.uuid4().hex[:12]}",
                        **s3_settings())  # type: ignore[arg-type]
    space = user_space(settings, "alice", 1000)
    assert space.used_bytes() == 0
    result = settings.space_root / "alice" / "jobs" / "7" / "result"
    result.mkdir(parents=True)
    (result / "table.parquet").write_bytes(b"r" * 700)
    staged = settings.space_root / "alice" / "jobs" / ".inputs" / "abc"
    staged.mkdir(parents=True)
    (staged / "copy.csv").write_bytes(b"c" * 500)  # a staged input copy is not hers
    assert space.used_bytes() == 700
    with pytest.raises(QuotaExceeded):
        with space.upload("big.bin", declared_size=301):
            pass
