"""User space: browse, upload, download, delete your files (under a byte quota)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentUser, SessionDep, SessionRoute, SettingsDep
from api.routes.http_errors import http_errors
from api.schemas import SpaceEntry, SpaceListing
from api.space.selection import user_space
from api.space.user_space import UserSpace
from api.store import users as user_store

router = APIRouter(prefix="/space", tags=["space"], route_class=SessionRoute)
SpacePath = Annotated[str, "a path inside your space"]


def _space(session: SessionDep, settings: SettingsDep, user: CurrentUser) -> UserSpace:
    quota = user_store.quota_of(session, user=user)
    return user_space(settings, user.name, quota.space_bytes)


def listing(space: UserSpace, path: str) -> SpaceListing:
    with http_errors():
        entries = space.list(path)
    return SpaceListing(
        data=[SpaceEntry(**e.__dict__) for e in entries], count=len(entries),
        used_bytes=space.used_bytes(), quota_bytes=space.quota_bytes,
    )


def stream(space: UserSpace, path: str) -> StreamingResponse:
    with http_errors():
        handle = space.open_read(path)
    name = path.rsplit("/", 1)[-1]

    def chunks() -> object:
        with handle:
            while block := handle.read(1 << 16):
                yield block

    return StreamingResponse(chunks(), media_type="application/octet-stream",  # type: ignore[arg-type]
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("", response_model=SpaceListing)
def list_space(
    session: SessionDep, settings: SettingsDep, user: CurrentUser,
    path: Annotated[str, Query(max_length=1000, description="Folder to list.")] = "",
) -> SpaceListing:
    return listing(_space(session, settings, user), path)


@router.get("/files/{path:path}", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
def download_file(
    session: SessionDep, settings: SettingsDep, user: CurrentUser, path: str
) -> StreamingResponse:
    return stream(_space(session, settings, user), path)


@router.put(
    "/files/{path:path}", response_model=SpaceEntry, status_code=status.HTTP_201_CREATED,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def upload_file(
    request: Request, session: SessionDep, settings: SettingsDep, user: CurrentUser, path: str,
    content_length: Annotated[int | None, Header(ge=0)] = None,
) -> SpaceEntry:
    """Upload the request body to ``path`` (replacing it). Over quota → 413, nothing written."""
    space = _space(session, settings, user)
    with http_errors():  # file work runs in worker threads: the event loop serves the others
        upload = await run_in_threadpool(space.begin_upload, path, content_length)
        try:
            async for chunk in request.stream():
                await run_in_threadpool(upload.write, chunk)
        except BaseException as error:
            await run_in_threadpool(upload.abort, error)
            raise
        entry = await run_in_threadpool(upload.commit)
    return SpaceEntry(**entry.__dict__)


@router.delete("/files/{path:path}", status_code=status.HTTP_204_NO_CONTENT)
def delete_file(session: SessionDep, settings: SettingsDep, user: CurrentUser, path: str) -> None:
    with http_errors():
        _space(session, settings, user).delete(path)
