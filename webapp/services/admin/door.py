"""Door staff: who may check tickets in for which event, and the door's running count.

Door staff are ordinary accounts with an assignment row per event, or the
members of an organiser's team whose role checks in (door, box office,
manager, owner), for its events or the ones their membership names. The
assignment is read on every door request (one indexed lookup), so removing
someone takes effect at their next scan. The check-in itself is
`checkin.check_in`: one conditional UPDATE, so phones at one door admit a
ticket once.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from webapp.models import DoorAssignment, Event, OrganiserMember, User
from webapp.services import audit
from webapp.services.errors import InvalidRequest
from webapp.services.people.organisers import CAPABILITIES

CHECK_IN_ROLES = tuple(role for role, reach in CAPABILITIES.items() if "check_in" in reach)


class DoorStaffError(InvalidRequest):
    pass


@dataclass(frozen=True)
class DoorCount:
    checked_in: int
    valid: int


def _checks_in(user_id: int):
    """Events this user may check in for: assigned to the door, or in the team of its organiser with
    a role that checks in (for all its events, or this one among theirs)."""
    assigned = select(DoorAssignment.event_id).where(DoorAssignment.user_id == user_id)
    member = (
        select(Event.id).join(OrganiserMember, OrganiserMember.organiser_id == Event.organiser_id)
        .where(OrganiserMember.user_id == user_id, OrganiserMember.role.in_(CHECK_IN_ROLES),
               or_(OrganiserMember.event_ids.is_(None), Event.id == func.any(OrganiserMember.event_ids)))
    )
    return or_(Event.id.in_(assigned), Event.id.in_(member))


def may_check_in(session: Session, *, user_id: int, event_id: int) -> bool:
    return session.execute(select(Event.id).where(Event.id == event_id, _checks_in(user_id))).first() is not None


def events_for(session: Session, user_id: int) -> list[Event]:
    return list(session.scalars(select(Event).where(_checks_in(user_id)).order_by(Event.starts_at, Event.id)))


def staff_of(session: Session, event_id: int) -> list[User]:
    return list(session.scalars(
        select(User).join(DoorAssignment, DoorAssignment.user_id == User.id)
        .where(DoorAssignment.event_id == event_id).order_by(User.name, User.id)
    ))


def assign(session: Session, *, event_id: int, email: str, actor_id: int) -> User:
    """Give the account with this e-mail the door of this event (idempotent)."""
    email = (email or "").strip().lower()
    user = session.scalars(select(User).where(User.email == email)).first() if email else None
    if user is None:
        raise DoorStaffError("No account has that e-mail address. Ask them to register first.")
    if user.is_admin:
        raise DoorStaffError(f"{user.name} is an admin and can check tickets in already.")
    added = session.execute(
        insert(DoorAssignment).values(event_id=event_id, user_id=user.id, assigned_by=actor_id)
        .on_conflict_do_nothing().returning(DoorAssignment.user_id)
    ).first()
    if added is not None:
        audit.record(session, actor_id=actor_id, action="door.assign", entity="user", entity_id=user.id,
                     event_id=event_id, after={"email": user.email})
    return user


def unassign(session: Session, *, event_id: int, user_id: int, actor_id: int) -> None:
    removed = session.execute(
        delete(DoorAssignment).where(DoorAssignment.event_id == event_id, DoorAssignment.user_id == user_id)
        .returning(DoorAssignment.user_id)
    ).first()
    if removed is not None:
        audit.record(session, actor_id=actor_id, action="door.unassign", entity="user", entity_id=user_id,
                     event_id=event_id)


def count(session: Session, event_id: int) -> DoorCount:
    row = session.execute(
        text("SELECT count(*) FILTER (WHERE checked_in_at IS NOT NULL), count(*)"
             " FROM tickets WHERE event_id = :e AND status = 'valid'"),
        {"e": event_id},
    ).one()
    return DoorCount(checked_in=row[0], valid=row[1])


def staff_name(session: Session, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    return session.scalar(select(User.name).where(User.id == user_id))



