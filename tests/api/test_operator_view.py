"""Operators see everything (issue 15): every user's jobs, cancel any of them, and what
each user holds now; a scientist sees and cancels only their own."""

from __future__ import annotations

from fastapi.testclient import TestClient

CONE = {"avi": "cone_count", "params": {"ra_deg": 10.0, "dec_deg": 20.0}}


def test_operators_list_and_cancel_everyones_jobs_and_see_usage(
    client: TestClient, operator, make_user  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    a = [client.post("/jobs", headers=alice, json=CONE).json()["id"] for _ in range(2)]
    b = client.post("/jobs", headers=bob, json=CONE).json()["id"]
    client.app.state.dispatcher.tick()  # type: ignore[attr-defined]

    everyone = client.get("/jobs", headers=operator, params={"everyone": True}).json()
    assert sorted((j["owner"], j["id"]) for j in everyone["data"]) == sorted(
        [("alice", a[0]), ("alice", a[1]), ("bob", b)])
    assert client.get("/jobs", headers=alice, params={"everyone": True}).status_code == 403
    assert [j["id"] for j in client.get("/jobs", headers=alice).json()["data"]] == a[::-1]

    usage = client.get("/users/usage", headers=operator).json()["data"]
    by_user = {row["user"]: row for row in usage}
    assert by_user["alice"]["queued_jobs"] + by_user["alice"]["running_jobs"] == 2
    assert by_user["bob"]["queued_jobs"] + by_user["bob"]["running_jobs"] == 1
    assert sum(r["running_cores"] for r in usage) == sum(r["running_jobs"] for r in usage)
    assert client.get("/users/usage", headers=alice).status_code == 403

    assert client.post(f"/jobs/{b}/cancel", headers=alice).status_code == 404  # not hers
    cancelled = client.post(f"/jobs/{b}/cancel", headers=operator)
    assert cancelled.status_code == 200 and cancelled.json()["owner"] == "bob"
    state = client.get(f"/jobs/{b}", headers=bob).json()
    assert state["state"] == "cancelled" or state["cancel_requested"] is True
    if state["state"] == "cancelled":
        assert state["reason"] == "cancelled by operator operator"
