"""Alert filters in the job store (keyword-only functions), and the alert stream's view of them.

Every lookup on a user's behalf is scoped to that owner: another user's filter
is ``NotFound``, exactly like one that does not exist, so filters cannot even be
probed. The alert stream's two (:func:`enabled_filters`,
:func:`disable_unrunnable`) act for the platform, across users; its entry point
(``avip alerts stream``) calls them, the stream itself never opens the store.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.errors import Conflict, Invalid, NotFound, OverCap
from api.models import AlertFilterRow, User, utcnow
from api.store.jobs import add_event
from spark_jobs.alerts.filters import AlertFilter, FilterError, check_where, make_filter


def create_filter(
    session: Session,
    *,
    owner: User,
    name: str,
    where: str,
    output_format: str,
    topic_prefix: str,
    enabled: bool = True,
    max_filters: int | None = None,
) -> AlertFilterRow:
    """A new filter of ``owner``'s, checked (:class:`Invalid` naming the field); at most
    ``max_filters`` per owner (:class:`OverCap`)."""
    if max_filters is not None:
        held = session.scalar(select(func.count()).select_from(AlertFilterRow)
                              .where(AlertFilterRow.owner_id == owner.id)) or 0
        if held >= max_filters:
            raise OverCap(f"you have {held} alert filters, the most one user may hold "
                          f"(max_alert_filters_per_user = {max_filters}); delete one first")
    try:
        checked = make_filter(
            filter_id=0,
            owner=owner.name,
            name=name,
            where=where,
            topic_prefix=topic_prefix,
            output_format=output_format,
        )
    except FilterError as err:
        raise Invalid(str(err), field="where" if "name" not in str(err)[:12] else "name") from None
    row = AlertFilterRow(
        owner_id=owner.id,
        name=name,
        where_sql=where,
        spark_sql=checked.spark_sql,
        topic=checked.topic,
        output_format=output_format,
        enabled=enabled,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"you already have a filter named {name!r}; pick another name") from None
    return row


def get_filter(session: Session, *, owner: User, ref: str | int) -> AlertFilterRow:
    """One of ``owner``'s filters by id or by name."""
    query = select(AlertFilterRow).where(AlertFilterRow.owner_id == owner.id)
    if isinstance(ref, int) or (str(ref).isascii() and str(ref).isdigit()):  # not "²"
        query = query.where(AlertFilterRow.id == int(ref))
    else:
        query = query.where(AlertFilterRow.name == str(ref))
    row = session.scalars(query).first()
    if row is None:
        raise NotFound(f"you have no alert filter {ref!r}")
    return row


def list_filters(session: Session, *, owner: User) -> list[AlertFilterRow]:
    return list(
        session.scalars(
            select(AlertFilterRow)
            .where(AlertFilterRow.owner_id == owner.id)
            .order_by(AlertFilterRow.id)
        )
    )


def update_filter(
    session: Session, *, row: AlertFilterRow, where: str | None = None, enabled: bool | None = None
) -> AlertFilterRow:
    if where is not None:
        try:
            row.spark_sql = check_where(where)
        except FilterError as err:
            raise Invalid(str(err), field="where") from None
        row.where_sql = where
    if enabled is not None:
        row.enabled = enabled
    row.disabled_reason = None  # an edit or a switch by its owner clears the stream's note
    row.updated_at = utcnow()
    return row


def delete_filter(session: Session, *, row: AlertFilterRow) -> None:
    session.delete(row)


def enabled_filters(session: Session) -> list[AlertFilter]:
    """Every user's enabled filters, as the streaming job evaluates them."""
    rows = session.execute(
        select(AlertFilterRow, User.name)
        .join(User, User.id == AlertFilterRow.owner_id)
        .where(AlertFilterRow.enabled.is_(True), User.disabled.is_(False))
    ).all()
    return [
        AlertFilter(
            filter_id=r.id,
            owner=owner,
            name=r.name,
            where=r.where_sql,
            spark_sql=r.spark_sql,
            topic=r.topic,
            output_format=r.output_format,
            revision=r.updated_at.isoformat() if r.updated_at else "",
        )
        for r, owner in rows
    ]


def disable_unrunnable(
    session: Session, *, filter_id: int, owner: str, spark_sql: str, reason: str
) -> AlertFilterRow | None:
    """Switch off a filter the alert stream cannot run (its owner's to fix and re-enable).

    The stream reports the filter as it read it: the row is disabled only if it still
    belongs to ``owner`` and its condition is still that one (a filter edited since is left
    to the stream's next check). The row, or None when it changed or is gone. The stream
    acts for the platform, across users.
    """
    row = session.scalars(
        select(AlertFilterRow).join(User, User.id == AlertFilterRow.owner_id)
        .where(AlertFilterRow.id == filter_id, User.name == owner)
    ).first()
    if row is None or row.spark_sql != spark_sql:
        return None
    row.enabled = False
    row.disabled_reason = reason[:2000]
    row.updated_at = utcnow()
    add_event(session, user=owner, type="alert_filter.disabled", job_id=None,
              payload={"filter": row.name, "id": row.id, "reason": row.disabled_reason})
    return row
