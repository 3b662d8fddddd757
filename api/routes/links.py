"""Result links for SAMP: ask with your token, hand the URL to TOPCAT or Aladin.

``POST /jobs/{id}/results/{path}/link`` (your job, or one shared with you) answers a
signed URL (:mod:`api.links`); ``GET /links/{signed}`` serves that one result, converted,
to whoever holds the URL — no token, since a SAMP application fetches it itself — until
it expires, and only while the token it was made with is valid and its user may still
read the job.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.orm import Session

from api.deps import (
    BAD_TOKEN,
    CurrentUser,
    RowId,
    SessionDep,
    SessionRoute,
    SettingsDep,
    bearer,
)
from api.errors import NotFound
from api.links import Link, LinkExpired, LinkInvalid, link_key, sign, verify
from api.models import Job, Token, User
from api.routes.http_errors import http_errors
from api.routes.jobs import _storage_errors, serve_result
from api.schemas import ResultLink
from api.space.published_results import JobResults
from api.space.result_files import check_convertible
from api.store import jobs as job_store
from api.store import shares as share_store
from api.store import users as user_store

FORMAT = Query(pattern="^(parquet|csv|votable|fits)$",
               description="What the link serves the table as (SAMP table.load.votable: votable).")
STALE = ("the token this link was made with was revoked or expired, or its user disabled: "
         "sign in again and ask for a new link")

router = APIRouter(tags=["links"], route_class=SessionRoute)


def readable_job(session: Session, user: User, job_id: int) -> tuple[Job, User]:
    """The job and its owner if ``user`` owns it or it is shared with them (or a group of
    theirs); NotFound otherwise, the same answer whether or not it exists."""
    found = job_store.job_and_owner(session, job_id=job_id)
    if found is not None:
        job, owner = found
        if owner.id == user.id or any(
                share.kind == "job" and share.target == str(job_id) and by.id == owner.id
                for share, by in share_store.shared_with(session, user=user)):
            return job, owner
    raise NotFound(f"no job {job_id} of yours or shared with you")


def _results(settings: SettingsDep, job: Job, owner: User) -> JobResults:
    return JobResults(settings, owner.name, job.id, FilePath(job.output_dir))


@router.post("/jobs/{job_id}/results/{path:path}/link", response_model=ResultLink)
def make_link(
    request: Request, session: SessionDep, settings: SettingsDep, user: CurrentUser,
    credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)],
    job_id: RowId, path: str, format: Annotated[str, FORMAT] = "votable",
) -> ResultLink:
    """A URL serving this result as ``format`` without a token, for ``link_ttl_s``: what
    to hand TOPCAT or Aladin over SAMP. Anyone holding it can read this one file."""
    found = user_store.valid_token(session, token_hash=user_store.hash_token(
        credentials.credentials))  # CurrentUser checked it; the link is bound to its row
    if found is None:  # revoked since, a moment ago
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, BAD_TOKEN)
    with http_errors():
        job, owner = readable_job(session, user, job_id)
        with _storage_errors():
            listed = {p: size for p, size, _ in _results(settings, job, owner).list()}
        clean = path.strip("/")
        if clean not in listed:
            raise NotFound(f"job {job_id} has no result {path!r}; list them with "
                           f"GET /jobs/{job_id}/results")
        check_convertible(clean.rsplit("/", 1)[-1], listed[clean], format)
    expires = int(datetime.now(UTC).timestamp()) + settings.link_ttl_s
    signed = sign(link_key(settings), Link(user.id, found[1].id, job_id, clean, format, expires))
    return ResultLink(url=str(request.url_for("open_link", signed=signed)),
                      expires_at=datetime.fromtimestamp(expires, UTC))


@router.get("/links/{signed}", response_class=Response,
            responses={200: {"content": {"application/x-votable+xml": {}}},
                       403: {"description": "altered, or no longer allowed"},
                       410: {"description": "expired"}})
def open_link(session: SessionDep, settings: SettingsDep,
              signed: Annotated[str, Path(max_length=4096)]) -> Response:
    """The result a link names (no token: the link is the permission)."""
    try:
        link = verify(link_key(settings), signed)
    except LinkExpired as error:
        raise HTTPException(status.HTTP_410_GONE, str(error)) from None
    except LinkInvalid as error:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(error)) from None
    token = session.get(Token, link.token_id)
    found = token and user_store.valid_token(session, token_hash=token.token_hash)
    if not found or found[0].id != link.user_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, STALE)
    with http_errors():
        job, owner = readable_job(session, found[0], link.job_id)
    return serve_result(_results(settings, job, owner), link.path, link.fmt)
