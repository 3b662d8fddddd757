# ruff: noqa: E501
"""The in-process token cache never outlives an auth change: every token below
is used first (so it is cached), then changed, and the very next request must
see the change."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from api.auth_cache import TokenCache
from api.models import Token, User, utcnow


def test_demoted_operator_loses_operator_routes_at_once(client: TestClient, operator, make_user) -> None:  # type: ignore[no-untyped-def]
    boss = make_user("boss", roles=["operator"])
    assert client.get("/users", headers=boss).status_code == 200
    assert client.patch("/users/boss", headers=operator, json={"roles": ["scientist"]}).status_code == 200
    assert client.get("/users", headers=boss).status_code == 403
    assert client.get("/users/me", headers=boss).json()["roles"] == ["scientist"]


def test_token_expired_or_revoked_straight_in_the_store_is_401_at_once(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
    alice, bob = make_user("alice"), make_user("bob")
    assert client.get("/jobs", headers=alice).status_code == 200
    assert client.get("/jobs", headers=bob).status_code == 200
    sessions = client.app.state.sessions  # type: ignore[attr-defined]
    with sessions() as s:
        alice_id = s.query(User).filter_by(name="alice").one().id
        bob_id = s.query(User).filter_by(name="bob").one().id
        s.query(Token).filter_by(user_id=alice_id).one().expires_at = utcnow() - timedelta(seconds=1)
        s.query(Token).filter_by(user_id=bob_id).one().revoked_at = utcnow()
        s.commit()
    assert client.get("/jobs", headers=alice).status_code == 401
    assert client.get("/jobs", headers=bob).status_code == 401


def test_a_lookup_that_read_before_a_change_does_not_cache_its_stale_answer() -> None:
    cache = TokenCache(ttl_s=60)
    user = User(id=1, name="alice", roles=["scientist"], groups=[], disabled=False)
    before = cache.generation  # a request starts reading the store...
    cache.clear()  # ...an operator's revocation commits meanwhile
    cache.put("h", user, None, before)
    assert cache.get("h") is None
    cache.put("h", user, None, cache.generation)
    assert cache.get("h") is user


def test_cached_token_still_expires_on_time_and_ttl_zero_disables() -> None:
    user = User(id=1, name="alice", roles=["scientist"], groups=[], disabled=False)
    cache = TokenCache(ttl_s=60)
    cache.put("h", user, utcnow() - timedelta(seconds=1), cache.generation)
    assert cache.get("h") is None
    off = TokenCache(ttl_s=0)
    off.put("h", user, None, off.generation)
    assert off.get("h") is None
