"""The dispatcher keeps the queue between rounds (reading only the ids, and the rows of jobs
it has not seen): after every change — new jobs, jobs cancelled while queued, a job whose
lower id commits after higher ones (concurrent API replicas on PostgreSQL) — its decision
and queue positions equal those of a dispatcher that reads the whole queue afresh."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, update
from sqlalchemy.orm import Session, sessionmaker

from api.db import make_engine, migrate, session_factory
from api.models import Event, Job, User
from api.scheduling.dispatcher import Dispatcher
from api.scheduling.drf import Capacity
from api.store import jobs as job_store
from api.store import users as user_store
from spark_jobs.backends.protocol import JobLaunch, JobRef, PoolLike, Status, Submission, waiting


class NeverStarts:
    """A backend that keeps every job waiting (a fake: only the queue is under test)."""

    name = "local"

    def submit(self, launch: JobLaunch, user: str, pool: PoolLike,
               claim: Callable[[], bool]) -> Submission:
        return waiting("the test keeps it queued")

    def poll(self, ref: JobRef) -> Status:
        return Status("running")

    def cancel(self, ref: JobRef) -> None:
        pass

    def adopt(self, ref: JobRef) -> Status:
        return Status("running")


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    migrate(engine)
    return session_factory(engine)


def _dispatcher(sessions: sessionmaker[Session]) -> Dispatcher:
    return Dispatcher(sessions=sessions, backend=NeverStarts(), capacity=Capacity(4, 8192))


def _queue(sessions: sessionmaker[Session], users: list[User], count: int) -> list[int]:
    with sessions() as session:
        ids = [job_store.create_job(session, owner=users[i % len(users)], avi="cone_search",
                                    avi_version="1.0.0", params={}, cores=1 + i % 3,
                                    memory_mb=512, priority=i % 2,
                                    lane="warm" if i % 4 == 0 else "spark",
                                    output_dir=lambda j: f"/nowhere/{j}").id
               for i in range(count)]
        session.commit()
    return ids


def _same_as_fresh(kept: Dispatcher, sessions: sessionmaker[Session]) -> None:
    kept.tick()
    fresh = _dispatcher(sessions)
    fresh.tick()
    assert kept.positions == fresh.positions
    assert kept.waiting.keys() == fresh.waiting.keys()


def test_the_kept_queue_decides_as_a_fresh_read_would(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        users = [user_store.create_user(session, name=f"user{i}", roles=["scientist"])
                 for i in range(5)]
        session.commit()
        for user in users:
            session.expunge(user)
    kept = _dispatcher(sessions)
    ids = _queue(sessions, users, 40)
    _same_as_fresh(kept, sessions)
    assert len(kept.positions) == 40

    with sessions() as session:  # cancelled while queued, through the API's store calls
        session.execute(update(Job).where(Job.id.in_(ids[3:9])).values(state="cancelled"))
        session.commit()
    _same_as_fresh(kept, sessions)
    assert not set(ids[3:9]) & set(kept.positions)

    more = _queue(sessions, users, 7)
    _same_as_fresh(kept, sessions)
    assert set(more) <= set(kept.positions)

    # a job whose (lower) id becomes visible after higher ones did
    late = ids[20]
    with sessions() as session:
        row = session.get(Job, late)
        assert row is not None
        values = {c.name: getattr(row, c.name) for c in Job.__table__.columns}
        session.execute(delete(Event).where(Event.job_id == late))
        session.execute(delete(Job).where(Job.id == late))
        session.commit()
    _same_as_fresh(kept, sessions)
    assert late not in kept.positions
    with sessions() as session:
        session.execute(insert(Job).values(**values))
        session.commit()
    _same_as_fresh(kept, sessions)
    assert late in kept.positions
