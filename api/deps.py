"""Request dependencies: the DB session, the caller, role checks.

``CurrentUser`` resolves the ``Authorization: Bearer <token>`` header to an
enabled user through a valid token; anything else is 401. Operator-only
routes add ``Depends(require_operator)`` on the decorator.

Dependencies that do no blocking I/O are ``async def``: FastAPI runs a plain
``def`` dependency in a worker thread, and under load those hops (several per
request, all queueing for the same thread pool) cost more than the work. The
session is opened lazily (no connection until first used) and closed on the
event loop (see :func:`get_session`). Authentication first asks
the in-process :class:`~api.auth_cache.TokenCache` and reads the store only on
a miss.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api.auth_cache import TokenCache
from api.avis import AviCatalogue
from api.models import Token, User
from api.scheduling.drf import Capacity
from api.store import users as user_store
from api.store.loop import LoopStore
from config.settings import Settings

T = TypeVar("T")

bearer = HTTPBearer(auto_error=False, description="An avip API token (`avip login`).")


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session for the route, closed on the event loop right after it.

    Closing must not wait for a worker thread: a route that read without committing still
    holds its pooled connection, and 200 such requests queued for threads while the threads
    queued for connections deadlocked the pool (500s after the pool timeout). Closing
    returns the connection at once (a local rollback; one loopback round trip on PostgreSQL).
    """
    session: Session = request.app.state.sessions()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


class SessionRoute(APIRoute):
    """A route whose plain ``def`` endpoint closes its session in its own worker thread.

    FastAPI validates a sync endpoint's return value in *another* worker-thread hop. A read
    that never committed would hold its pooled connection through that wait, and with
    every thread blocked on a connection held by a request waiting for a thread, the pool
    deadlocks under load (500s after its timeout). Closing right after the endpoint keeps
    the route's semantics (uncommitted work is rolled back, as before) and returns the
    connection first; loaded rows stay readable (``expire_on_commit=False``, close does not
    expire). Routers use it with ``APIRouter(route_class=SessionRoute)``.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint) and not hasattr(endpoint, "_closes_sessions"):
            endpoint = _closing_sessions(endpoint)
        super().__init__(path, endpoint, **kwargs)


def _closing_sessions(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return endpoint(*args, **kwargs)
        finally:
            for value in kwargs.values():
                if isinstance(value, Session):
                    value.close()

    run._closes_sessions = True  # type: ignore[attr-defined]
    return run

async def run_store(request: Request, work: Callable[[Session], T], *, writes: bool = False,
                    slow: bool = False) -> T:
    """Run a hot route's store work (submit, poll, list) with a session of its own.

    Such routes are ``async def`` without ``SessionDep``: a sync endpoint costs FastAPI a
    second thread hop to validate its answer, the session dependency an exit stack, and on
    a busy machine every hop between threads waits for the GIL and the OS scheduler.

    * Embedded SQLite (``app.state.loop_store``, see :mod:`api.store.loop`): on the event
      loop, no hop at all. Those connections never wait for a lock: if another holds the
      write lock, "database is locked" comes at once, the transaction is rolled back and
      the work runs again in a worker thread (writes queue there one at a time). ``work``
      must therefore change nothing outside its session before it commits.
    * Otherwise (PostgreSQL: network round trips), or when ``work`` may be ``slow`` (it
      copies from S3), in ONE worker-thread hop: nothing slow runs on the event loop.

    The session is closed where it was used, before the answer is built, so its pooled
    connection is back at once (see :class:`SessionRoute`).
    """
    loop_store: LoopStore | None = getattr(request.app.state, "loop_store", None)
    limiter = None
    if loop_store is not None and not slow:
        try:
            with loop_store.sessions() as session:
                return work(session)
        except OperationalError as error:
            if "locked" not in str(error.orig) and "busy" not in str(error.orig):
                raise
    if loop_store is not None:
        limiter = loop_store.write_limiter if writes else None
    sessions: sessionmaker[Session] = request.app.state.sessions

    def run() -> T:
        with sessions() as session:
            return work(session)

    return await anyio.to_thread.run_sync(run, limiter=limiter)


MISSING_TOKEN = "missing token: send 'Authorization: Bearer <token>' (get one with `avip login`)"
BAD_TOKEN = "token unknown, expired or revoked: ask an operator for a new one"


def _lookup_token(sessions: sessionmaker[Session], token_hash: str) -> tuple[User, Token] | None:
    """Read the store (in a worker thread) with a session of its own, ended before returning,
    so no pooled connection is held while the route waits for a thread."""
    with sessions() as session:
        found = user_store.valid_token(session, token_hash=token_hash)
        session.commit()
    return found


async def get_current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    if credentials is None or not credentials.credentials:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, MISSING_TOKEN,
                            headers={"WWW-Authenticate": "Bearer"})
    token_hash = user_store.hash_token(credentials.credentials)
    cache: TokenCache | None = getattr(request.app.state, "auth_cache", None)
    user = cache.get(token_hash) if cache is not None else None
    if user is None:
        generation = cache.generation if cache is not None else 0
        found = await run_in_threadpool(_lookup_token, request.app.state.sessions, token_hash)
        if found is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, BAD_TOKEN,
                                headers={"WWW-Authenticate": "Bearer"})
        user, token = found
        if cache is not None:
            cache.put(token_hash, user, token.expires_at, generation)
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]

#: A row id in a path: bounded to the store's 32-bit integer keys (PostgreSQL ``integer``).
MAX_ID = 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]


async def require_operator(user: CurrentUser) -> User:
    if "operator" not in user.roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this needs the operator role")
    return user


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_catalogue(request: Request) -> AviCatalogue:
    return request.app.state.catalogue


async def get_capacity(request: Request) -> Capacity:
    settings: Settings = request.app.state.settings
    return Capacity(cores=settings.cluster_cores, memory_mb=settings.cluster_memory_mb)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
CatalogueDep = Annotated[AviCatalogue, Depends(get_catalogue)]
CapacityDep = Annotated[Capacity, Depends(get_capacity)]
