"""Pay for a hold and turn it into an order with tickets; cancel orders.

Paying is three short transactions, never one long one, so that no row lock
is held while the gateway thinks (a slow card takes seconds):

1. `begin_payment`: lock the hold, make sure it is live (or take its units
   again if it lapsed and they are still free), record a *pending* attempt.
   The partial unique index on pending attempts makes this the only checkout
   in flight for the hold; the sweep leaves a hold with a payment in flight.
2. the gateway charges, idempotently on the attempt's key;
3. `settle_payment`: lock the hold again, record the verdict and, if approved,
   convert the hold into an order with tickets.

If the process dies between 2 and 3, `reconcile_stale_payments` (run by the
sweep) asks the gateway what happened and finishes the job, so an approved
charge always ends as an order.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.models import (
    EventStatus,
    Hold,
    HoldKind,
    HoldStatus,
    Order,
    OrderStatus,
    PaymentAttempt,
    PaymentStatus,
    Ticket,
    TicketStatus,
    UnitStatus,
)
from webapp.services import inventory, outbox, waitlist
from webapp.services.errors import (
    HoldExpired,
    HoldNotActive,
    InvalidRequest,
    NotFound,
    OrderNotCancellable,
    PaymentDeclined,
    PaymentInProgress,
    SalesClosed,
)
from webapp.services.gateway import Card, ChargeResult, PaymentGateway

log = logging.getLogger(__name__)

NO_CHARGE = "no_charge"


@dataclass(frozen=True)
class PaymentResult:
    attempt_id: int
    order_id: int | None


def _order_for_hold(session: Session, hold_id: int) -> Order | None:
    return session.scalars(select(Order).where(Order.hold_id == hold_id)).first()


def _replay(session: Session, attempt: PaymentAttempt) -> PaymentResult:
    """The answer already given for this idempotency key."""
    if attempt.status == PaymentStatus.PENDING:
        raise PaymentInProgress()
    if attempt.status == PaymentStatus.APPROVED:
        order = _order_for_hold(session, attempt.hold_id)
        return PaymentResult(attempt.id, order.id if order else None)
    raise PaymentDeclined(attempt.decline_code or "failed", attempt.decline_message or "Payment failed.")


def _is_past_expiry(session: Session, hold: Hold) -> bool:
    return session.execute(
        text("SELECT expires_at <= now() FROM holds WHERE id = :h"), {"h": hold.id}
    ).scalar_one()


def _take_units_again(session: Session, hold: Hold) -> None:
    """A lapsed hold may be paid for only if all its units are still free.

    The units are locked in id order, exactly like a fresh reservation, and
    the waiting list keeps its priority: a tier people wait for is not free.
    """
    rows = session.execute(
        text("SELECT id, status, hold_id, tier_id FROM units WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"),
        {"ids": hold.unit_ids},
    ).all()
    reserved = waitlist.tiers_reserved_for_line(session, hold.event_id)
    if len(rows) != len(hold.unit_ids) or any(
        r.status != UnitStatus.AVAILABLE or r.tier_id in reserved for r in rows
    ):
        raise HoldExpired()
    other = session.execute(
        text("SELECT 1 FROM holds WHERE user_id = :u AND event_id = :e AND status = 'active' AND kind = 'purchase'"),
        {"u": hold.user_id, "e": hold.event_id},
    ).first()
    if other is not None:
        raise HoldExpired("This reservation has expired; you already have a newer one for this event.")
    hold.status = HoldStatus.ACTIVE
    hold.ended_at = None
    hold.end_reason = None
    hold.expires_at = inventory._hold_expiry_sql(hold.event.hold_minutes)
    # An offer that ran out is no longer an offer: its entry has lapsed and
    # nobody waits for these units, so it is paid like any late basket.
    hold.kind = HoldKind.PURCHASE
    session.flush()
    inventory._mark_held(session, hold)


def begin_payment(session: Session, *, hold_id: int, user_id: int, idempotency_key: str,
                  card: Card) -> PaymentAttempt | PaymentResult:
    """Phase 1: make sure the hold is ours and live, and record a pending attempt.

    Returns the earlier result when this key was already used.
    """
    if not idempotency_key or len(idempotency_key) > 64:
        raise InvalidRequest("Missing or invalid checkout key; reload the page and try again.")
    hold = inventory.lock_hold(session, hold_id, user_id)

    previous = session.scalars(
        select(PaymentAttempt).where(PaymentAttempt.idempotency_key == idempotency_key)
    ).first()
    if previous is not None:
        if previous.hold_id != hold.id:
            raise InvalidRequest("This checkout key belongs to another reservation.")
        return _replay(session, previous)

    if hold.status == HoldStatus.CONVERTED:
        order = _order_for_hold(session, hold.id)
        return PaymentResult(0, order.id if order else None)
    if hold.status == HoldStatus.RELEASED:
        raise HoldNotActive("This reservation was released. Pick your tickets again.")
    if hold.event.status == EventStatus.CANCELLED:
        # Reserving reads the event's status without a lock, so a hold can be
        # made in the instant an admin cancels; it must never be paid for.
        raise SalesClosed("This event was cancelled; nothing was charged.")

    if hold.status == HoldStatus.ACTIVE and _is_past_expiry(session, hold):
        # Ran out, not yet swept: expire it properly first, so the waiting
        # list gets its chance, then see whether the units are still free.
        inventory.release_hold(session, hold, status=HoldStatus.EXPIRED, reason="expired")
    if hold.status == HoldStatus.EXPIRED:
        _take_units_again(session, hold)

    attempt = PaymentAttempt(
        event_id=hold.event_id, hold_id=hold.id, user_id=user_id, idempotency_key=idempotency_key,
        amount_minor=hold.total_minor, currency=hold.currency, card_last4=card.last4,
        status=PaymentStatus.PENDING,
    )
    session.add(attempt)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        # Another checkout of this hold is in flight (a second tab).
        raise PaymentInProgress() from None
    return attempt


def settle_payment(session: Session, *, attempt_id: int, result: ChargeResult,
                   gateway_refund) -> PaymentResult:
    """Phase 3: record the gateway's verdict; on approval, confirm the order."""
    attempt = session.scalars(
        select(PaymentAttempt).where(PaymentAttempt.id == attempt_id)
    ).one()
    hold = inventory.lock_hold(session, attempt.hold_id)
    session.refresh(attempt, with_for_update=True)
    if attempt.status != PaymentStatus.PENDING:
        return _replay(session, attempt)  # reconciliation got here first

    attempt.gateway_reference = result.reference or None
    attempt.completed_at = text("now()")
    if result.outcome == NO_CHARGE:
        attempt.status = PaymentStatus.FAILED
        attempt.decline_code = NO_CHARGE
        attempt.decline_message = "The payment did not go through. Nothing was charged."
    elif not result.approved:
        attempt.status = PaymentStatus.DECLINED
        attempt.decline_code = result.outcome
        attempt.decline_message = result.message
    elif hold.status != HoldStatus.ACTIVE:
        # The sweep leaves holds with a payment in flight alone, so only an
        # admin action (event cancelled) ends one mid-payment. The money
        # goes straight back rather than into an order for units now gone.
        gateway_refund(result.reference, attempt.amount_minor)
        attempt.status = PaymentStatus.FAILED
        attempt.decline_code = "hold_ended"
        attempt.decline_message = "Your reservation ended during payment; the charge was refunded."
    else:
        attempt.status = PaymentStatus.APPROVED
        session.flush()
        order = _confirm(session, hold, attempt)
        return PaymentResult(attempt.id, order.id)
    session.flush()
    return PaymentResult(attempt.id, None)


def _confirm(session: Session, hold: Hold, attempt: PaymentAttempt) -> Order:
    """Turn a paid hold into an order with one ticket per unit."""
    order = Order(
        event_id=hold.event_id, user_id=hold.user_id, hold_id=hold.id, payment_attempt_id=attempt.id,
        status=OrderStatus.CONFIRMED, total_minor=hold.total_minor, currency=hold.currency,
    )
    session.add(order)
    session.flush()
    sold = session.execute(
        text(
            "UPDATE units SET status = 'sold', hold_id = NULL WHERE hold_id = :h"
            " RETURNING id, tier_id"
        ),
        {"h": hold.id},
    ).all()
    prices = {t.id: t.price_minor for t in hold.event.tiers}
    session.execute(
        Ticket.__table__.insert(),
        [
            dict(event_id=hold.event_id, order_id=order.id, unit_id=r.id, tier_id=r.tier_id,
                 code=secrets.token_urlsafe(16), status=TicketStatus.VALID.value,
                 price_minor=prices[r.tier_id])
            for r in sorted(sold)
        ],
    )
    hold.status = HoldStatus.CONVERTED
    hold.ended_at = text("now()")
    hold.end_reason = "paid"
    session.flush()
    inventory.touch_inventory(session, hold.event_id)
    if hold.waitlist_entry_id is not None:
        waitlist.offer_accepted(session, hold)
    outbox.queue_order_confirmation(session, order)
    return order


def pay(session: Session, gateway: PaymentGateway, *, hold_id: int, user_id: int, idempotency_key: str,
        card: Card) -> PaymentResult:
    """The whole checkout: three transactions around the gateway call.

    Commits on its own, because a charge must never sit inside an open
    transaction (see the module docstring).
    """
    started = begin_payment(session, hold_id=hold_id, user_id=user_id, idempotency_key=idempotency_key, card=card)
    if isinstance(started, PaymentResult):
        session.rollback()
        return started
    attempt_id, amount, currency = started.id, started.amount_minor, started.currency
    session.commit()

    result = gateway.charge(idempotency_key=idempotency_key, amount_minor=amount, currency=currency, card=card)
    outcome = settle_payment(session, attempt_id=attempt_id, result=result, gateway_refund=gateway.refund)
    session.commit()
    log.info("payment.settled", extra={"hold_id": hold_id, "user_id": user_id, "attempt_id": attempt_id,
                                        "outcome": result.outcome, "order_id": outcome.order_id})
    if outcome.order_id is None:
        raise PaymentDeclined(result.outcome, result.message)
    return outcome


def reconcile_stale_payments(session: Session, gateway: PaymentGateway, *, older_than_seconds: int,
                             limit: int = 50) -> int:
    """Settle payments left pending by a crash, by asking the gateway."""
    stale = session.execute(
        text(
            "SELECT id, idempotency_key FROM payment_attempts WHERE status = 'pending'"
            " AND created_at < now() - make_interval(secs => :s) ORDER BY id LIMIT :n"
        ),
        {"s": older_than_seconds, "n": limit},
    ).all()
    settled = 0
    for attempt_id, key in stale:
        # No record at the gateway means the charge never reached it.
        result = gateway.retrieve(key) or ChargeResult(outcome=NO_CHARGE, reference="")
        outcome = settle_payment(session, attempt_id=attempt_id, result=result, gateway_refund=gateway.refund)
        session.commit()
        settled += 1
        log.warning("payment.reconciled", extra={"attempt_id": attempt_id, "order_id": outcome.order_id})
    return settled


def cancel_order(session: Session, gateway: PaymentGateway, *, order_id: int, user_id: int | None,
                 reason: str, refund: bool = True) -> Order:
    """Cancel a confirmed order: void its tickets, refund, free its units.

    `user_id` restricts the order to its buyer (None: an admin acting).
    The freed units go to the waiting list first.
    """
    query = select(Order).where(Order.id == order_id).with_for_update()
    if user_id is not None:
        query = query.where(Order.user_id == user_id)
    order = session.scalars(query).first()
    if order is None:
        raise NotFound("No such order.")
    if order.status != OrderStatus.CONFIRMED:
        raise OrderNotCancellable("This order is already cancelled.")
    if user_id is not None:
        started = session.execute(
            text("SELECT starts_at <= now() FROM events WHERE id = :e"), {"e": order.event_id}
        ).scalar_one()
        if started:
            raise OrderNotCancellable("The event has started; this order can no longer be cancelled.")

    unit_ids = [t.unit_id for t in order.tickets if t.status == TicketStatus.VALID]
    session.execute(
        text("SELECT id FROM units WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"), {"ids": unit_ids}
    )
    session.execute(
        text("UPDATE tickets SET status = 'void' WHERE order_id = :o AND status = 'valid'"), {"o": order.id}
    )
    session.execute(
        text("UPDATE units SET status = 'available' WHERE id = ANY(:ids) AND status = 'sold'"), {"ids": unit_ids}
    )
    order.status = OrderStatus.REFUNDED if refund else OrderStatus.CANCELLED
    order.cancelled_at = text("now()")
    order.cancel_reason = reason
    session.flush()
    inventory.touch_inventory(session, order.event_id)
    if refund:
        attempt = session.get(PaymentAttempt, order.payment_attempt_id)
        # Idempotent on the provider's side: if our commit fails after this,
        # a retried cancel refunds nothing twice.
        gateway.refund(attempt.gateway_reference, order.total_minor)
    waitlist.offer_released_units(session, order.event_id)
    session.expire(order, ["tickets"])
    return order
