# ruff: noqa: E501
"""Two users, one hostile (issue 14): schemathesis sends Alice's generated requests to
every operation, and every operation that names a job, share or file is also tried with
Bob's real ids and paths. No answer is a 5xx, and no answer to Alice ever carries Bob's
job ids, paths or file contents."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from testing_utils import fuzz_operations, write_figures

EXAMPLES_PER_OPERATION = 8


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


def test_alice_never_reaches_bobs_things(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
    alice, bob = make_user("alice", groups=["a"]), make_user("bob", groups=["b"])
    secret = f"BOB-SECRET-{uuid.uuid4().hex}"
    name = f"bob-private-{uuid.uuid4().hex[:8]}.csv"
    assert client.put(f"/space/files/{name}", headers=bob, content=f"ra,dec\n1,{secret}\n".encode()).status_code == 201
    job = client.post("/jobs", headers=bob, json={"avi": "cone_count", "params": {
        "ra_deg": 1, "dec_deg": 2, "input_file": name}}).json()
    result = Path(client.app.state.settings.space_root) / "bob" / "jobs" / str(job["id"]) / "result"  # type: ignore[attr-defined]
    result.mkdir(parents=True)
    (result / "t.csv").write_text(f"a,b\n1,{secret}\n")
    (result.parent / "driver.log").write_text(secret)
    share = client.post("/shares", headers=bob, json={"path": name, "group": "b"}).json()
    client.post("/alert-filters", headers=bob, json={"name": "bobs", "where": "ra > 1"})
    mine = client.post("/jobs", headers=alice, json={"avi": "cone_count", "params": {"ra_deg": 1, "dec_deg": 2}}).json()
    markers = [secret, name, "/bob/", '"owner":"bob"', '"bobs"']

    failures: list[str] = []
    bob_values = {"job_id": job["id"], "share_id": share["id"], "path": name, "ref": "bobs",
                  "name": "bob", "user": "bob", "token_id": 1}

    def check(method: str, path: str, status: int, text: str, asked: str) -> None:
        """A 5xx, or one of Bob's markers in the answer that Alice did not send herself
        (a 404 may repeat the path she asked for: that tells her nothing)."""
        if status >= 500:
            failures.append(f"{method} {path} -> {status}: {text[:200]}")
        shown = [m for m in markers if m in text and m.strip('"') not in asked]
        if shown:
            failures.append(f"{method} {path} -> {status} shows Bob's {shown}: {text[:200]}")

    operations, sent = fuzz_operations(
        client.app, {"Authorization": alice["Authorization"]}, EXAMPLES_PER_OPERATION,
        lambda case, response: check(case.method, case.formatted_path, response.status_code,
                                     response.text, f"{case.formatted_path} {case.query} {case.body}"))
    for operation in operations:
        # the same operation aimed at Bob's real things
        names = re.findall(r"{(\w+)(?::path)?}", operation.path)
        if names and all(n in bob_values for n in names):
            path = operation.path
            for n in names:
                path = re.sub(r"{" + n + r"(?::path)?}", str(bob_values[n]), path)
            response = client.request(operation.method.upper(), path, headers=alice,
                                      json={} if operation.method.upper() in ("POST", "PUT", "PATCH") else None)
            sent += 1
            check(operation.method.upper(), path, response.status_code, response.text, path)
            if operation.method.upper() == "GET" and "/users/" not in path:
                assert response.status_code in (403, 404, 422), (path, response.status_code, response.text[:200])
    # Bob's things are all still there, unchanged
    assert client.get(f"/space/files/{name}", headers=bob).text.endswith(f"{secret}\n")
    assert client.get(f"/jobs/{job['id']}", headers=bob).json()["state"] == "queued"
    assert client.get(f"/jobs/{mine['id']}", headers=alice).status_code == 200
    assert failures == []
    write_figures("two_user_fuzz", {"fault": "schemathesis as Alice, plus Bob's ids and paths",
                                    "requests": sent, "operations": len(operations), "5xx": 0,
                                    "leaks": 0})
