"""Jobs: submit, list, inspect, cancel, logs, results, re-run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import FileResponse, PlainTextResponse, StreamingResponse
from sqlalchemy import Row
from sqlalchemy.orm import Session

from api import jobs_service
from api.deps import (
    CapacityDep,
    CatalogueDep,
    CurrentUser,
    RowId,
    SessionDep,
    SessionRoute,
    SettingsDep,
    run_store,
)
from api.errors import Invalid
from api.models import Job, User
from api.routes.http_errors import http_errors
from api.schemas import (
    JobCreate,
    JobPublic,
    JobsPublic,
    JobState,
    ProgressPublic,
    ResultFile,
    ResultsPublic,
)
from api.space.published_results import JobResults
from api.space.user_space import StorageUnavailable
from api.store import jobs as job_store
from api.store import users as user_store
from config.settings import Settings
from spark_jobs.backends.protocol import LOG_FILE

MAX_LOG_BYTES = 1 << 20  # one page of a log: the API never reads a whole log at once

router = APIRouter(prefix="/jobs", tags=["jobs"], route_class=SessionRoute)


def job_public(job: Job | Row[Any], owner: str, positions: dict[int, int]) -> JobPublic:
    """The public view of a job row (an ORM ``Job`` or a read-only Core row)."""
    wait = ((job.started_at or job.finished_at) - job.submitted_at).total_seconds() \
        if (job.started_at or job.finished_at) else None
    run = (job.finished_at - job.started_at).total_seconds() \
        if job.started_at and job.finished_at else None
    return JobPublic(
        id=job.id, owner=owner, avi=job.avi, avi_version=job.avi_version,
        params={**job.params, **(job.inputs or {})},  # file inputs as submitted, not paths
        priority=job.priority, state=job.state, reason=job.reason, cores=job.cores,  # type: ignore[arg-type]
        memory_mb=job.memory_mb, lane=job.lane, backend=job.backend,
        progress=ProgressPublic(fraction=job.progress, tasks_done=job.tasks_done,
                                tasks_total=job.tasks_total, message=job.progress_message),
        queue_position=positions.get(job.id) if job.state == "queued" else None,
        cancel_requested=job.cancel_requested, rerun_of=job.rerun_of, pins=job.pins,
        submitted_at=job.submitted_at, started_at=job.started_at, finished_at=job.finished_at,
        wait_seconds=wait, run_seconds=run,
    )


def _positions(request: Request) -> dict[int, int]:
    dispatcher = getattr(request.app.state, "dispatcher", None)
    return dispatcher.positions if dispatcher is not None else {}


def _any_job(session: SessionDep, job_id: int) -> Job:
    """Any user's job (an operator's view)."""
    with http_errors():
        return job_store.get_job(session, job_id=job_id)


def _own_job(session: SessionDep, user: User, job_id: int) -> Job:
    with http_errors():
        return job_store.get_job(session, job_id=job_id, owner=user)


# Submit, poll and list are most of the traffic: async endpoints whose store work runs
# through deps.run_store (on the loop for embedded SQLite, else one worker-thread hop).


@router.post("", response_model=JobPublic, status_code=status.HTTP_201_CREATED)
async def submit_job(
    request: Request, user: CurrentUser, settings: SettingsDep, catalogue: CatalogueDep,
    capacity: CapacityDep, body: JobCreate,
) -> JobPublic:
    """Queue a job. Params are checked against the AVI's schema (the error names the field);
    a job that could never fit your pool or the cluster is refused with the reason."""

    def work(session: Session) -> Job:
        with http_errors():
            job = jobs_service.submit(
                session, user=user, catalogue=catalogue, capacity=capacity,
                space_root=settings.space_root, avi_name=body.avi, version=body.version,
                params=body.params, priority=body.priority, settings=settings,
            )
        session.commit()
        return job

    # with spaces on S3 a submission may copy its inputs down: off the event loop
    job = await run_store(request, work, writes=True,
                          slow=settings.user_space_backend == "s3")
    request.app.state.dispatcher.wake()  # the scheduler of this process, if it runs one
    return job_public(job, user.name, _positions(request))


@router.get("", response_model=JobsPublic)
async def list_jobs(
    request: Request, user: CurrentUser,
    state: JobState | None = None,
    avi: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
    everyone: Annotated[bool, Query(description="Every user's jobs (operators only).")] = False,
) -> JobsPublic:
    """Your jobs, newest first; with ``everyone``, an operator sees every user's."""
    if everyone and "operator" not in user.roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "everyone=true is for operators")

    def work(session: Session) -> tuple[list[Row[Any]], int, dict[int, str]]:
        jobs, count = job_store.list_jobs(session, owner=None if everyone else user,
                                          state=state, avi=avi, limit=limit, offset=offset)
        names = ({u.id: u.name for u in user_store.list_users(session)} if everyone
                 else {user.id: user.name})
        return jobs, count, names

    jobs, count, names = await run_store(request, work)
    positions = _positions(request)
    return JobsPublic(data=[job_public(j, names[j.owner_id], positions) for j in jobs],
                      count=count)


@router.get("/{job_id}", response_model=JobPublic)
async def read_job(request: Request, user: CurrentUser, job_id: RowId) -> JobPublic:
    def work(session: Session) -> Row[Any]:
        with http_errors():
            return job_store.read_job(session, job_id=job_id, owner=user)

    return job_public(await run_store(request, work), user.name, _positions(request))


@router.post("/{job_id}/cancel", response_model=JobPublic)
def cancel_job(
    request: Request, session: SessionDep, user: CurrentUser, job_id: RowId
) -> JobPublic:
    """A queued job is cancelled at once; a running one when the scheduler stops its driver.
    An operator may cancel anyone's job."""
    operator = "operator" in user.roles
    job = _any_job(session, job_id) if operator else _own_job(session, user, job_id)
    by = "its owner" if job.owner_id == user.id else f"operator {user.name}"
    wake = False
    with http_errors():
        if job.state == "queued":
            if not job_store.transition(session, job=job, to="cancelled",
                                        reason=f"cancelled by {by}"):
                job = _any_job(session, job_id) if operator else _own_job(session, user, job_id)
        if job.state == "running":
            wake = not job.cancel_requested  # asked once: later asks add no round
            job.cancel_requested = True
        elif job.state != "cancelled":
            job_store.transition(session, job=job, to="cancelled")  # raises Conflict
    session.commit()
    if job.cancel_requested and wake:
        request.app.state.dispatcher.wake()  # stopped now, not at the next round
    owner = (user if job.owner_id == user.id
             else user_store.user_by_id(session, user_id=job.owner_id))
    return job_public(job, owner.name if owner else "?", _positions(request))


@router.get("/{job_id}/logs", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {}}}})
def job_logs(
    session: SessionDep, user: CurrentUser, job_id: RowId,
    offset: Annotated[int, Query(ge=0, le=2**62, description="Skip this many bytes.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LOG_BYTES,
                                description="Return at most this many bytes.")] = MAX_LOG_BYTES,
) -> PlainTextResponse:
    """The driver's log (Spark and runner output), then the runner's error.txt if any:
    ``limit`` bytes from ``offset``; ``X-Log-Bytes`` says how many there are in all, so a
    reader follows a long log page by page."""
    job = _own_job(session, user, job_id)
    folder = Path(job.output_dir)
    files = [folder / name for name in (LOG_FILE, "error.txt") if (folder / name).is_file()]
    total = sum(f.stat().st_size for f in files)
    chunks, skip, left = [], offset, limit
    for file in files:
        size = file.stat().st_size
        if skip >= size:
            skip -= size
            continue
        with file.open("rb") as handle:
            handle.seek(skip)
            chunks.append(handle.read(left))
        left -= len(chunks[-1])
        skip = 0
        if left <= 0:
            break
    text = b"".join(chunks).decode("utf-8", errors="replace")
    return PlainTextResponse(text, headers={"X-Log-Bytes": str(total)})


@router.get("/{job_id}/results", response_model=ResultsPublic)
def list_results(session: SessionDep, settings: SettingsDep, user: CurrentUser,
                 job_id: RowId) -> ResultsPublic:
    job = _own_job(session, user, job_id)
    with http_errors(), _storage_errors():
        rows = _results(settings, session, job).list()
    return ResultsPublic(data=[ResultFile(path=p, size=s, formats=f) for p, s, f in rows],
                         count=len(rows))


@router.get("/{job_id}/results/{path:path}", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}})
def download_result(
    session: SessionDep, settings: SettingsDep, user: CurrentUser, job_id: RowId, path: str,
    format: Annotated[str | None, Query(pattern="^(parquet|csv|votable|fits)$")] = None,
) -> Response:
    """One result file; tables convert with ?format=parquet|csv|votable|fits."""
    job = _own_job(session, user, job_id)
    return serve_result(_results(settings, session, job), path, format)


def _results(settings: Settings, session: Session, job: Job) -> JobResults:
    owner = session.get(User, job.owner_id)
    assert owner is not None  # the foreign key
    return JobResults(settings, owner.name, job.id, Path(job.output_dir))


@contextmanager
def _storage_errors() -> Iterator[None]:
    """The storage failing (503, try again) or a result that is no readable table (422),
    as the client's to read, never a 500."""
    import pyarrow as pa

    not_a_table = Invalid("this result cannot be read as a table; download it without "
                          "?format=", field="format")  # the reader's message names server paths
    try:
        yield
    except (pa.ArrowInvalid, pa.ArrowTypeError, IsADirectoryError):
        raise not_a_table from None
    except OSError as error:
        if "is a directory" in str(error):  # pyarrow's word for a Spark-written CSV folder
            raise not_a_table from None
        raise StorageUnavailable("the storage holding the results did not answer; try "
                                 "again in a minute") from None


def serve_result(results: JobResults, path: str, fmt: str | None) -> Response:
    """A result as it is (streamed), or converted with ``fmt``, wherever it is kept."""
    with http_errors(), _storage_errors():
        local = results.local_file(path)
        if fmt is None and local is not None and local.is_file():
            return FileResponse(local, filename=local.name)
        published = results.open_published(path) if fmt is None and local is None else None
        if published is not None:
            handle, name = published

            def chunks() -> Iterator[bytes]:
                with handle:
                    while block := handle.read(1 << 16):
                        yield block

            return StreamingResponse(chunks(), media_type="application/octet-stream",
                                     headers={"Content-Disposition":
                                              f'attachment; filename="{name}"'})
        data, media_type, name = results.convert(path, fmt or "parquet")
    return Response(data, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.post("/{job_id}/rerun", response_model=JobPublic, status_code=status.HTTP_201_CREATED)
def rerun_job(
    request: Request, session: SessionDep, user: CurrentUser, settings: SettingsDep,
    catalogue: CatalogueDep, capacity: CapacityDep, job_id: RowId,
) -> JobPublic:
    """Queue the same AVI version and params against the same table versions (provenance)."""
    job = _own_job(session, user, job_id)
    with http_errors():
        new = jobs_service.rerun(session, user=user, job=job, catalogue=catalogue,
                                 capacity=capacity, space_root=settings.space_root,
                                 settings=settings)
    session.commit()
    return job_public(new, user.name, _positions(request))
