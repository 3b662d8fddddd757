"""Alert filters: each user creates, lists, enables/disables and deletes their own."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.deps import CurrentUser, SessionDep, SessionRoute, SettingsDep
from api.models import AlertFilterRow
from api.routes.http_errors import http_errors
from api.schemas import AlertFilterCreate, AlertFilterPublic, AlertFiltersPublic, AlertFilterUpdate
from api.store import alert_filters as store
from spark_jobs.alerts.rows import filter_columns

router = APIRouter(prefix="/alert-filters", tags=["alerts"], route_class=SessionRoute)


def _public(row: AlertFilterRow) -> AlertFilterPublic:
    return AlertFilterPublic.model_validate(row)


@router.get("/columns", response_model=dict[str, str])
def list_columns() -> dict[str, str]:
    """The columns a filter may name, with their types."""
    return {name: t.simpleString() for name, t in filter_columns().items()}


@router.post("", response_model=AlertFilterPublic, status_code=status.HTTP_201_CREATED)
def create(
    body: AlertFilterCreate, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> AlertFilterPublic:
    with http_errors():
        row = store.create_filter(
            session,
            owner=user,
            name=body.name,
            where=body.where,
            output_format=body.output_format,
            enabled=body.enabled,
            topic_prefix=settings.alerts_filter_topic_prefix,
            max_filters=settings.max_alert_filters_per_user,
        )
        session.commit()
        return _public(row)


@router.get("", response_model=AlertFiltersPublic)
def list_mine(session: SessionDep, user: CurrentUser) -> AlertFiltersPublic:
    rows = store.list_filters(session, owner=user)
    return AlertFiltersPublic(data=[_public(r) for r in rows], count=len(rows))


@router.get("/{ref}", response_model=AlertFilterPublic)
def get_one(ref: str, session: SessionDep, user: CurrentUser) -> AlertFilterPublic:
    with http_errors():
        return _public(store.get_filter(session, owner=user, ref=ref))


@router.patch("/{ref}", response_model=AlertFilterPublic)
def update(
    ref: str, body: AlertFilterUpdate, session: SessionDep, user: CurrentUser
) -> AlertFilterPublic:
    with http_errors():
        row = store.get_filter(session, owner=user, ref=ref)
        store.update_filter(session, row=row, where=body.where, enabled=body.enabled)
        session.commit()
        return _public(row)


@router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT)
def delete(ref: str, session: SessionDep, user: CurrentUser) -> Response:
    with http_errors():
        store.delete_filter(session, row=store.get_filter(session, owner=user, ref=ref))
        session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
