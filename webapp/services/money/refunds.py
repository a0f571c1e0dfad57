"""Refunds, whole or in part: each a row with a state, made at the gateway under its own key.

A refund gives back a whole order, some of its tickets, or an amount, with a
reason. Like a payment it is made in short steps, never holding a lock while
the gateway thinks:

1. `request_refund` (under the order's row lock): check what may be given
   back, record the refund as *requested* with a fresh idempotency key, void
   the tickets it gives back (void at the door from that moment) and free
   their units (the waiting list first), issue the credit note, tell the
   buyer. The caller commits.
2. `send_refund`, after the caller committed step 1: ask the gateway, under the refund's key, and record its
   answer: *succeeded*, or *failed* on a definitive refusal. A gateway that
   cannot be reached leaves the refund *requested*; the sweep
   (`retry_requested_refunds`) asks again under the same key, so a refund
   is never made twice, until `max_tries`, when it is marked failed for a
   person to look at.

The order's lock is what makes two admins refunding the same ticket (or the
last euro) at once give one refund: the second waits, then sees the first.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from webapp.models import Order, OrderStatus, PaymentAttempt, Refund, RefundState, RefundTicket, Ticket, TicketStatus
from webapp.services.errors import InvalidRequest, NotFound, OrderNotCancellable
from webapp.services.money import captures, invoices
from webapp.services.money.gateway import PaymentGateway, RefundRefused
from webapp.services.selling import inventory

log = logging.getLogger(__name__)

MAX_TRIES = 8


@dataclass(frozen=True)
class Balance:
    """An order's money: paid = refunded + pending + outstanding (what the buyer still has paid)."""

    paid_minor: int
    refunded_minor: int  # succeeded
    pending_minor: int  # requested, not yet confirmed by the gateway

    @property
    def outstanding_minor(self) -> int:
        return self.paid_minor - self.refunded_minor - self.pending_minor


_SUMS = text(
    "SELECT coalesce(sum(amount_minor) FILTER (WHERE state = 'succeeded'), 0) AS refunded,"
    " coalesce(sum(amount_minor) FILTER (WHERE state = 'requested'), 0) AS pending"
    " FROM refunds WHERE order_id = :o"
)


def balance(session: Session, order: Order) -> Balance:
    """What was paid for the order, given back, on its way back, and left."""
    sums = session.execute(_SUMS, {"o": order.id}).one()
    return Balance(order.total_minor, sums.refunded, sums.pending)


def _lock_order(session: Session, order_id: int, buyer_id: int | None) -> Order:
    query = select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    if buyer_id is not None:
        # A door sale is in its clerk's name, but it is not the clerk's to give back.
        query = query.where(Order.user_id == buyer_id, Order.sold_by.is_(None))
    order = session.scalars(query).first()
    if order is None:
        raise NotFound(_("No such order."))
    return order


def request_refund(session: Session, *, order_id: int, reason: str, actor_id: int | None,
                   ticket_ids: list[int] | None = None, amount_minor: int | None = None,
                   whole: bool = False, keep_minor: int = 0, buyer_id: int | None = None,
                   key: str | None = None) -> Refund:
    """Record a refund of the whole order, of these tickets, or of an amount; the caller commits.

    `keep_minor` is a cancellation fee kept back from a ticket refund.
    `buyer_id` restricts the order to its buyer. `key` is the gateway's
    idempotency key when the caller needs a fixed one (a fresh one otherwise). Raises InvalidRequest (400)
    for what can never be refunded (a ticket of another order, a negative
    amount, more than is left) and OrderNotCancellable (409) for what was
    refunded already; nothing is changed then.
    """
    if sum(x is not None and x is not False for x in (ticket_ids, amount_minor, whole or None)) != 1:
        raise InvalidRequest(_("Refund the whole order, some of its tickets, or an amount: one of them."))
    reason = (reason or "").strip()
    if not reason:
        raise InvalidRequest(_("Say why the refund is made."))
    order = _lock_order(session, order_id, buyer_id)
    if order.status != OrderStatus.CONFIRMED:
        if order.status == OrderStatus.REFUNDED:
            raise OrderNotCancellable(_("Order #%(id)s is refunded: there is nothing left to refund.", id=order.id))
        raise OrderNotCancellable(_("Order #%(id)s is cancelled: there is nothing left to refund.", id=order.id))
    if order.channel == "box_office":
        # No gateway holds its money: the counter gives it back, and the order is cancelled without a refund.
        raise InvalidRequest(_("Order #%(id)s was paid in person at the box office: give the money back there,"
                               " then cancel the order without a refund.", id=order.id))
    tickets = list(session.scalars(select(Ticket).where(Ticket.order_id == order.id).order_by(Ticket.id)))
    valid = {t.id: t for t in tickets if t.status == TicketStatus.VALID}
    left = balance(session, order).outstanding_minor

    if whole:
        giving_back = list(valid.values())
        amount = left
    elif ticket_ids is not None:
        if not ticket_ids:
            raise InvalidRequest(_("Choose at least one ticket to refund."))
        mine = {t.id for t in tickets}
        strangers = sorted(set(ticket_ids) - mine)
        if strangers:
            raise InvalidRequest(_("Ticket %(ticket)s is not part of order #%(id)s.", ticket=strangers[0], id=order.id))
        gone = sorted(set(ticket_ids) - set(valid))
        if gone:
            raise OrderNotCancellable(_("Ticket %(ticket)s was refunded or cancelled already.", ticket=gone[0]))
        giving_back = [valid[i] for i in sorted(set(ticket_ids))]
        amount = min(sum(t.price_minor for t in giving_back), left)
        if len(giving_back) == len(valid):
            amount = left  # the last tickets take what is left, whatever was given back as amounts before
    else:
        assert amount_minor is not None
        if amount_minor <= 0:
            raise InvalidRequest(_("The amount to refund must be more than zero."))
        if amount_minor > left:
            raise InvalidRequest(_("That is more than is left to refund on order #%(id)s (%(left)s).", id=order.id,
                                   left=f"{left / 100:.2f} {order.currency}"))
        if amount_minor == order.total_minor:
            raise InvalidRequest(_("To give back everything, refund the whole order: its tickets are void then."))
        giving_back = []
        amount = amount_minor
    if keep_minor:
        amount = max(0, amount - keep_minor)

    refund = Refund(event_id=order.event_id, order_id=order.id, amount_minor=amount, currency=order.currency,
                    reason=reason[:200], actor_id=actor_id, idempotency_key=key or "rf_" + secrets.token_urlsafe(24),
                    state=RefundState.REQUESTED.value)
    if amount == 0 and not giving_back:
        raise InvalidRequest(_("There is nothing left to refund on this order."))
    if amount == 0:  # the fee kept everything: nothing goes to the gateway
        refund.state = RefundState.SUCCEEDED.value
        refund.completed_at = func.now()
    session.add(refund)
    order.refunded_minor += amount
    session.flush()
    if giving_back:
        ids = [t.id for t in giving_back]
        session.execute(text("UPDATE tickets SET status = 'void' WHERE id = ANY(:ids)"), {"ids": ids})
        session.execute(RefundTicket.__table__.insert(), [{"refund_id": refund.id, "ticket_id": i} for i in ids])
        if len(giving_back) == len(valid):
            order.status = OrderStatus.REFUNDED
            order.cancelled_at = func.now()
            order.cancel_reason = reason[:200]
        session.flush()
        inventory.free_sold_units(session, event_id=order.event_id, unit_ids=[t.unit_id for t in giving_back])
        session.expire(order, ["tickets"])
    if amount > 0:
        invoices.issue_credit_note(session, order, refund)
    log.info("refund.requested", extra={"order_id": order.id, "refund_id": refund.id, "amount_minor": amount,
                                        "tickets": len(giving_back)})
    return refund


def send_refund(session: Session, gateway: PaymentGateway, refund: Refund, *, max_tries: int = MAX_TRIES) -> Refund:
    """Ask the gateway to make a requested refund, under its key, and record the answer; the caller commits."""
    if refund.state != RefundState.REQUESTED.value:
        return refund
    attempt_id, reference, paid, captured_at = session.execute(
        select(PaymentAttempt.id, PaymentAttempt.gateway_reference, PaymentAttempt.amount_minor,
               PaymentAttempt.captured_at).join(Order, Order.payment_attempt_id == PaymentAttempt.id)
        .where(Order.id == refund.order_id)
    ).one()
    refund.tries += 1
    try:
        gateway.refund(reference or "", refund.amount_minor, idempotency_key=refund.idempotency_key)
    except (RefundRefused, LookupError) as refused:
        _fail(session, refund, str(refused))
        log.error("refund.refused", extra={"refund_id": refund.id, "error": refund.error})
    except Exception as error:  # the provider unreachable: the sweep asks again under the same key
        refund.error = repr(error)[:200]
        if refund.tries >= max_tries:
            _fail(session, refund, refund.error)
        log.warning("refund.deferred", extra={"refund_id": refund.id, "error": refund.error})
    else:
        refund.state = RefundState.SUCCEEDED.value
        refund.error = None
        refund.completed_at = func.now()
        if captured_at is None and refund.amount_minor < paid:
            # Part of an authorisation given back: both gateways capture it first, then refund the part.
            captures.note_captured(session, attempt_id)
    session.flush()
    return refund


_STALE = text(
    "SELECT id FROM refunds WHERE state = 'requested' AND created_at < now() - make_interval(secs => :s)"
    " ORDER BY created_at LIMIT :n FOR UPDATE SKIP LOCKED"
)


def retry_requested_refunds(session: Session, gateway: PaymentGateway, *, older_than_seconds: float,
                            limit: int = 50, max_tries: int = MAX_TRIES) -> int:
    """The sweep: ask the gateway again for refunds left requested (a crash, an outage); returns how many settled."""
    settled = 0
    for refund_id in session.execute(_STALE, {"s": older_than_seconds, "n": limit}).scalars().all():
        refund = session.get_one(Refund, refund_id)
        if send_refund(session, gateway, refund, max_tries=max_tries).state != RefundState.REQUESTED.value:
            settled += 1
    session.commit()
    return settled


_CANCEL_TERMS = text(
    "SELECT starts_at <= now() AS started,"
    " cancel_until_hours IS NOT NULL AND starts_at - make_interval(hours => cancel_until_hours) <= now() AS too_late,"
    " cancel_until_hours, cancel_fee_minor, cancel_fee_percent FROM events WHERE id = :e"
)


def buyer_cancel_fee(session: Session, order: Order) -> int:
    """What the organiser keeps when the buyer cancels now; OrderNotCancellable past the policy's deadline."""
    terms = session.execute(_CANCEL_TERMS, {"e": order.event_id}).one()
    if terms.started:
        raise OrderNotCancellable(_("The event has started; this order can no longer be cancelled."))
    if terms.too_late:
        raise OrderNotCancellable(ngettext("The organiser allows cancelling until %(num)s hour before the start;"
                                           " that time has passed.",
                                           "The organiser allows cancelling until %(num)s hours before the start;"
                                           " that time has passed.", terms.cancel_until_hours))
    return terms.cancel_fee_minor + order.total_minor * terms.cancel_fee_percent // 100


def _fail(session: Session, refund: Refund, error: str) -> None:
    """A refund that will not be made: its amount no longer counts as given back (the order's kept sum)."""
    refund.state = RefundState.FAILED.value
    refund.error = error[:200]
    refund.completed_at = func.now()
    session.execute(text("UPDATE orders SET refunded_minor = refunded_minor - :a WHERE id = :o"),
                    {"a": refund.amount_minor, "o": refund.order_id})


def refunds_of(session: Session, order_id: int) -> list[Refund]:
    return list(session.scalars(select(Refund).where(Refund.order_id == order_id).order_by(Refund.id)))
