"""The door: who may check tickets in for which event, and the door's running count.

Whoever checks in is a member of the event's organiser whose role does
(door, box office, manager, owner), for all its events or the ones the
membership names; migration 0029 made the old per-event door staff such
members. The membership is read on every door request (one indexed lookup),
so removing someone takes effect at their next scan. The check-in itself is
`checkin.check_in`: one conditional UPDATE, so phones at one door admit a
ticket once.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from webapp.models import Event, OrganiserMember, User
from webapp.services.people.organisers import CAPABILITIES

CHECK_IN_ROLES = tuple(role for role, reach in CAPABILITIES.items() if "check_in" in reach)


@dataclass(frozen=True)
class DoorCount:
    checked_in: int
    valid: int


def _checks_in(user_id: int):
    """Events this user may check in for: in the team of its organiser with a role that checks in (for all its
    events, or this one among theirs)."""
    return Event.id.in_(
        select(Event.id).join(OrganiserMember, OrganiserMember.organiser_id == Event.organiser_id)
        .where(OrganiserMember.user_id == user_id, OrganiserMember.role.in_(CHECK_IN_ROLES),
               or_(OrganiserMember.event_ids.is_(None), Event.id == func.any(OrganiserMember.event_ids)))
    )


def may_check_in(session: Session, *, user_id: int, event_id: int) -> bool:
    return session.execute(select(Event.id).where(Event.id == event_id, _checks_in(user_id))).first() is not None


def events_for(session: Session, user_id: int) -> list[Event]:
    return list(session.scalars(select(Event).where(_checks_in(user_id)).order_by(Event.starts_at, Event.id)))


def door_members(session: Session, event_id: int) -> list[tuple[User, str]]:
    """Who may check this event's tickets in, besides platform administrators: its organiser's members whose role
    checks in, for all events or this one; with their role. The check-in page lists them."""
    return [(user, role) for user, role in session.execute(
        select(User, OrganiserMember.role).join(OrganiserMember, OrganiserMember.user_id == User.id)
        .join(Event, Event.organiser_id == OrganiserMember.organiser_id)
        .where(Event.id == event_id, OrganiserMember.role.in_(CHECK_IN_ROLES),
               or_(OrganiserMember.event_ids.is_(None), Event.id == func.any(OrganiserMember.event_ids)))
        .order_by(User.name, User.id)).all()]


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



