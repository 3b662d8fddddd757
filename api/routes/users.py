"""Operator endpoints: users, their tokens and pools; plus ``/users/me``."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, status

from api.deps import (
    CapacityDep,
    CurrentUser,
    RowId,
    SessionDep,
    SessionRoute,
    SettingsDep,
    require_operator,
)
from api.routes.http_errors import http_errors
from api.scheduling.pools import ROLE_DEFAULTS, Quota
from api.schemas import (
    MePublic,
    PoolPublic,
    PoolsPublic,
    QuotaPublic,
    TokenCreate,
    TokenIssued,
    TokenPublic,
    TokensPublic,
    UsagePublic,
    UserCreate,
    UserPublic,
    UsersPublic,
    UserUpdate,
    UserUsage,
)
from api.space.selection import user_space
from api.store import jobs as job_store
from api.store import users as user_store

router = APIRouter(prefix="/users", tags=["users"], route_class=SessionRoute)
operator_only = [Depends(require_operator)]


def _quota_public(quota: Quota) -> QuotaPublic:
    return QuotaPublic(cores=quota.cores, memory_mb=quota.memory_mb, max_jobs=quota.max_jobs,
                       space_bytes=quota.space_bytes)


@router.get("/me", response_model=MePublic)
def read_me(session: SessionDep, user: CurrentUser, settings: SettingsDep) -> MePublic:
    """Who the token belongs to, their quota and what they hold now."""
    quota = user_store.quota_of(session, user=user)
    cores, memory, jobs = job_store.running_totals(session, user=user)
    used = user_space(settings, user.name, quota.space_bytes).used_bytes()
    return MePublic(
        **UserPublic.model_validate(user).model_dump(), quota=_quota_public(quota),
        pool_overridden=user_store.has_pool_override(session, user=user),
        running_cores=cores, running_memory_mb=memory, running_jobs=jobs, space_used_bytes=used,
    )


@router.get("", response_model=UsersPublic, dependencies=operator_only)
def list_users(session: SessionDep) -> UsersPublic:
    users = user_store.list_users(session)
    return UsersPublic(data=[UserPublic.model_validate(u) for u in users], count=len(users))


@router.get("/usage", response_model=UsagePublic, dependencies=operator_only)
def usage(session: SessionDep) -> UsagePublic:
    """Every user with a job waiting or running: how many, and the cores and memory their
    running jobs hold (operators)."""
    rows = [UserUsage(user=user, queued_jobs=queued, running_jobs=running, running_cores=cores,
                      running_memory_mb=memory)
            for user, queued, running, cores, memory in job_store.load_by_user(session)]
    return UsagePublic(data=rows, count=len(rows))


@router.post("", response_model=UserPublic, status_code=status.HTTP_201_CREATED,
             dependencies=operator_only)
def create_user(session: SessionDep, body: UserCreate) -> UserPublic:
    with http_errors():
        user = user_store.create_user(session, name=body.name, roles=list(body.roles),
                                      groups=body.groups)
    session.commit()
    return UserPublic.model_validate(user)


@router.get("/{name}", response_model=UserPublic, dependencies=operator_only)
def read_user(session: SessionDep, name: str) -> UserPublic:
    with http_errors():
        return UserPublic.model_validate(user_store.get_user(session, name=name))


@router.patch("/{name}", response_model=UserPublic, dependencies=operator_only)
def update_user(session: SessionDep, name: str, body: UserUpdate) -> UserPublic:
    with http_errors():
        user = user_store.get_user(session, name=name)
        user_store.update_user(session, user=user, roles=body.roles, groups=body.groups,
                               disabled=body.disabled)
    session.commit()
    return UserPublic.model_validate(user)


@router.post("/{name}/tokens", response_model=TokenIssued, status_code=status.HTTP_201_CREATED,
             dependencies=operator_only)
def issue_token(
    session: SessionDep, settings: SettingsDep, name: str, body: TokenCreate
) -> TokenIssued:
    """Issue a token; the secret is in this response only."""
    with http_errors():
        user = user_store.get_user(session, name=name)
    ttl = timedelta(days=body.ttl_days or settings.token_ttl_days)
    token, secret = user_store.issue_token(session, user=user, label=body.label, ttl=ttl)
    session.commit()
    return TokenIssued(**TokenPublic.model_validate(token).model_dump(), token=secret,
                       user=user.name)


@router.get("/{name}/tokens", response_model=TokensPublic, dependencies=operator_only)
def list_tokens(session: SessionDep, name: str) -> TokensPublic:
    with http_errors():
        user = user_store.get_user(session, name=name)
    tokens = user_store.list_tokens(session, user=user)
    return TokensPublic(data=[TokenPublic.model_validate(t) for t in tokens], count=len(tokens))


@router.delete("/{name}/tokens/{token_id}", response_model=TokenPublic,
               dependencies=operator_only)
def revoke_token(session: SessionDep, name: str, token_id: RowId) -> TokenPublic:
    with http_errors():
        user = user_store.get_user(session, name=name)
        token = user_store.revoke_token(session, token_id=token_id, user=user)
    session.commit()
    return TokenPublic.model_validate(token)


@router.put("/{name}/pool", response_model=PoolPublic, dependencies=operator_only)
def set_pool(session: SessionDep, name: str, body: QuotaPublic) -> PoolPublic:
    """Replace the user's role-default pool with an explicit one."""
    with http_errors():
        user = user_store.get_user(session, name=name)
        quota = user_store.set_pool(session, user=user, quota=Quota(**body.model_dump()))
    session.commit()
    return PoolPublic(user=user.name, roles=user.roles, quota=_quota_public(quota), overridden=True)


@router.delete("/{name}/pool", response_model=PoolPublic, dependencies=operator_only)
def clear_pool(session: SessionDep, name: str) -> PoolPublic:
    """Go back to the role default."""
    with http_errors():
        user = user_store.get_user(session, name=name)
    user_store.clear_pool(session, user=user)
    session.commit()
    quota = user_store.quota_of(session, user=user)
    return PoolPublic(user=user.name, roles=user.roles, quota=_quota_public(quota),
                      overridden=False)


pools_router = APIRouter(prefix="/pools", tags=["users"], route_class=SessionRoute)


@pools_router.get("", response_model=PoolsPublic, dependencies=operator_only)
def list_pools(session: SessionDep, capacity: CapacityDep) -> PoolsPublic:
    """Every user's effective pool, the role defaults and the cluster's capacity."""
    overrides = user_store.overrides(session)
    data = [
        PoolPublic(user=u.name, roles=u.roles,
                   quota=_quota_public(user_store.quota_of(session, user=u)),
                   overridden=u.id in overrides)
        for u in user_store.list_users(session)
    ]
    return PoolsPublic(
        data=data, count=len(data),
        role_defaults={r: _quota_public(q) for r, q in ROLE_DEFAULTS.items()},
        cluster_cores=capacity.cores, cluster_memory_mb=capacity.memory_mb,
    )
