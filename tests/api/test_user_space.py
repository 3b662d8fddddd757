# ruff: noqa: E501
"""User space: confinement (.., absolute paths, symlinks), byte quota with no partial
file, read-only job results, sharing with a user or a group, shared files as inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.user_space import (
    LocalDirectoryBackend,
    PathRefused,
    QuotaExceeded,
    UserSpace,
    normalize,
)


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
    space = UserSpace(LocalDirectoryBackend(root), quota_bytes=10_000)
    for path in ("link.txt", "d/up/outside.txt"):
        with pytest.raises(PathRefused):
            space.open_read(path)
    with pytest.raises(PathRefused):
        with space.upload("d/up/new.txt") as sink:
            sink.write(b"x")
    assert not (tmp_path / "new.txt").exists()
    assert [e.path for e in space.list("")] == ["d"]  # links are not listed


def test_quota_refusal_leaves_no_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    space = UserSpace(LocalDirectoryBackend(tmp_path / "u"), quota_bytes=100)
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
    files = sorted(p.relative_to(tmp_path / "u").as_posix() for p in (tmp_path / "u").rglob("*")
                   if p.is_file())
    assert files == ["a.bin"] and (tmp_path / "u" / "a.bin").read_bytes() == b"3" * 100


def test_api_upload_over_quota_is_413_and_leaves_nothing(client: TestClient, operator, make_user) -> None:  # type: ignore[no-untyped-def]
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
    root = Path(client.app.state.settings.space_root) / "alice"  # type: ignore[attr-defined]
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == ["a.txt"]
    listing = client.get("/space", headers=alice, params={"path": "data"}).json()
    assert listing["used_bytes"] == 600 and listing["quota_bytes"] == 1000


def test_api_path_tricks_are_refused(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
    alice, bob = make_user("alice"), make_user("bob")
    assert client.put("/space/files/mine.txt", headers=bob, content=b"bob's").status_code == 201
    root = Path(client.app.state.settings.space_root)  # type: ignore[attr-defined]
    (root / "alice").mkdir(parents=True, exist_ok=True)
    os.symlink(root / "bob", root / "alice" / "bobs")  # planted link into bob's space
    for path in ["..%2Fbob%2Fmine.txt", "%2E%2E/bob/mine.txt", "bobs/mine.txt", "%2Fetc%2Fpasswd"]:
        r = client.get(f"/space/files/{path}", headers=alice)
        assert r.status_code in (404, 422), (path, r.status_code)
        assert b"bob's" not in r.content
    assert client.get("/space", headers=alice, params={"path": "../bob"}).status_code == 422
    r = client.put("/space/files/jobs/1/result/x", headers=alice, content=b"x")
    assert r.status_code == 422 and "read-only" in r.json()["detail"]


def test_sharing_with_user_and_group_and_as_avi_input(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
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
    # a shared file is an AVI input through space://shared/ID/PATH
    r = client.post("/jobs", headers=bob, json={"avi": "cone_count", "params": {
        "ra_deg": 1, "dec_deg": 2, "input_file": f"space://shared/{g}/stars.csv"}})
    assert r.status_code == 201
    assert r.json()["params"]["input_file"].endswith("/alice/cat/stars.csv")
    r = client.post("/jobs", headers=carol, json={"avi": "cone_count", "params": {
        "ra_deg": 1, "dec_deg": 2, "input_file": f"space://shared/{g}/stars.csv"}})
    assert r.status_code == 422 and "input_file" in str(r.json())
    alice_file = str(Path(client.app.state.settings.space_root) / "alice" / "cat" / "more.csv")  # type: ignore[attr-defined]
    r = client.post("/jobs", headers=carol, json={"avi": "cone_count", "params": {
        "ra_deg": 1, "dec_deg": 2, "input_file": alice_file}})
    assert r.status_code == 422 and "another user's space" in str(r.json())
    assert client.delete(f"/shares/{g}", headers=alice).status_code == 204
    assert client.get(f"/shares/received/{g}/files", headers=bob).status_code == 404
