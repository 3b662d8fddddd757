"""Async TAP jobs (UWS): every query of the ``tap_jobs`` table, each scoped to its owner."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from api.models import Job, TapJob, User, utcnow

#: Most async TAP jobs one user keeps (older ones must be deleted first).
MAX_JOBS_PER_USER = 1000


def create(session: Session, *, owner: User, query: str, params: dict[str, Any], run_id: str,
           execution_duration_s: int, destruction_days: int) -> TapJob:
    """A PENDING job (not committed); its id is random, so ids say nothing of others'."""
    job = TapJob(id=secrets.token_hex(12), owner_id=owner.id, run_id=run_id, query=query,
                 params=params, phase="PENDING", execution_duration_s=execution_duration_s,
                 destruction_at=utcnow() + timedelta(days=destruction_days))
    session.add(job)
    return job


def count(session: Session, *, owner: User) -> int:
    return len(session.scalars(select(TapJob.id).where(TapJob.owner_id == owner.id)).all())


def get(session: Session, *, owner: User, job_id: str, lock: bool = False) -> TapJob | None:
    """The owner's job, or None (another user's job is as absent as a missing one);
    ``lock``: held until the transaction ends (PostgreSQL; SQLite writes one at a time)."""
    query = select(TapJob).where(TapJob.id == job_id, TapJob.owner_id == owner.id)
    return session.scalars(query.with_for_update() if lock else query).first()


def listing(session: Session, *, owner: User, after: datetime | None = None,
            last: int | None = None) -> list[tuple[TapJob, Job | None]]:
    """The owner's jobs, newest first, each with the platform job running it."""
    query = (select(TapJob, Job).outerjoin(Job, Job.id == TapJob.job_id)
             .where(TapJob.owner_id == owner.id).order_by(TapJob.created_at.desc()))
    if after is not None:
        query = query.where(TapJob.created_at > after)
    if last is not None:
        query = query.limit(last)
    return [(tap, job) for tap, job in session.execute(query).all()]


def platform_job(session: Session, tap: TapJob) -> Job | None:
    return session.get(Job, tap.job_id) if tap.job_id is not None else None


def expired(session: Session, *, owner: User, now: datetime) -> list[TapJob]:
    return list(session.scalars(select(TapJob).where(TapJob.owner_id == owner.id,
                                                     TapJob.destruction_at <= now)).all())


def remove(session: Session, tap: TapJob) -> None:
    session.execute(delete(TapJob).where(TapJob.id == tap.id))
