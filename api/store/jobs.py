"""Jobs and their outbox events (keyword-only store functions).

Every state change and progress update goes through :func:`transition` or
:func:`record_progress`, which add the matching ``events`` row in the same
session, so the caller's commit writes both or neither. State changes are
compare-and-set on the current state (``UPDATE ... WHERE state = :from``):
two schedulers racing for the same job cannot both start it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, case, func, insert, select, update
from sqlalchemy.orm import Session, make_transient_to_detached

from api.errors import Conflict, NotFound
from api.models import Event, Job, User, utcnow

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL = ("succeeded", "failed", "cancelled")
ALLOWED = {
    "queued": {"running", "cancelled", "failed"},
    "running": {"succeeded", "failed", "cancelled"},
}


def add_event(
    session: Session, *, user: str, type: str, job_id: int | None, payload: dict[str, Any]
) -> Event:
    event = Event(user=user, type=type, job_id=job_id, payload=payload)
    session.add(event)
    return event


_JOBS = Job.__table__
# Built once: statements whose values come as execute() parameters keep one cache key.
_INSERT_JOB = insert(_JOBS).returning(*_JOBS.c)
_SET_OUTPUT_DIR = (update(_JOBS).where(_JOBS.c.id == bindparam("job_id"))
                   .values(output_dir=bindparam("dir")))
_INSERT_EVENT = insert(Event.__table__)
_READ_JOB = select(_JOBS).where(_JOBS.c.id == bindparam("job_id"))


def create_job(
    session: Session,
    *,
    owner: User,
    avi: str,
    avi_version: str,
    params: dict[str, Any],
    cores: int,
    memory_mb: int,
    priority: int = 0,
    pins: dict[str, Any] | None = None,
    rerun_of: int | None = None,
    resources: dict[str, Any] | None = None,
    output_dir: Callable[[int], str] | None = None,
    inputs: dict[str, Any] | None = None,
    lane: str = "spark",
) -> Job:
    """Insert a queued job and its ``job.queued`` event; returns the job, persistent in ``session``.

    Written with Core statements on the session's connection (same transaction), not
    through the unit of work: a flush per row was most of a submission's CPU under load.
    ``output_dir`` maps the new id to the job's folder (the id is known only after the insert).
    """
    values: dict[str, Any] = {
        "owner_id": owner.id, "avi": avi, "avi_version": avi_version, "params": params,
        "cores": cores, "memory_mb": memory_mb, "priority": priority, "pins": pins or {},
        "rerun_of": rerun_of, "resources": resources or {}, "state": "queued",
        "inputs": inputs or {}, "lane": lane,
        "submitted_at": utcnow(),
    }
    connection = session.connection()
    row = dict(connection.execute(_INSERT_JOB, values).one()._mapping)
    if output_dir is not None:
        row["output_dir"] = output_dir(row["id"])
        connection.execute(_SET_OUTPUT_DIR, {"job_id": row["id"], "dir": row["output_dir"]})
    connection.execute(_INSERT_EVENT, {
        "user": owner.name, "type": "job.queued", "job_id": row["id"],
        "payload": {"avi": avi, "version": avi_version, "cores": cores, "memory_mb": memory_mb,
                    "lane": lane},
        "created_at": values["submitted_at"]})
    job = Job(**row)
    make_transient_to_detached(job)  # as if loaded: later changes flush as UPDATEs
    session.add(job)
    return job


def get_job(session: Session, *, job_id: int, owner: User | None = None) -> Job:
    """The job, if it exists and (when ``owner`` is given) belongs to them."""
    job = session.get(Job, job_id)
    if job is None or (owner is not None and job.owner_id != owner.id):
        raise NotFound(f"no job {job_id}")
    return job


def read_job(session: Session, *, job_id: int, owner: User | None = None) -> Row[Any]:
    """A read-only row of the job (columns as attributes), for answering polls.

    A Core select, not an ORM load: polls are most requests, and ORM identity bookkeeping
    is most of the cost of a one-row read. Same rules as :func:`get_job`.
    """
    row = session.connection().execute(_READ_JOB, {"job_id": job_id}).first()
    if row is None or (owner is not None and row.owner_id != owner.id):
        raise NotFound(f"no job {job_id}")
    return row


def list_jobs(
    session: Session,
    *,
    owner: User | None,
    state: str | None = None,
    avi: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Row[Any]], int]:
    """A page of jobs (newest first) and the total count matching the filters.

    Read-only Core rows, like :func:`read_job` (what the session has flushed is seen).
    """
    conditions = []
    if owner is not None:
        conditions.append(_JOBS.c.owner_id == owner.id)
    if state is not None:
        conditions.append(_JOBS.c.state == state)
    if avi is not None:
        conditions.append(_JOBS.c.avi == avi)
    connection = session.connection()
    count = connection.execute(select(func.count()).select_from(_JOBS).where(*conditions)).scalar()
    page = connection.execute(select(_JOBS).where(*conditions).order_by(_JOBS.c.id.desc())
                              .limit(limit).offset(offset))
    return list(page), count or 0


def transition(
    session: Session, *, job: Job, to: str, reason: str | None = None, **fields: Any
) -> bool:
    """Move ``job`` to state ``to`` if it is still in the state it was read in.

    Returns False (and changes nothing) when another actor changed the state
    first; raises :class:`Conflict` for a move the state machine forbids.
    """
    current = job.state
    if to not in ALLOWED.get(current, set()):
        raise Conflict(f"job {job.id} is {current}; it cannot become {to}")
    now = utcnow()
    values: dict[str, Any] = {"state": to, **fields}
    if reason is not None:
        values["reason"] = reason
    if to == "running":
        values["started_at"] = now
    if to in FINAL:
        values["finished_at"] = now
    result = session.execute(
        update(Job).where(Job.id == job.id, Job.state == current).values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.refresh(job)
        return False
    for key, value in values.items():
        setattr(job, key, value)
    owner = session.get(User, job.owner_id)
    payload: dict[str, Any] = {"from": current, "to": to}
    if reason:
        payload["reason"] = reason
    add_event(session, user=owner.name if owner else "?", type=f"job.{to}", job_id=job.id,
              payload=payload)
    return True


def record_progress(
    session: Session,
    *,
    job: Job,
    owner_name: str,
    tasks_done: int,
    tasks_total: int,
    fraction: float,
    message: str,
) -> None:
    job.tasks_done, job.tasks_total = tasks_done, tasks_total
    job.progress, job.progress_message = fraction, message
    add_event(session, user=owner_name, type="job.progress", job_id=job.id,
              payload={"tasks_done": tasks_done, "tasks_total": tasks_total,
                       "fraction": fraction, "message": message})


def jobs_in_state(session: Session, *, state: str) -> list[tuple[Job, User]]:
    rows = session.execute(
        select(Job, User).join(User, User.id == Job.owner_id).where(Job.state == state)
        .order_by(Job.id)
    )
    return [(job, user) for job, user in rows]


def job_and_owner(session: Session, *, job_id: int) -> tuple[Job, User] | None:
    """A job with its owner (the dispatcher's view: no ownership check), or None."""
    row = session.execute(
        select(Job, User).join(User, User.id == Job.owner_id).where(Job.id == job_id)
    ).first()
    return None if row is None else (row[0], row[1])


def state_of(session: Session, *, job_id: int) -> str | None:
    """The job's state as the store has it now (None: no such job)."""
    job = session.get(Job, job_id)
    return None if job is None else job.state


def record_driver(session: Session, *, job: Job, pid: int | None, start: str | None) -> None:
    """Remember what the backend started for ``job`` (found again after a restart)."""
    job.driver_pid, job.driver_start = pid, start
    session.flush()


#: What the scheduler weighs of a job: (id, owner_id, cores, memory_mb, priority, lane,
#: backend), one select for :func:`load` and :func:`load_ids`.
_WEIGHED = select(Job.id, Job.owner_id, Job.cores, Job.memory_mb, Job.priority, Job.lane,
                  Job.backend)
#: Ids per IN list: under SQLite's default limit on bound parameters (999).
_IDS_PER_QUERY = 900


def load(session: Session, *, state: str) -> list[Row[Any]]:
    """What the scheduler weighs (:data:`_WEIGHED`) of every job in ``state``, by id."""
    return list(session.execute(_WEIGHED.where(Job.state == state).order_by(Job.id)))


def ids_in_state(session: Session, *, state: str) -> set[int]:
    """The ids of every job in ``state`` (from the (state, owner) index alone)."""
    return set(session.scalars(select(Job.id).where(Job.state == state)))


def load_ids(session: Session, ids: Iterable[int]) -> list[Row[Any]]:
    """What the scheduler weighs of the jobs ``ids``, in chunks the databases' limits on
    bound parameters allow."""
    wanted, rows = sorted(ids), []
    for start in range(0, len(wanted), _IDS_PER_QUERY):
        chunk = wanted[start:start + _IDS_PER_QUERY]
        rows += session.execute(_WEIGHED.where(Job.id.in_(chunk))).all()
    return rows


def count_in_state(session: Session, *, owner: User, state: str) -> int:
    return int(session.scalar(select(func.count()).select_from(Job).where(
        Job.owner_id == owner.id, Job.state == state)) or 0)


def running_totals(session: Session, *, user: User) -> tuple[int, int, int]:
    """(cores, memory_mb, jobs) the user's running jobs hold now."""
    cores, memory_mb, jobs = session.execute(
        select(func.coalesce(func.sum(Job.cores), 0), func.coalesce(func.sum(Job.memory_mb), 0),
               func.count()).where(Job.owner_id == user.id, Job.state == "running")
    ).one()
    return int(cores), int(memory_mb), int(jobs)


def unfinished_params(session: Session) -> list[dict[str, Any]]:
    """The parameters of every job not yet finished (whose inputs must be kept)."""
    return list(session.scalars(select(Job.params).where(Job.state.not_in(FINAL))))


def counts_by_state(session: Session) -> dict[str, int]:
    """How many jobs are in each state (every state named, 0 included)."""
    found = dict(session.execute(select(Job.state, func.count()).group_by(Job.state)).all())
    return {state: int(found.get(state, 0)) for state in STATES}


def load_by_user(session: Session) -> list[tuple[str, int, int, int, int]]:
    """(user, jobs waiting, jobs running, their cores, their memory MB) for every user with
    a job waiting or running, by name."""
    running = Job.state == "running"
    rows = session.execute(
        select(User.name,
               func.sum(case((Job.state == "queued", 1), else_=0)),
               func.sum(case((running, 1), else_=0)),
               func.sum(case((running, Job.cores), else_=0)),
               func.sum(case((running, Job.memory_mb), else_=0)))
        .join(User, User.id == Job.owner_id)
        .where(Job.state.in_(("queued", "running"))).group_by(User.name).order_by(User.name)
    ).all()
    return [(name, *(int(v or 0) for v in values)) for name, *values in rows]


def outbox_lag(session: Session, *, now: datetime | None = None) -> tuple[int, float]:
    """(outbox events not yet published, seconds the oldest of them has waited)."""
    count, oldest = session.execute(
        select(func.count(), func.min(Event.created_at)).where(Event.published_at.is_(None))
    ).one()
    if not count or oldest is None:
        return 0, 0.0
    now = now or utcnow()
    if oldest.tzinfo is None and now.tzinfo is not None:
        now = now.replace(tzinfo=None)
    return int(count), max((now - oldest).total_seconds(), 0.0)


def list_events(
    session: Session, *, user: User | None, after: int = 0, limit: int = 100
) -> list[Event]:
    """Outbox events after id ``after`` (one user's, or all for ``user=None``)."""
    query = select(Event).where(Event.id > after)
    if user is not None:
        query = query.where(Event.user == user.name)
    return list(session.scalars(query.order_by(Event.id).limit(limit)))


def unpublished_events(session: Session, *, limit: int = 500) -> list[Event]:
    """The relay's work list: outbox rows not yet published, oldest first."""
    query = select(Event).where(Event.published_at.is_(None)).order_by(Event.id).limit(limit)
    return list(session.scalars(query))


def mark_published(session: Session, *, event_ids: list[int], when: datetime | None = None) -> None:
    session.execute(
        update(Event).where(Event.id.in_(event_ids)).values(published_at=when or utcnow())
        .execution_options(synchronize_session=False)
    )
