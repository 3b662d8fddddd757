"""Request dependencies: the DB session, the caller, role checks.

``CurrentUser`` resolves the ``Authorization: Bearer <token>`` header to an
enabled user through a valid token; anything else is 401. Operator-only
routes add ``Depends(require_operator)`` on the decorator.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.avis import AviCatalogue
from api.models import User
from api.scheduler import Capacity
from api.settings import Settings
from api.store import users as user_store

bearer = HTTPBearer(auto_error=False, description="An avip API token (`avip login`).")


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_current_user(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    if credentials is None or not credentials.credentials:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing token: send 'Authorization: Bearer <token>' (get one with `avip login`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    user = user_store.user_for_token(session, secret=credentials.credentials)
    # End the read transaction now: the pooled connection goes back before the route waits
    # for a worker thread. Holding it across that wait deadlocks the pool under load (every
    # thread blocked on a connection held by a request that is itself waiting for a thread).
    session.commit()
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "token unknown, expired or revoked: ask an operator for a new one",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]

#: A row id in a path: bounded to the store's 32-bit integer keys (PostgreSQL ``integer``).
MAX_ID = 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]


def require_operator(user: CurrentUser) -> User:
    if "operator" not in user.roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this needs the operator role")
    return user


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_catalogue(request: Request) -> AviCatalogue:
    return request.app.state.catalogue


def get_capacity(request: Request) -> Capacity:
    settings: Settings = request.app.state.settings
    return Capacity(cores=settings.cluster_cores, memory_mb=settings.cluster_memory_mb)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
CatalogueDep = Annotated[AviCatalogue, Depends(get_catalogue)]
CapacityDep = Annotated[Capacity, Depends(get_capacity)]
