"""The outbox, readable: job events after a given id (yours; all of them for operators)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentUser, SessionDep, SessionRoute
from api.schemas import EventPublic, EventsPublic
from api.store import jobs as job_store

router = APIRouter(prefix="/events", tags=["events"], route_class=SessionRoute)


@router.get("", response_model=EventsPublic)
def list_events(
    session: SessionDep,
    user: CurrentUser,
    after: Annotated[int, Query(ge=0, le=2**62, description="Return events with id > after.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventsPublic:
    scope = None if "operator" in user.roles else user
    events = job_store.list_events(session, user=scope, after=after, limit=limit)
    return EventsPublic(data=[EventPublic.model_validate(e) for e in events], count=len(events),
                        last_id=events[-1].id if events else after)
