"""A job's file inputs, tried as a hostile user would (issue 14, defects 1 and 2).

Only an AVI's file parameters (``UserFile``) read files, and only files of the caller's
space or shared with them now: never a path resolved against the service's working
directory, never another user's file, and a rerun is checked like a new submission.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi.testclient import TestClient

CONE = {"ra_deg": 10.0, "dec_deg": 20.0}


def _space(client: TestClient, user: str) -> Path:
    return Path(client.app.state.settings.space_root) / user  # type: ignore[attr-defined]


def _submit(client: TestClient, headers: dict[str, str], **params: object):  # type: ignore[no-untyped-def]
    return client.post("/jobs", headers=headers, json={"avi": "cone_count",
                                                       "params": {**CONE, **params}})


def _job_count(client: TestClient, headers: dict[str, str]) -> int:
    return client.get("/jobs", headers=headers).json()["count"]


def test_a_path_relative_to_the_service_never_reaches_another_users_file(
    client: TestClient, make_user  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    assert client.put("/space/files/private/secret.csv", headers=bob,
                      content=b"ra,dec\n1,2\n").status_code == 201
    secret = _space(client, "bob") / "private" / "secret.csv"
    assert secret.is_file()
    from_cwd = os.path.relpath(secret, Path.cwd())  # the reproduction: relative to the API
    for value in (from_cwd, str(secret), f"file://{secret}", "~bob/private/secret.csv",
                  "space://me/../bob/private/secret.csv", "../bob/private/secret.csv",
                  "space://bob/private/secret.csv", "space://shared/x/secret.csv"):
        r = _submit(client, alice, input_file=value)
        assert r.status_code == 422, (value, r.text)
        assert "params.input_file" in r.text, (value, r.text)
    assert _job_count(client, alice) == 0  # nothing was queued, nothing stored


def test_no_file_exists_oracle_outside_the_callers_space(
    client: TestClient, make_user  # type: ignore[no-untyped-def]
) -> None:
    alice = make_user("alice")
    there, nowhere = "/etc/passwd", "/etc/no-such-file-anywhere"
    assert Path(there).exists() and not Path(nowhere).exists()
    answers = [_submit(client, alice, input_file=v) for v in (there, nowhere)]
    assert [r.status_code for r in answers] == [422, 422]
    same = [r.text.replace(v, "X") for r, v in zip(answers, (there, nowhere), strict=True)]
    assert same[0] == same[1]  # the same answer whether the file exists or not
    assert "does not exist" not in same[0]


def test_own_files_by_space_reference_or_relative_path(
    client: TestClient, make_user  # type: ignore[no-untyped-def]
) -> None:
    alice = make_user("alice")
    assert client.put("/space/files/data/t.csv", headers=alice,
                      content=b"ra,dec\n1,2\n").status_code == 201
    for value in ("space://me/data/t.csv", "data/t.csv", "data//t.csv"):
        r = _submit(client, alice, input_file=value)
        assert r.status_code == 201, (value, r.text)
        assert r.json()["params"]["input_file"] == value  # shown as submitted, not as a path
    r = _submit(client, alice, input_file="data/none.csv")
    assert r.status_code == 422 and "does not exist" in r.text


def test_a_path_in_a_parameter_that_is_not_a_file_is_refused(
    client: TestClient, make_user  # type: ignore[no-untyped-def]
) -> None:
    """cone_count's ``input_file`` is its only file parameter: a path-like value anywhere
    else is refused (an AVI that forgot to declare a file cannot be pointed at one)."""
    alice = make_user("alice")
    r = client.post("/jobs", headers=alice,
                    json={"avi": "huge", "params": {"cores": "/etc/passwd"}})
    assert r.status_code == 422 and "params.cores" in r.text and "not a file parameter" in r.text


def test_a_rerun_checks_access_like_a_new_submission(
    client: TestClient, make_user  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    client.put("/space/files/cat/stars.csv", headers=bob, content=b"ra,dec\n1,2\n")
    share = client.post("/shares", headers=bob, json={"path": "cat/stars.csv", "user": "alice"})
    assert share.status_code == 201
    ref = f"space://shared/{share.json()['id']}/"
    job = _submit(client, alice, input_file=ref)
    assert job.status_code == 201, job.text
    again = client.post(f"/jobs/{job.json()['id']}/rerun", headers=alice)
    assert again.status_code == 201 and again.json()["params"]["input_file"] == ref

    assert client.delete(f"/shares/{share.json()['id']}", headers=bob).status_code == 204
    before = _job_count(client, alice)
    revoked = client.post(f"/jobs/{job.json()['id']}/rerun", headers=alice)
    assert revoked.status_code == 422, revoked.text
    assert "params.input_file" in revoked.text and "share" in revoked.text
    assert _job_count(client, alice) == before
    # and bob cannot rerun alice's job at all (it is not his: 404, as if it did not exist)
    assert client.post(f"/jobs/{job.json()['id']}/rerun", headers=bob).status_code == 404
