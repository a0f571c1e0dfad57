"""Passing a ticket on: the holder offers it by e-mail, the recipient accepts with the mail's link.

Accepting is one transaction: the offer's row and then the ticket's row are
locked (in that order, everywhere), the ticket checked again, and it gets a
new code and holder (inventory.reissue_ticket) while the offer keeps the old
code, so the door can answer "transferred". The door's check-in is a
conditional UPDATE of the ticket's row, so a holder checking in while the
recipient accepts cannot both win: whichever locks the row first does, and
the other is told what happened (the check-in sees a code that no longer
admits, found among the transferred; the acceptance sees a ticket already
checked in). Offering and withdrawing take the ticket's (or the offer's)
lock too. Each step is audited. The caller commits.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from webapp.models import Order, TicketStatus, TicketTransfer, User
from webapp.models.transfers import ACCEPTED, PENDING, WITHDRAWN
from webapp.services import audit
from webapp.services.errors import BookingError, InvalidRequest, NotFound
from webapp.services.messaging import outbox
from webapp.services.selling import inventory

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class TransferRefused(BookingError):
    """The ticket cannot be transferred (any more), or the offer is no longer open: nothing changed."""

    status_code = 409


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_RULES = text("""
SELECT e.transfers_enabled, now() < coalesce(e.transfers_until, e.starts_at) AS open, e.title
FROM events e WHERE e.id = :e
""")


def _refusal(session: Session, ticket) -> str | None:
    """Why this (locked) ticket cannot be passed on now, or None."""
    if ticket.status != TicketStatus.VALID:
        return _("This ticket was cancelled or refunded: it can no longer be transferred.")
    if ticket.checked_in_at is not None:
        return _("This ticket was checked in at the door: it can no longer be transferred.")
    if ticket.transferred_at is not None:
        return _("This ticket was already transferred once: it cannot be transferred again.")
    rules = session.execute(_RULES, {"e": ticket.event_id}).one()
    if not rules.transfers_enabled:
        return _("The organiser does not allow tickets for this event to be transferred.")
    if not rules.open:
        return _("Transfers for this event have closed.")
    return None


def _holder(session: Session, ticket) -> int:
    if ticket.holder_id is not None:
        return ticket.holder_id
    return session.execute(select(Order.user_id).where(Order.id == ticket.order_id)).scalar_one()


@dataclass(frozen=True)
class Offered:
    transfer: TicketTransfer
    token: str  # only in the recipient's mail; the database keeps its hash


def offer(session: Session, *, ticket_id: int, user_id: int, to_email: str) -> Offered:
    """Offer the holder's ticket to whoever reads the mail sent to `to_email`."""
    email = (to_email or "").strip().lower()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise InvalidRequest(_("Enter the e-mail address to send the ticket to."))
    ticket = inventory.lock_ticket(session, ticket_id)
    if ticket is None or _holder(session, ticket) != user_id:
        raise NotFound(_("No such ticket."))
    if (why := _refusal(session, ticket)) is not None:
        raise TransferRefused(why)
    sender = session.get_one(User, user_id)
    if email == sender.email:
        raise InvalidRequest(_("That is your own address: enter the recipient's."))
    if session.scalar(select(TicketTransfer.id).where(TicketTransfer.ticket_id == ticket.id,
                                                      TicketTransfer.status == PENDING)) is not None:
        raise TransferRefused(_("This ticket is already offered to someone: withdraw that offer first."))
    token = secrets.token_urlsafe(32)
    transfer = TicketTransfer(event_id=ticket.event_id, ticket_id=ticket.id, from_user_id=user_id, to_email=email,
                              token_hash=token_hash(token), status=PENDING)
    session.add(transfer)
    session.flush()
    audit.record(session, actor_id=user_id, action="ticket.transfer_offered", entity="ticket", entity_id=ticket.id,
                 event_id=ticket.event_id, after={"to_email": email, "transfer_id": transfer.id})
    outbox.queue(session, template="ticket_transfer", recipient=email, event_id=ticket.event_id,
                 params={"transfer_id": transfer.id, "token": token})
    return Offered(transfer, token)


def _lock_transfer(session: Session, **where) -> TicketTransfer | None:
    query = select(TicketTransfer).with_for_update().execution_options(populate_existing=True)
    for column, value in where.items():
        query = query.where(getattr(TicketTransfer, column) == value)
    return session.scalars(query).first()


def withdraw(session: Session, *, transfer_id: int, user_id: int) -> TicketTransfer:
    """The sender takes an offer back before it is accepted; its link stops working."""
    transfer = _lock_transfer(session, id=transfer_id, from_user_id=user_id)
    if transfer is None:
        raise NotFound(_("No such transfer."))
    if transfer.status != PENDING:
        raise TransferRefused(_("This transfer was already accepted.") if transfer.status == ACCEPTED
                              else _("This transfer was already withdrawn."))
    transfer.status = WITHDRAWN
    transfer.ended_at = func.now()
    session.flush()
    audit.record(session, actor_id=user_id, action="ticket.transfer_withdrawn", entity="ticket",
                 entity_id=transfer.ticket_id, event_id=transfer.event_id, after={"transfer_id": transfer.id})
    return transfer


def pending_by_token(session: Session, token: str) -> TicketTransfer | None:
    """The offer a link names, whatever became of it (None: no such link)."""
    if not token or len(token) > 100:
        return None
    return session.scalars(select(TicketTransfer).where(TicketTransfer.token_hash == token_hash(token))).first()


def accept(session: Session, *, token: str, user_id: int) -> TicketTransfer:
    """The recipient takes the ticket: a new code for them, the old one dead, in this one transaction."""
    if not token or len(token) > 100:
        raise NotFound(_("This transfer link is not valid."))
    # Lock order: the offer, then the ticket (as withdrawing and offering take them).
    transfer = _lock_transfer(session, token_hash=token_hash(token))
    if transfer is None:
        raise NotFound(_("This transfer link is not valid."))
    if transfer.status == WITHDRAWN:
        raise TransferRefused(_("The sender withdrew this transfer: the ticket stays theirs."))
    if transfer.status == ACCEPTED:
        if transfer.to_user_id == user_id:
            return transfer  # a second click on the link
        raise TransferRefused(_("This ticket was already accepted by someone else."))
    if transfer.from_user_id == user_id:
        raise InvalidRequest(_("You sent this ticket: the recipient accepts it from their own account."))
    ticket = inventory.lock_ticket(session, transfer.ticket_id)
    assert ticket is not None  # tickets are never deleted
    if (why := _refusal(session, ticket)) is not None:
        raise TransferRefused(why)
    old_code = ticket.code
    inventory.reissue_ticket(session, ticket, holder_id=user_id)
    transfer.status = ACCEPTED
    transfer.to_user_id = user_id
    transfer.old_code = old_code
    transfer.ended_at = func.now()
    session.flush()
    audit.record(session, actor_id=user_id, action="ticket.transferred", entity="ticket", entity_id=ticket.id,
                 event_id=ticket.event_id, before={"holder_id": transfer.from_user_id},
                 after={"holder_id": user_id, "transfer_id": transfer.id})
    return transfer


def transferred_code(session: Session, code: str) -> TicketTransfer | None:
    """The accepted transfer that retired this code, if one did (for the door's answer)."""
    return session.scalars(select(TicketTransfer).where(TicketTransfer.old_code == code,
                                                        TicketTransfer.status == ACCEPTED)).first()
