"""Dashboard presets: named grids of AVI result views, per user; operators publish
presets that everyone sees (read-only for them)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status

from api.deps import CurrentUser, RowId, SessionDep, SessionRoute
from api.models import DashboardPreset, User
from api.routes.http_errors import http_errors
from api.schemas import PresetCreate, PresetLayout, PresetPublic, PresetsPublic, PresetUpdate
from api.store import presets as store

router = APIRouter(prefix="/presets", tags=["presets"], route_class=SessionRoute)


def _public(preset: DashboardPreset, owner: User, user: User) -> PresetPublic:
    return PresetPublic(id=preset.id, name=preset.name, owner=owner.name,
                        mine=owner.id == user.id, published=preset.published,
                        layout=PresetLayout.model_validate(preset.layout),
                        created_at=preset.created_at, updated_at=preset.updated_at)


def _check_publish(user: User, published: bool | None) -> None:
    if published and "operator" not in user.roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "publishing a preset needs the operator role; save it unpublished")


@router.get("", response_model=PresetsPublic)
def list_presets(session: SessionDep, user: CurrentUser) -> PresetsPublic:
    """Your presets and the published ones."""
    rows = store.visible_presets(session, user=user)
    return PresetsPublic(data=[_public(p, o, user) for p, o in rows], count=len(rows))


@router.post("", response_model=PresetPublic, status_code=status.HTTP_201_CREATED)
def create_preset(session: SessionDep, user: CurrentUser, body: PresetCreate) -> PresetPublic:
    _check_publish(user, body.published)
    with http_errors():
        preset = store.create_preset(session, owner=user, name=body.name,
                                     layout=body.layout.model_dump(), published=body.published)
    session.commit()
    return _public(preset, user, user)


@router.get("/{preset_id}", response_model=PresetPublic)
def read_preset(session: SessionDep, user: CurrentUser, preset_id: RowId) -> PresetPublic:
    with http_errors():
        preset, owner = store.get_visible(session, preset_id=preset_id, user=user)
    return _public(preset, owner, user)


@router.put("/{preset_id}", response_model=PresetPublic)
def update_preset(session: SessionDep, user: CurrentUser, preset_id: RowId,
                  body: PresetUpdate) -> PresetPublic:
    """Replace the layout and/or the published flag of one of your presets."""
    _check_publish(user, body.published)
    with http_errors():
        preset = store.get_own(session, preset_id=preset_id, owner=user)
        store.update_preset(session, preset=preset,
                            layout=body.layout.model_dump() if body.layout else None,
                            published=body.published)
    session.commit()
    return _public(preset, user, user)


@router.delete("/{preset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_preset(session: SessionDep, user: CurrentUser, preset_id: RowId) -> Response:
    with http_errors():
        store.delete_preset(session, preset=store.get_own(session, preset_id=preset_id,
                                                          owner=user))
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
