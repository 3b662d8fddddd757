"""Dashboard presets in the job store (keyword-only functions).

A user reads their own presets and every published one; only the owner may
change or delete a preset, and only an operator may publish. Someone else's
unpublished preset is ``NotFound``, exactly like one that does not exist.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from api.errors import Conflict, NotFound
from api.models import DashboardPreset, User, utcnow


def visible_presets(session: Session, *, user: User) -> list[tuple[DashboardPreset, User]]:
    """The user's presets and all published ones, each with its owner, by name."""
    rows = session.execute(
        select(DashboardPreset, User).join(User, User.id == DashboardPreset.owner_id)
        .where(or_(DashboardPreset.owner_id == user.id, DashboardPreset.published.is_(True)))
        .order_by(DashboardPreset.name, DashboardPreset.id)
    )
    return [(preset, owner) for preset, owner in rows]


def get_visible(session: Session, *, preset_id: int, user: User) -> tuple[DashboardPreset, User]:
    for preset, owner in visible_presets(session, user=user):
        if preset.id == preset_id:
            return preset, owner
    raise NotFound(f"no dashboard preset {preset_id}; list yours with GET /presets")


def get_own(session: Session, *, preset_id: int, owner: User) -> DashboardPreset:
    preset = session.get(DashboardPreset, preset_id)
    if preset is None or preset.owner_id != owner.id:
        raise NotFound(f"you have no dashboard preset {preset_id}")
    return preset


def create_preset(session: Session, *, owner: User, name: str, layout: dict[str, Any],
                  published: bool = False) -> DashboardPreset:
    existing = session.scalar(select(DashboardPreset).where(
        DashboardPreset.owner_id == owner.id, DashboardPreset.name == name))
    if existing is not None:
        raise Conflict(f"you already have a preset named {name!r} (id {existing.id}); "
                       f"update it with PUT /presets/{existing.id}")
    preset = DashboardPreset(owner_id=owner.id, name=name, layout=layout, published=published)
    session.add(preset)
    session.flush()
    return preset


def update_preset(session: Session, *, preset: DashboardPreset, layout: dict[str, Any] | None,
                  published: bool | None) -> DashboardPreset:
    if layout is not None:
        preset.layout = layout
    if published is not None:
        preset.published = published
    preset.updated_at = utcnow()
    session.flush()
    return preset


def delete_preset(session: Session, *, preset: DashboardPreset) -> None:
    session.delete(preset)
    session.flush()
