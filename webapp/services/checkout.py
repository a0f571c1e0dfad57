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

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from webapp.models import (
    Event,
    EventStatus,
    Hold,
    HoldStatus,
    Order,
    OrderStatus,
    PaymentAttempt,
    PaymentStatus,
    Ticket,
    TicketStatus,
    Tier,
)
from webapp.services import inventory, outbox, waitlist
from webapp.services.errors import (
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


@dataclass(frozen=True)
class StartedPayment:
    """Phase 1's outcome: a pending attempt, recorded."""

    id: int
    hold_id: int
    amount_minor: int
    currency: str


_RECORD_PENDING = text(
    "INSERT INTO payment_attempts"
    " (event_id, hold_id, user_id, idempotency_key, amount_minor, currency, card_last4, status)"
    " VALUES (:e, :h, :u, :k, :a, :c, :l, 'pending')"
    # Conflicts are answers, not errors: the key was used before, or another
    # checkout of this hold is in flight (the partial unique index).
    " ON CONFLICT DO NOTHING RETURNING id"
)


def _lock_hold_for_payment(session: Session, hold_id: int, user_id: int) -> tuple[Hold, bool, EventStatus]:
    """The hold row locked, with whether it ran out and its event's status: one statement."""
    row = session.execute(
        select(Hold, (Hold.expires_at <= func.now()).label("past"), Event.status)
        .join(Event, Event.id == Hold.event_id)
        .where(Hold.id == hold_id, Hold.user_id == user_id)
        .with_for_update(of=Hold)
    ).first()
    if row is None:
        raise NotFound("No such reservation.")
    return row[0], row[1], row[2]


def begin_payment(session: Session, *, hold_id: int, user_id: int, idempotency_key: str,
                  card: Card) -> StartedPayment | PaymentResult:
    """Phase 1: make sure the hold is ours and live, and record a pending attempt.

    Returns the earlier result when this key was already used.
    """
    if not idempotency_key or len(idempotency_key) > 64:
        raise InvalidRequest("Missing or invalid checkout key; reload the page and try again.")
    hold, past_expiry, event_status = _lock_hold_for_payment(session, hold_id, user_id)

    if hold.status == HoldStatus.CONVERTED:
        previous = _attempt_by_key(session, idempotency_key)
        if previous is not None and previous.hold_id != hold.id:
            raise InvalidRequest("This checkout key belongs to another reservation.")
        order = _order_for_hold(session, hold.id)
        return PaymentResult(previous.id if previous else 0, order.id if order else None)
    if hold.status == HoldStatus.RELEASED:
        if (previous := _attempt_by_key(session, idempotency_key)) is not None:
            return _replay_for(session, previous, hold)
        raise HoldNotActive("This reservation was released. Pick your tickets again.")
    if event_status == EventStatus.CANCELLED:
        if (previous := _attempt_by_key(session, idempotency_key)) is not None:
            return _replay_for(session, previous, hold)
        # Reserving reads the event's status without a lock, so a hold can be
        # made in the instant an admin cancels; it must never be paid for.
        raise SalesClosed("This event was cancelled; nothing was charged.")

    if hold.status == HoldStatus.ACTIVE and past_expiry:
        # Ran out, not yet swept: expire it properly first, so the waiting
        # list gets its chance, then see whether the units are still free.
        if (previous := _attempt_by_key(session, idempotency_key)) is not None:
            return _replay_for(session, previous, hold)
        inventory.release_hold(session, hold, status=HoldStatus.EXPIRED, reason="expired")
    if hold.status == HoldStatus.EXPIRED:
        if (previous := _attempt_by_key(session, idempotency_key)) is not None:
            return _replay_for(session, previous, hold)
        inventory.take_units_again(session, hold)

    session.flush()
    attempt_id = session.execute(_RECORD_PENDING, {
        "e": hold.event_id, "h": hold.id, "u": user_id, "k": idempotency_key, "a": hold.total_minor,
        "c": hold.currency, "l": card.last4,
    }).scalar()
    if attempt_id is None:
        previous = _attempt_by_key(session, idempotency_key)
        if previous is None:
            raise PaymentInProgress()  # another tab's checkout of this hold is in flight
        return _replay_for(session, previous, hold)
    return StartedPayment(attempt_id, hold.id, hold.total_minor, hold.currency)


def _attempt_by_key(session: Session, idempotency_key: str) -> PaymentAttempt | None:
    return session.scalars(
        select(PaymentAttempt).where(PaymentAttempt.idempotency_key == idempotency_key)
    ).first()


def _replay_for(session: Session, previous: PaymentAttempt, hold: Hold) -> PaymentResult:
    if previous.hold_id != hold.id:
        raise InvalidRequest("This checkout key belongs to another reservation.")
    return _replay(session, previous)


def settle_payment(session: Session, *, attempt_id: int, result: ChargeResult,
                   gateway_refund, hold_id: int | None = None) -> PaymentResult:
    """Phase 3: record the gateway's verdict; on approval, confirm the order."""
    if hold_id is None:
        hold_id = session.execute(
            select(PaymentAttempt.hold_id).where(PaymentAttempt.id == attempt_id)).scalar_one()
    # Lock order: the hold first, then its attempt (as phase 1 and the sweep do).
    hold = inventory.lock_hold(session, hold_id)
    attempt = session.scalars(
        select(PaymentAttempt).where(PaymentAttempt.id == attempt_id).with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if attempt.status != PaymentStatus.PENDING:
        return _replay(session, attempt)  # reconciliation got here first

    attempt.gateway_reference = result.reference or None
    attempt.completed_at = func.now()
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
    sold = inventory.sell_hold(session, hold)
    # The price held is the price paid (a tier repriced since does not change it);
    # holds from before prices were kept per unit take the tier's.
    held_at = dict(zip(hold.unit_ids, hold.unit_prices or [], strict=False))
    tier_prices = {tier_id: price for tier_id, price in session.execute(
        select(Tier.id, Tier.price_minor).where(Tier.event_id == hold.event_id)).all()} if not held_at else {}
    session.execute(
        Ticket.__table__.insert(),
        [
            dict(event_id=hold.event_id, order_id=order.id, unit_id=unit_id, tier_id=tier_id,
                 code=secrets.token_urlsafe(16), status=TicketStatus.VALID.value,
                 price_minor=held_at[unit_id] if held_at else tier_prices[tier_id])
            for unit_id, tier_id in sold
        ],
    )
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
    outcome = settle_payment(session, attempt_id=attempt_id, result=result, gateway_refund=gateway.refund,
                             hold_id=hold_id)
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
        text("UPDATE tickets SET status = 'void' WHERE order_id = :o AND status = 'valid'"), {"o": order.id}
    )
    order.status = OrderStatus.REFUNDED if refund else OrderStatus.CANCELLED
    order.cancelled_at = func.now()
    order.cancel_reason = reason
    session.flush()
    if refund:
        attempt = session.get_one(PaymentAttempt, order.payment_attempt_id)
        # Idempotent on the provider's side: if our commit fails after this,
        # a retried cancel refunds nothing twice.
        gateway.refund(attempt.gateway_reference or "", order.total_minor)
    inventory.free_sold_units(session, event_id=order.event_id, unit_ids=unit_ids)
    session.expire(order, ["tickets"])
    return order


def cancel_by_buyer(session: Session, gateway: PaymentGateway, *, order_id: int, user_id: int) -> Order:
    """The buyer cancels their own order: refunded, units freed, and the buyer mailed. The caller commits."""
    order = cancel_order(session, gateway, order_id=order_id, user_id=user_id, reason="cancelled by buyer")
    outbox.queue(session, template="order_cancelled", recipient=order.user.email, event_id=order.event_id,
                 params={"order_id": order.id})
    return order
