"""Async TAP at ``/tap/async`` (UWS 1.1): each request a job of its owner's.

A job is kept PENDING in :mod:`api.store.tap_jobs` until ``PHASE=RUN``,
which checks the query and submits the ``adql_query`` AVI: the query waits
in the platform's queue under the owner's pool and fair share (or runs in
the warm lane when small), reports progress and leaves its result in the
owner's space; from then on the UWS phase is the platform job's state.
Another user's job id answers 404, as a missing one does; errors are VOTable
error documents (4xx), never a 500.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from api import jobs_service
from api.deps import run_store
from api.errors import AvipError
from api.models import Job, TapJob, User, utcnow
from api.routes.jobs import _results, serve_result
from api.scheduling.drf import Capacity
from api.space.selection import user_space
from api.space.user_space import SpaceError
from api.store import jobs as job_store
from api.store import tap_jobs as tap_store
from api.store import users as user_store
from api.vo import uws
from api.vo.catalogue import readers_of
from api.vo.requests import (
    Params,
    VOError,
    absolute_url,
    caller,
    error_response,
    first,
    query_of,
    read_params,
    settings_of,
    uploads_of,
)
from config.settings import Settings
from lakehouse.adql import AdqlError, plan
from lakehouse.adql.formats import FORMATS, upload_columns

router = APIRouter(prefix="/tap", tags=["vo"])
UPLOAD_DIR = "tap_uploads"
AVI = "adql_query"


def _own(session: Session, user: User, job_id: str, lock: bool = False) -> TapJob:
    """The caller's job (locked for the transaction when it may change: two PHASE=RUN at
    once start one platform job)."""
    tap = tap_store.get(session, owner=user, job_id=job_id[:64], lock=lock)
    if tap is None:
        raise VOError(404, f"no async job {job_id[:64]!r} of yours (jobs are kept until "
                      "their destruction time)")
    return tap


def _start(request: Request, session: Session, user: User, tap: TapJob) -> None:
    """PHASE=RUN: check the query, then submit it as a platform job; a problem → ERROR."""
    settings = settings_of(request)
    readers = readers_of(request.app.state, settings)
    upload = tap.params.get("upload")
    try:
        columns = {}
        if upload:  # planning needs the upload's column names only; the job reads its rows
            quota = user_store.quota_of(session, user=user)
            with user_space(settings, user.name, quota.space_bytes).open_read(upload) as handle:
                columns = {tap.params["upload_name"]: upload_columns(handle.read())}
        plan(tap.query, readers.sources({}, columns))
        job = jobs_service.submit(
            session, user=user, catalogue=request.app.state.catalogue,
            capacity=Capacity(cores=settings.cluster_cores, memory_mb=settings.cluster_memory_mb),
            space_root=settings.space_root, avi_name=AVI, version=None, settings=settings,
            params={"query": tap.query, "maxrec": tap.params["maxrec"],
                    "format": tap.params["format"], "upload": upload,
                    "upload_name": tap.params.get("upload_name", "t1")})
        tap.job_id, tap.phase = job.id, "QUEUED"
    except (AdqlError, AvipError, ValueError) as err:
        tap.phase, tap.error = "ERROR", str(err)
    except VOError as err:  # the catalogue could not be read: the job says so, not the call
        tap.phase, tap.error = "ERROR", err.message
    session.commit()


def _creating(request: Request, user: User, params: Params, query: str, fmt: str
              ) -> Callable[[Session], tuple[str, bool]]:
    """The store work that creates the job (and runs it, with PHASE=RUN)."""
    settings = settings_of(request)
    maxrec = params.integer("MAXREC") if params.get("MAXREC") else settings.tap_async_max_rows
    maxrec = min(maxrec, settings.tap_async_max_rows)  # type: ignore[type-var]
    upload = first(uploads_of(params))
    duration = min(params.integer("EXECUTIONDURATION") or settings.tap_execution_duration_s,
                   settings.tap_execution_duration_s)

    def work(session: Session) -> tuple[str, bool]:  # in a worker thread (slow=True)
        if upload is not None:
            try:
                upload_columns(upload[1])  # a readable header; the job reads the rows
            except ValueError as err:
                raise VOError(400, f"UPLOAD {upload[0]}: {err}") from None
        if tap_store.count(session, owner=user) >= tap_store.MAX_JOBS_PER_USER:
            raise VOError(429, f"you keep {tap_store.MAX_JOBS_PER_USER} async jobs, the most "
                          "one user may: DELETE some first")
        tap = tap_store.create(session, owner=user, query=query, run_id=(params.get("RUNID")
                               or "")[:64], params={"format": fmt, "maxrec": maxrec},
                               execution_duration_s=duration,
                               destruction_days=settings.tap_destruction_days)
        if upload is not None:
            path = f"{UPLOAD_DIR}/{tap.id}.vot"
            quota = user_store.quota_of(session, user=user)
            with user_space(settings, user.name, quota.space_bytes).upload(path) as handle:
                handle.write(upload[1])
            tap.params = {**tap.params, "upload": path, "upload_name": upload[0]}
        session.commit()
        run = (params.get("PHASE") or "").upper() == "RUN"
        if run:
            _start(request, session, user, tap)
        return tap.id, run

    return work


@router.post("/async", response_class=Response, summary="Create an async TAP job (UWS)")
async def create_async(request: Request) -> Response:
    settings = settings_of(request)
    try:
        user = await caller(request, anonymous_ok=False)
        params = await read_params(request, settings.tap_upload_max_bytes)
        query, fmt = query_of(params)
        work = _creating(request, user, params, query, fmt)
        job_id, run = await run_store(request, work, writes=True, slow=True)
    except VOError as err:
        return error_response(err)
    except AvipError as err:
        return error_response(VOError(413 if "quota" in str(err) else 400, str(err)))
    if run:
        request.app.state.dispatcher.wake()
    return RedirectResponse(absolute_url(request, f"/tap/async/{job_id}"), status_code=303)


@router.get("/async", response_class=Response, summary="Your async TAP jobs (UWS job list)")
async def list_async(request: Request) -> Response:
    try:
        user = await caller(request, anonymous_ok=False)
        params = await read_params(request, 0)
        phases = {p.upper() for p in params.all("PHASE")}
        last = params.integer("LAST", lowest=1)
        after = _moment(params.get("AFTER"), "AFTER") if params.get("AFTER") else None
    except VOError as err:
        return error_response(err)

    def work(session: Session) -> list[tuple[TapJob, Job | None]]:
        _expire(session, settings_of(request), user)
        return tap_store.listing(session, owner=user, after=after, last=last)

    rows = await run_store(request, work, writes=True)
    if phases:
        rows = [(t, j) for t, j in rows if uws.phase_of(t, j) in phases]
    return Response(uws.job_list(rows, user.name, absolute_url(request, "/tap/async")),
                    media_type="text/xml")


def _moment(text: str | None, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat((text or "").strip().replace("Z", "+00:00"))
    except ValueError:
        raise VOError(400, f"{name} must be an ISO 8601 time such as 2026-12-31T00:00:00Z, "
                      f"got {(text or '')[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _expire(session: Session, settings: Settings, user: User) -> None:
    """Jobs past their destruction time go (their platform job is cancelled if active)."""
    for tap in tap_store.expired(session, owner=user, now=utcnow()):
        _remove(session, settings, user, tap)
    session.commit()


def _remove(session: Session, settings: Settings, user: User, tap: TapJob) -> bool:
    """Stop a job, delete its upload from the owner's space, forget it (not committed).
    Whether the dispatcher should look now."""
    wake = _cancel(session, tap)
    upload = tap.params.get("upload")
    if upload:
        quota = user_store.quota_of(session, user=user)
        space = user_space(settings, user.name, quota.space_bytes)
        with contextlib.suppress(FileNotFoundError, SpaceError):
            space.delete(upload)
    tap_store.remove(session, tap)
    return wake


def _cancel(session: Session, tap: TapJob) -> bool:
    """Stop the job's run: pending → ABORTED; queued → cancelled; running → asked to stop.
    Whether the dispatcher should look now."""
    job = tap_store.platform_job(session, tap)
    if job is None:
        if tap.phase == "PENDING":
            tap.phase = "ABORTED"
        return False
    if job.state == "queued":
        job_store.transition(session, job=job, to="cancelled", reason="aborted through UWS")
        return False
    if job.state == "running" and not job.cancel_requested:
        job.cancel_requested = True
        return True
    return False


def _overdue(session: Session, tap: TapJob, job: Job | None) -> bool:
    """UWS executionDuration: a job running longer is aborted when next looked at."""
    if job is None or job.state != "running" or job.started_at is None:
        return False
    if utcnow() - job.started_at <= timedelta(seconds=tap.execution_duration_s):
        return False
    return _cancel(session, tap)


async def _with_job(request: Request, job_id: str, action: Any = None) -> tuple[User, Any]:
    """The caller and ``action(session, user, tap, job)`` on their job (404 otherwise)."""
    user = await caller(request, anonymous_ok=False)
    wake = []

    def work(session: Session) -> Any:
        tap = _own(session, user, job_id, lock=action is not None)
        job = tap_store.platform_job(session, tap)
        if _overdue(session, tap, job):
            wake.append(True)
            session.commit()
        return action(session, user, tap, job) if action else (tap, job)

    found = await run_store(request, work, writes=True, slow=True)
    if wake:
        request.app.state.dispatcher.wake()
    return user, found


def _error_text(tap: TapJob, job: Job | None) -> str | None:
    if job is not None and job.state == "failed":
        return job.reason or "the query failed on Spark"
    if job is not None and job.state == "cancelled":
        return job.reason
    return tap.error


@router.get("/async/{job_id}", response_class=Response, summary="An async TAP job (UWS)")
async def read_async(request: Request, job_id: str) -> Response:
    try:
        user, (tap, job) = await _with_job(request, job_id)
    except VOError as err:
        return error_response(err)
    url = absolute_url(request, f"/tap/async/{tap.id}")
    return Response(uws.job_document(tap, job, user.name, url, _error_text(tap, job)),
                    media_type="text/xml")


@router.delete("/async/{job_id}", response_class=Response, summary="Delete an async TAP job")
async def delete_async(request: Request, job_id: str) -> Response:
    return await _delete(request, job_id)


async def _delete(request: Request, job_id: str) -> Response:
    def action(session: Session, user: User, tap: TapJob, job: Job | None) -> bool:
        wake = _remove(session, settings_of(request), user, tap)
        session.commit()
        return wake

    try:
        _, wake = await _with_job(request, job_id, action)
    except VOError as err:
        return error_response(err)
    if wake:
        request.app.state.dispatcher.wake()
    return RedirectResponse(absolute_url(request, "/tap/async"), status_code=303)


@router.post("/async/{job_id}", response_class=Response, summary="UWS ACTION=DELETE")
async def post_async(request: Request, job_id: str) -> Response:
    try:
        params = await read_params(request, 0)
        if (params.get("ACTION") or "").upper() != "DELETE":
            raise VOError(400, "POST to a job takes ACTION=DELETE; change its phase at "
                          f"/tap/async/{job_id[:64]}/phase")
    except VOError as err:
        return error_response(err)
    return await _delete(request, job_id)


@router.get("/async/{job_id}/phase", response_class=PlainTextResponse)
async def read_phase(request: Request, job_id: str) -> Response:
    try:
        _, (tap, job) = await _with_job(request, job_id)
    except VOError as err:
        return error_response(err)
    return PlainTextResponse(uws.phase_of(tap, job))


@router.post("/async/{job_id}/phase", response_class=Response)
async def change_phase(request: Request, job_id: str) -> Response:
    try:
        params = await read_params(request, 0)
        phase = (params.get("PHASE") or "").upper()
        if phase not in ("RUN", "ABORT"):
            raise VOError(400, "PHASE must be RUN or ABORT")

        def action(session: Session, user: User, tap: TapJob, job: Job | None) -> bool:
            if phase == "RUN":
                if tap.phase == "PENDING" and job is None:
                    _start(request, session, user, tap)
                    return tap.job_id is not None
                return False
            wake = _cancel(session, tap)
            session.commit()
            return wake

        _, wake = await _with_job(request, job_id, action)
    except VOError as err:
        return error_response(err)
    if wake:
        request.app.state.dispatcher.wake()
    return RedirectResponse(absolute_url(request, f"/tap/async/{job_id[:64]}"), status_code=303)


@router.get("/async/{job_id}/{field}", response_class=Response)
async def read_field(request: Request, job_id: str, field: str) -> Response:
    """UWS's single-value resources: executionduration, destruction, quote, owner, error,
    results, parameters."""
    try:
        user, (tap, job) = await _with_job(request, job_id)
    except VOError as err:
        return error_response(err)
    field = field.lower()
    if field == "executionduration":
        return PlainTextResponse(str(tap.execution_duration_s))
    if field == "destruction":
        return PlainTextResponse(tap.destruction_at.isoformat())
    if field == "quote":
        return PlainTextResponse("")
    if field == "owner":
        return PlainTextResponse(user.name)
    if field == "error":
        text = _error_text(tap, job) if uws.phase_of(tap, job) == "ERROR" else None
        if text is None:
            return error_response(VOError(404, "the job has no error"))
        return error_response(VOError(200, text))
    if field in ("results", "parameters"):
        url = absolute_url(request, f"/tap/async/{tap.id}")
        return Response(uws.job_document(tap, job, user.name, url, _error_text(tap, job)),
                        media_type="text/xml")
    return error_response(VOError(404, f"a UWS job has no {field[:40]!r}"))


@router.post("/async/{job_id}/{field}", response_class=Response)
async def change_field(request: Request, job_id: str, field: str) -> Response:
    """Set EXECUTIONDURATION (seconds, at most the service's) or DESTRUCTION (ISO 8601)
    while the job is PENDING."""
    settings = settings_of(request)
    try:
        params = await read_params(request, 0)
        field = field.lower()
        if field == "executionduration":
            value = params.integer("EXECUTIONDURATION", lowest=1)
            if value is None:
                raise VOError(400, "send EXECUTIONDURATION=<seconds>")
            change = {"execution_duration_s": min(value, settings.tap_execution_duration_s)}
        elif field == "destruction":
            moment = _moment(params.get("DESTRUCTION"), "DESTRUCTION")
            latest = utcnow() + timedelta(days=settings.tap_destruction_days)
            change = {"destruction_at": min(moment, latest)}
        else:
            raise VOError(404, f"{field[:40]!r} cannot be set: executionduration or "
                          "destruction can")

        def action(session: Session, user: User, tap: TapJob, job: Job | None) -> None:
            if job is not None or tap.phase != "PENDING":
                raise VOError(409, "a job's parameters change only while it is PENDING")
            for name, value in change.items():
                setattr(tap, name, value)
            session.commit()

        await _with_job(request, job_id, action)
    except VOError as err:
        return error_response(err)
    return RedirectResponse(absolute_url(request, f"/tap/async/{job_id[:64]}"), status_code=303)


@router.get("/async/{job_id}/results/result", response_class=Response,
            summary="An async TAP job's result")
async def read_result(request: Request, job_id: str) -> Response:
    settings = settings_of(request)

    def action(session: Session, user: User, tap: TapJob, job: Job | None) -> Response:
        if job is None or job.state != "succeeded":
            raise VOError(404, f"the job is {uws.phase_of(tap, job)}: its result is there "
                          "once it is COMPLETED")
        results = _results(settings, session, job)
        names = [p for p, _, _ in results.list() if p.rsplit("/", 1)[-1].startswith("result.")]
        if not names:
            raise VOError(404, "the job left no result file")
        response = serve_result(results, names[0], None)
        response.media_type = FORMATS[tap.params["format"]][0]
        response.headers["content-type"] = FORMATS[tap.params["format"]][0]
        return response

    try:
        _, response = await _with_job(request, job_id, action)
    except VOError as err:
        return error_response(err)
    return response
