"""Users, tokens and pool overrides (keyword-only store functions).

Tokens are random 256-bit secrets shown once; the store keeps their SHA-256
(a slow password hash is not needed for high-entropy secrets) and looks a
request's token up by that hash.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from api.errors import Conflict, Invalid, NotFound
from api.models import PoolOverride, Token, User, utcnow
from api.scheduling.pools import ROLES, Quota, quota_for, unknown_roles
from config.names import USER_NAME

NAME = USER_NAME
TOKEN_PREFIX = "avip_"
_POOLS = PoolOverride.__table__
_POOL_OF = select(_POOLS).where(_POOLS.c.user_id == bindparam("user_id"))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_name(name: str, what: str = "user name") -> None:
    if not NAME.match(name):
        raise Invalid(
            f"{what} {name!r} must be 1-64 characters of a-z, 0-9, '_' or '-', "
            "starting with a letter",
            field="name",
        )


def create_user(
    session: Session, *, name: str, roles: list[str], groups: list[str] | None = None
) -> User:
    _check_name(name)
    bad = unknown_roles(roles)
    if bad or not roles:
        raise Invalid(f"roles must be among {', '.join(ROLES)}; got {roles}", field="roles")
    for group in groups or []:
        _check_name(group, "group name")
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise Conflict(f"user {name!r} already exists")
    user = User(name=name, roles=list(roles), groups=list(groups or []))
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, *, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user {name!r}")
    return user


def user_by_id(session: Session, *, user_id: int) -> User | None:
    return session.get(User, user_id)


def count_users(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(User)) or 0)


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name)))


def update_user(
    session: Session,
    *,
    user: User,
    roles: list[str] | None = None,
    groups: list[str] | None = None,
    disabled: bool | None = None,
) -> User:
    if roles is not None:
        if unknown_roles(roles) or not roles:
            raise Invalid(f"roles must be among {', '.join(ROLES)}; got {roles}", field="roles")
        user.roles = list(roles)
    if groups is not None:
        for group in groups:
            _check_name(group, "group name")
        user.groups = list(groups)
    if disabled is not None:
        user.disabled = disabled
    session.flush()
    return user


def issue_token(
    session: Session, *, user: User, label: str = "", ttl: timedelta | None = None
) -> tuple[Token, str]:
    """Create a token for ``user``; returns the row and the secret (shown only now)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = Token(
        user_id=user.id,
        token_hash=hash_token(secret),
        label=label,
        expires_at=utcnow() + ttl if ttl else None,
    )
    session.add(token)
    session.flush()
    return token, secret


def list_tokens(session: Session, *, user: User) -> list[Token]:
    return list(session.scalars(select(Token).where(Token.user_id == user.id).order_by(Token.id)))


def revoke_token(session: Session, *, token_id: int, user: User | None = None) -> Token:
    """Revoke a token (of ``user`` only, when given)."""
    token = session.get(Token, token_id)
    if token is None or (user is not None and token.user_id != user.id):
        raise NotFound(f"no token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    session.flush()
    return token


def user_for_token(session: Session, *, secret: str, now: datetime | None = None) -> User | None:
    """The enabled user a valid (unexpired, unrevoked) token names, else None."""
    found = valid_token(session, token_hash=hash_token(secret), now=now)
    return found[0] if found else None


def valid_token(
    session: Session, *, token_hash: str, now: datetime | None = None
) -> tuple[User, Token] | None:
    """The enabled user and the valid (unexpired, unrevoked) token with this hash, else None."""
    row = session.execute(
        select(Token, User)
        .join(User, User.id == Token.user_id)
        .where(Token.token_hash == token_hash)
    ).first()
    if row is None:
        return None
    token, user = row
    now = now or utcnow()
    if token.revoked_at is not None or user.disabled:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    return user, token


def quota_of(session: Session, *, user: User) -> Quota:
    """The user's effective quota: the operator's override, else the role default.

    One Core select on the session's connection (every submission asks): it sees what the
    session flushed, and :func:`set_pool` / :func:`clear_pool` flush.
    """
    override = session.connection().execute(_POOL_OF, {"user_id": user.id}).first()
    if override is None:
        return quota_for(user.roles)
    return Quota(override.cores, override.memory_mb, override.max_jobs, override.space_bytes)


def set_pool(session: Session, *, user: User, quota: Quota) -> Quota:
    for field, value in (
        ("cores", quota.cores),
        ("memory_mb", quota.memory_mb),
        ("max_jobs", quota.max_jobs),
        ("space_bytes", quota.space_bytes),
    ):
        if value < 0:
            raise Invalid(f"{field} must be >= 0, got {value}", field=field)
    row = session.get(PoolOverride, user.id)
    if row is None:
        row = PoolOverride(user_id=user.id)
        session.add(row)
    row.cores, row.memory_mb = quota.cores, quota.memory_mb
    row.max_jobs, row.space_bytes = quota.max_jobs, quota.space_bytes
    session.flush()
    return quota


def clear_pool(session: Session, *, user: User) -> None:
    row = session.get(PoolOverride, user.id)
    if row is not None:
        session.delete(row)
        session.flush()


def has_pool_override(session: Session, *, user: User) -> bool:
    return session.get(PoolOverride, user.id) is not None


def overrides(session: Session) -> dict[int, Quota]:
    """Every operator-set pool, by user id (for the scheduler)."""
    return {
        r.user_id: Quota(r.cores, r.memory_mb, r.max_jobs, r.space_bytes)
        for r in session.scalars(select(PoolOverride))
    }
