# ruff: noqa: E501
"""The job store on SQLite and PostgreSQL: migrations, tokens, state machine, outbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from api.db import make_engine, migrate, session_factory
from api.errors import Conflict
from api.models import Base, Event, Token
from api.store import jobs as job_store
from api.store import users as user_store


@pytest.fixture
def sessions(store_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(store_url)
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


def test_migrations_build_exactly_the_models_schema(store_url: str) -> None:
    engine = make_engine(store_url)
    migrate(engine)
    migrate(engine)  # idempotent
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_tokens_are_stored_hashed_and_expire_or_revoke(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions() as s:
        user = user_store.create_user(s, name="alice", roles=["scientist"])
        token, secret = user_store.issue_token(s, user=user, ttl=timedelta(days=1))
        s.commit()
        stored = s.scalar(select(Token.token_hash))
        assert secret not in stored and len(stored) == 64
        assert user_store.user_for_token(s, secret=secret).name == "alice"
        assert user_store.user_for_token(s, secret=secret + "x") is None
        later = token.expires_at + timedelta(seconds=1)
        assert user_store.user_for_token(s, secret=secret, now=later) is None
        user_store.revoke_token(s, token_id=token.id)
        s.commit()
        assert user_store.user_for_token(s, secret=secret) is None


def test_state_change_and_its_event_commit_together_or_not_at_all(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions() as s:
        user = user_store.create_user(s, name="bob", roles=["scientist"])
        job = job_store.create_job(s, owner=user, avi="a", avi_version="1", params={}, cores=1,
                                   memory_mb=512)
        s.commit()
        job_id = job.id
    with sessions() as s:
        job = job_store.get_job(s, job_id=job_id)
        assert job_store.transition(s, job=job, to="running")
        s.rollback()  # e.g. the launch was aborted before commit
    with sessions() as s:
        assert job_store.get_job(s, job_id=job_id).state == "queued"
        assert [e.type for e in s.scalars(select(Event).order_by(Event.id))] == ["job.queued"]
        job = job_store.get_job(s, job_id=job_id)
        assert job_store.transition(s, job=job, to="running")
        s.commit()
        types = [(e.type, e.published_at) for e in s.scalars(select(Event).order_by(Event.id))]
        assert types == [("job.queued", None), ("job.running", None)]


def test_compare_and_set_lets_only_one_actor_start_a_job(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions() as s:
        user = user_store.create_user(s, name="carol", roles=["scientist"])
        job_id = job_store.create_job(s, owner=user, avi="a", avi_version="1", params={},
                                      cores=1, memory_mb=512).id
        s.commit()
    first, second = sessions(), sessions()
    a = job_store.get_job(first, job_id=job_id)
    b = job_store.get_job(second, job_id=job_id)  # both read "queued"
    assert job_store.transition(first, job=a, to="running")
    first.commit()
    assert not job_store.transition(second, job=b, to="running")
    second.commit()
    first.close(), second.close()
    with sessions() as s:
        running = [e for e in s.scalars(select(Event)) if e.type == "job.running"]
        assert len(running) == 1
        with pytest.raises(Conflict):
            job_store.transition(s, job=job_store.get_job(s, job_id=job_id), to="queued")


def test_list_filters_and_pages_and_outbox_relay_marks(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions() as s:
        user = user_store.create_user(s, name="dave", roles=["scientist"])
        other = user_store.create_user(s, name="erin", roles=["scientist"])
        for i in range(7):
            job_store.create_job(s, owner=user, avi="a" if i % 2 else "b", avi_version="1",
                                 params={"i": i}, cores=1, memory_mb=512)
        job_store.create_job(s, owner=other, avi="a", avi_version="1", params={}, cores=1,
                             memory_mb=512)
        s.commit()
        page, count = job_store.list_jobs(s, owner=user, avi="a", limit=2, offset=1)
        assert count == 3 and [j.params["i"] for j in page] == [3, 1]
        pending = job_store.unpublished_events(s)
        assert len(pending) == 8
        job_store.mark_published(s, event_ids=[e.id for e in pending[:5]])
        s.commit()
        assert len(job_store.unpublished_events(s)) == 3
        assert len(job_store.list_events(s, user=other)) == 1
