# ruff: noqa: E501
"""Tokens, roles and ownership: 401 without a valid token, 403 for operator-only
routes, and another user's things are 404 (indistinguishable from absent)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient


def test_missing_unknown_and_revoked_tokens_are_401(client: TestClient, operator, make_user) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/jobs").status_code == 401
    assert client.get("/jobs", headers={"Authorization": "Bearer nope"}).status_code == 401
    alice = make_user("alice")
    assert client.get("/jobs", headers=alice).status_code == 200
    tokens = client.get("/users/alice/tokens", headers=operator).json()["data"]
    assert client.delete(f"/users/alice/tokens/{tokens[0]['id']}", headers=operator).status_code == 200
    r = client.get("/jobs", headers=alice)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_expired_token_is_401(client: TestClient, operator, make_user) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from api.models import Token, utcnow

    alice = make_user("alice")
    with client.app.state.sessions() as s:  # type: ignore[attr-defined]
        for token in s.query(Token).all():
            token.expires_at = utcnow() - timedelta(seconds=1)
        s.commit()
    assert client.get("/users/me", headers=alice).status_code == 401


def test_disabled_user_is_401_and_roles_gate_operator_routes(client: TestClient, operator, make_user) -> None:  # type: ignore[no-untyped-def]
    bob = make_user("bob", roles=["developer"])
    assert client.get("/users", headers=bob).status_code == 403
    assert client.post("/users", headers=bob, json={"name": "x", "roles": ["operator"]}).status_code == 403
    assert client.get("/pools", headers=bob).status_code == 403
    assert client.patch("/users/bob", headers=operator, json={"disabled": True}).status_code == 200
    assert client.get("/users/me", headers=bob).status_code == 401


def test_other_users_jobs_logs_results_and_files_are_404(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
    alice, mallory = make_user("alice"), make_user("mallory")
    job = client.post("/jobs", headers=alice,
                      json={"avi": "cone_count", "params": {"ra_deg": 1, "dec_deg": 2}}).json()
    result_dir = Path(client.app.state.settings.space_root) / "alice" / "jobs" / str(job["id"]) / "result"  # type: ignore[attr-defined]
    result_dir.mkdir(parents=True)
    (result_dir / "stars.csv").write_text("a,b\n1,2\n")
    assert client.put("/space/files/secret.txt", headers=alice, content=b"mine").status_code == 201
    jid = job["id"]
    assert client.get(f"/jobs/{jid}/results/stars.csv", headers=alice).status_code == 200
    for method, url in [
        ("GET", f"/jobs/{jid}"), ("GET", f"/jobs/{jid}/logs"), ("GET", f"/jobs/{jid}/results"),
        ("GET", f"/jobs/{jid}/results/stars.csv"), ("POST", f"/jobs/{jid}/cancel"),
        ("POST", f"/jobs/{jid}/rerun"), ("GET", "/space/files/secret.txt"),
        ("DELETE", "/space/files/secret.txt"),
    ]:
        r = client.request(method, url, headers=mallory)
        assert r.status_code == 404, (method, url, r.status_code)
    assert client.get("/jobs", headers=mallory).json()["count"] == 0
    assert client.get("/events", headers=mallory).json()["count"] == 0
    assert client.get(f"/jobs/{jid}", headers=alice).json()["state"] == "queued"
    assert client.get("/space/files/secret.txt", headers=alice).content == b"mine"
    # sharing with someone else does not open it to mallory
    bob = make_user("bob")
    share = client.post("/shares", headers=alice, json={"job_id": jid, "user": "bob"}).json()
    assert client.get(f"/shares/received/{share['id']}/files/stars.csv", headers=bob).status_code == 200
    assert client.get(f"/shares/received/{share['id']}/files/stars.csv", headers=mallory).status_code == 404
