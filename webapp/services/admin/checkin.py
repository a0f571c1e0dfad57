"""Checking tickets in at the door: each valid ticket once, even when two gates scan it together.

The check-in is one conditional UPDATE. Two gates scanning the same code at
the same instant both reach the row; PostgreSQL lets one update it, and the
other re-reads the row after the first commits, finds it already checked in,
and updates nothing. No read-then-write window exists.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session, joinedload

from webapp.models import Order, Ticket, TicketStatus
from webapp.services import audit
from webapp.services.selling import transfers

VALID = "valid"
ALREADY = "already_checked_in"
CANCELLED = "cancelled"
WRONG_EVENT = "wrong_event"
UNKNOWN = "unknown"
# A code its holder gave away: the ticket now has a new code, held by the recipient.
TRANSFERRED = "transferred"
# The answer's status for each outcome, for the check-in page and the API alike.
STATUS_CODES = {VALID: 200, ALREADY: 409, CANCELLED: 409, WRONG_EVENT: 409, UNKNOWN: 404, TRANSFERRED: 409}


@dataclass(frozen=True)
class CheckInResult:
    outcome: str
    code: str
    ticket: Ticket | None = None
    checked_in_at: datetime | None = None

    @property
    def admitted(self) -> bool:
        return self.outcome == VALID


def _load(session: Session, code: str) -> Ticket | None:
    return session.scalars(
        select(Ticket).where(Ticket.code == code)
        .options(joinedload(Ticket.order).joinedload(Order.user), joinedload(Ticket.order).joinedload(Order.event),
                 joinedload(Ticket.unit), joinedload(Ticket.tier))
    ).first()


def check_in(session: Session, *, event_id: int, code: str | None, staff_id: int) -> CheckInResult:
    """Admit the ticket with this code at this event, or say why not (None: a form that did not validate)."""
    code = "".join((code or "").split())  # scanners may add a newline or spaces
    if not code or len(code) > 64:
        return CheckInResult(UNKNOWN, code[:64])
    admitted = session.execute(
        text(
            "UPDATE tickets SET checked_in_at = now(), checked_in_by = :s"
            " WHERE code = :c AND event_id = :e AND status = 'valid' AND checked_in_at IS NULL"
            " RETURNING id, checked_in_at"
        ),
        {"s": staff_id, "c": code, "e": event_id},
    ).first()
    ticket = _load(session, code)
    if admitted is not None:
        session.refresh(ticket, ["checked_in_at", "checked_in_by"])
        audit.record(session, actor_id=staff_id, action="ticket.check_in", entity="ticket", entity_id=admitted.id,
                     event_id=event_id, after={"checked_in_at": admitted.checked_in_at})
        return CheckInResult(VALID, code, ticket, admitted.checked_in_at)
    if ticket is None:
        # A transfer accepted a moment before this scan re-coded the ticket: the old code is not "unknown".
        return CheckInResult(TRANSFERRED if transfers.transferred_code(session, code) else UNKNOWN, code)
    if ticket.event_id != event_id:
        return CheckInResult(WRONG_EVENT, code, ticket)
    if ticket.status != TicketStatus.VALID:
        return CheckInResult(CANCELLED, code, ticket)
    return CheckInResult(ALREADY, code, ticket, ticket.checked_in_at)


def recent_check_ins(session: Session, event_id: int, limit: int = 10) -> list[Ticket]:
    return list(session.scalars(
        select(Ticket).where(Ticket.event_id == event_id, Ticket.checked_in_at.is_not(None))
        .options(joinedload(Ticket.order).joinedload(Order.user), joinedload(Ticket.unit), joinedload(Ticket.tier))
        .order_by(Ticket.checked_in_at.desc()).limit(limit)
    ).all())
