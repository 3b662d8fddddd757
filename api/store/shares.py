"""Read-only shares of files and job results with a user or a group."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from api.errors import Conflict, Invalid, NotFound
from api.models import Share, User


def create_share(
    session: Session,
    *,
    owner: User,
    kind: str,
    target: str,
    grantee_user: User | None = None,
    grantee_group: str | None = None,
) -> Share:
    if kind not in ("file", "job"):
        raise Invalid(f"kind must be 'file' or 'job', got {kind!r}", field="kind")
    if (grantee_user is None) == (grantee_group is None):
        raise Invalid("share with exactly one of a user or a group", field="user")
    if grantee_user is not None and grantee_user.id == owner.id:
        raise Invalid("you cannot share with yourself", field="user")
    to_whom = (
        Share.grantee_user_id == grantee_user.id
        if grantee_user is not None
        else Share.grantee_group == grantee_group
    )
    existing = session.scalar(
        select(Share).where(
            Share.owner_id == owner.id, Share.kind == kind, Share.target == target, to_whom
        )
    )
    if existing is not None:
        raise Conflict(f"{kind} {target!r} is already shared that way (share {existing.id})")
    share = Share(owner_id=owner.id, kind=kind, target=target,
                  grantee_user_id=grantee_user.id if grantee_user else None,
                  grantee_group=grantee_group)
    session.add(share)
    session.flush()
    return share


def shared_with(session: Session, *, user: User) -> list[tuple[Share, User]]:
    """Shares granted to ``user`` directly or through one of their groups."""
    conditions = [Share.grantee_user_id == user.id]
    if user.groups:
        conditions.append(Share.grantee_group.in_(user.groups))
    rows = session.execute(
        select(Share, User).join(User, User.id == Share.owner_id).where(or_(*conditions))
        .order_by(Share.id)
    )
    return [(share, owner) for share, owner in rows]


def shares_by(session: Session, *, owner: User) -> list[Share]:
    return list(session.scalars(select(Share).where(Share.owner_id == owner.id).order_by(Share.id)))


def get_received(session: Session, *, share_id: int, user: User) -> tuple[Share, User]:
    """A share granted to ``user`` (NotFound otherwise, even if it exists for others)."""
    for share, owner in shared_with(session, user=user):
        if share.id == share_id:
            return share, owner
    raise NotFound(f"no share {share_id} for you")


def delete_share(session: Session, *, share_id: int, owner: User) -> None:
    share = session.get(Share, share_id)
    if share is None or share.owner_id != owner.id:
        raise NotFound(f"no share {share_id}")
    session.delete(share)
    session.flush()
