"""The audit log: who did what to which record, when, and what it looked like before and after.

Written in the same transaction as the change it describes, so an action
that rolls back leaves no trace and a committed one always has its entry.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from webapp.models import AuditLog, Event
from webapp.services import organiser_scope

PAGE_SIZE = 50


def _plain(value: Any) -> Any:
    """JSON-friendly form of a column value."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def snapshot(obj: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: _plain(getattr(obj, f)) for f in fields}


def record(session: Session, *, actor_id: int | None, action: str, entity: str, entity_id: int | None,
           event_id: int | None = None, before: dict | None = None, after: dict | None = None,
           organiser_id: int | None = None) -> AuditLog:
    """Add one entry; only the fields that changed are kept when both sides are given.

    It belongs to `organiser_id`, else to the organiser the session acts for, else to the event's.
    """
    if before is not None and after is not None:
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        before = {k: v for k, v in before.items() if k in changed}
        after = {k: v for k, v in after.items() if k in changed}
    if organiser_id is None:
        scope = organiser_scope.current(session)
        organiser_id = scope.organiser_id if scope is not None else None
    owner: Any = organiser_id
    if owner is None and event_id is not None:
        owner = select(Event.organiser_id).where(Event.id == event_id).scalar_subquery()
    entry = AuditLog(actor_id=actor_id, organiser_id=owner, event_id=event_id, action=action, entity=entity,
                     entity_id=entity_id,
                     before={k: _plain(v) for k, v in before.items()} if before is not None else None,
                     after={k: _plain(v) for k, v in after.items()} if after is not None else None)
    session.add(entry)
    session.flush()
    return entry


def entries(session: Session, *, event_id: int | None = None, action: str = "", page: int = 1
            ) -> tuple[list[AuditLog], int]:
    """A page of entries, newest first, and the total count."""
    query = select(AuditLog)
    if event_id is not None:
        query = query.where(AuditLog.event_id == event_id)
    if action:
        query = query.where(AuditLog.action.startswith(action, autoescape=True))
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.scalars(
        query.options(selectinload(AuditLog.actor)).order_by(AuditLog.id.desc())
        .limit(PAGE_SIZE).offset((max(page, 1) - 1) * PAGE_SIZE)
    ).all()
    return list(rows), total
