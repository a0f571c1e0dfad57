"""A sold ticket's holder and code: locked and changed here, as units are.

A ticket's code is what admits at the door, so a new code for a new holder
is a change of who owns a place at the event. The caller holds the ticket's
row lock (`lock_ticket`) from its checks to the change: the door's
check-in is a conditional UPDATE of the same row, so of a check-in and a
transfer racing for one ticket exactly one finds it as it expects.
"""
from __future__ import annotations

import secrets

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from webapp.models import Ticket


def lock_ticket(session: Session, ticket_id: int) -> Ticket | None:
    """The ticket's row, locked until the transaction ends, read afresh."""
    return session.scalars(select(Ticket).where(Ticket.id == ticket_id).with_for_update()
                           .execution_options(populate_existing=True)).first()


def reissue_ticket(session: Session, ticket: Ticket, *, holder_id: int) -> str:
    """A new code and holder for a ticket the caller has locked; the old code admits no one any more."""
    code = secrets.token_urlsafe(16)
    session.execute(update(Ticket).where(Ticket.id == ticket.id)
                    .values(code=code, holder_id=holder_id, transferred_at=func.now()))
    session.expire(ticket, ["code", "holder_id", "transferred_at"])
    return code
