"""Sharing: grant a file or a job's results read-only to a user or a group,
and read what others shared with you ("shared with me")."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import StreamingResponse

from api.deps import CurrentUser, RowId, SessionDep, SessionRoute, SettingsDep
from api.errors import Invalid
from api.models import Share, User
from api.routes.http_errors import http_errors
from api.routes.jobs import serve_result
from api.routes.space import listing, stream
from api.scheduling.pools import quota_for
from api.schemas import ShareCreate, SharePublic, SharesPublic, SpaceEntry, SpaceListing
from api.space.published_results import JobResults
from api.space.selection import user_space
from api.space.user_space import JOBS_DIR, UserSpace, normalize
from api.store import jobs as job_store
from api.store import shares as share_store
from api.store import users as user_store

router = APIRouter(prefix="/shares", tags=["shares"], route_class=SessionRoute)


def share_public(session: SessionDep, share: Share, owner: User) -> SharePublic:
    grantee = (user_store.user_by_id(session, user_id=share.grantee_user_id)
               if share.grantee_user_id else None)
    return SharePublic(id=share.id, owner=owner.name, kind=share.kind, target=share.target,  # type: ignore[arg-type]
                       user=grantee.name if grantee else None, group=share.grantee_group,
                       created_at=share.created_at)


@router.post("", response_model=SharePublic, status_code=status.HTTP_201_CREATED)
def create_share(
    session: SessionDep, settings: SettingsDep, user: CurrentUser, body: ShareCreate
) -> SharePublic:
    """Share one of your files/folders (``path``) or a job's results (``job_id``)."""
    with http_errors():
        if (body.path is None) == (body.job_id is None):
            raise Invalid("give exactly one of path or job_id", field="path")
        if body.job_id is not None:
            job_store.get_job(session, job_id=body.job_id, owner=user)
            kind, target = "job", str(body.job_id)
        else:
            kind, target = "file", normalize(body.path or "")
            if user_space(settings, user.name, 0).stat(target) is None:
                raise Invalid(f"you have no file {target!r} to share", field="path")
        grantee = user_store.get_user(session, name=body.user) if body.user else None
        share = share_store.create_share(session, owner=user, kind=kind, target=target,
                                         grantee_user=grantee, grantee_group=body.group)
    session.commit()
    return share_public(session, share, user)


@router.get("", response_model=SharesPublic)
def list_my_shares(session: SessionDep, user: CurrentUser) -> SharesPublic:
    """What you have shared."""
    shares = share_store.shares_by(session, owner=user)
    return SharesPublic(data=[share_public(session, s, user) for s in shares], count=len(shares))


@router.delete("/{share_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_share(session: SessionDep, user: CurrentUser, share_id: RowId) -> None:
    with http_errors():
        share_store.delete_share(session, share_id=share_id, owner=user)
    session.commit()


@router.get("/received", response_model=SharesPublic)
def shared_with_me(session: SessionDep, user: CurrentUser) -> SharesPublic:
    """Everything shared with you or your groups."""
    rows = share_store.shared_with(session, user=user)
    return SharesPublic(data=[share_public(session, s, o) for s, o in rows], count=len(rows))


def _base(share: Share) -> str:
    return share.target if share.kind == "file" else f"{JOBS_DIR}/{share.target}/result"


def _owner_space(settings: SettingsDep, owner: User) -> UserSpace:
    return user_space(settings, owner.name, quota_for(owner.roles).space_bytes)


def _inside(share: Share, path: str, space: UserSpace) -> str:
    base = _base(share)
    entry = space.stat(base)
    if entry is not None and not entry.is_dir:  # a shared file: reachable by its own name
        if normalize(path, allow_root=True) in ("", base.rsplit("/", 1)[-1]):
            return base
        raise Invalid(f"share {share.id} is the single file {base.rsplit('/', 1)[-1]!r}",
                      field="path")
    inner = normalize(f"{base}/{path}" if path else base)
    if inner != base and not inner.startswith(base + "/"):
        raise Invalid(f"{path!r} is outside share {share.id}", field="path")
    return inner


@router.get("/received/{share_id}/files", response_model=SpaceListing)
def list_shared(
    session: SessionDep, settings: SettingsDep, user: CurrentUser, share_id: RowId,
    path: Annotated[str, Query(max_length=1000)] = "",
) -> SpaceListing:
    with http_errors():
        share, owner = share_store.get_received(session, share_id=share_id, user=user)
        space = _owner_space(settings, owner)
        inner = _inside(share, path, space)
        if not (space.stat(inner) or space.stat(_base(share))):
            raise Invalid(f"share {share.id} no longer exists", field="path")
    if space.stat(inner) is not None and not space.stat(inner).is_dir:  # type: ignore[union-attr]
        entry = space.stat(inner)
        return SpaceListing(data=[SpaceEntry(path=inner.rsplit("/", 1)[-1], is_dir=False,
                                             size=entry.size, modified=entry.modified)],  # type: ignore[union-attr]
                            count=1, used_bytes=0, quota_bytes=0)
    result = listing(space, inner)
    prefix = _base(share) + "/"
    for entry in result.data:  # paths relative to the share, not the owner's layout
        entry.path = entry.path[len(prefix):] if entry.path.startswith(prefix) else entry.path
    result.used_bytes = result.quota_bytes = 0
    return result


@router.get("/received/{share_id}/files/{path:path}", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}})
def download_shared(
    session: SessionDep, settings: SettingsDep, user: CurrentUser, share_id: RowId, path: str,
    format: Annotated[str | None, Query(pattern="^(parquet|csv|votable|fits)$")] = None,
) -> Response:
    """A file inside a share (job shares: a result, with the same ?format= conversions)."""
    with http_errors():
        share, owner = share_store.get_received(session, share_id=share_id, user=user)
        if share.kind == "job":
            output_dir = Path(settings.space_root) / owner.name / JOBS_DIR / share.target
            return serve_result(JobResults(settings, owner.name, share.target, output_dir),
                                path, format)
        space = _owner_space(settings, owner)
        inner = _inside(share, path, space)
    response: StreamingResponse = stream(space, inner)
    return response
