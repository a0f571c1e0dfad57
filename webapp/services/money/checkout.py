"""Pay for a hold and turn it into an order with tickets; cancel orders.

Paying is three short transactions, never one long one, so that no row lock
is held while the gateway thinks (a slow card takes seconds):

1. `begin_payment`: lock the hold, make sure it is live (or take its units
   again if it lapsed and they are still free), record a *pending* attempt.
   The partial unique index on pending attempts makes this the only checkout
   in flight for the hold, so several tabs never reach the gateway twice;
   the sweep leaves a hold with a payment in flight.
2. the gateway *authorises* the amount, idempotently on the attempt's key;
3. `settle_payment`: lock the hold again and record the verdict. Approved
   and the hold still live: the order is made, committed, and only then is
   the authorisation *captured*. Approved but the hold ended meanwhile (an
   admin cancelled the event, the buyer reserved afresh in another tab): the
   authorisation is voided, so the buyer is never charged and refunded.

If the process dies or the gateway is slow, `reconcile_stale_payments` (run
by the sweep) asks the gateway and acts only on a definitive answer: an
authorisation becomes an order (or is voided, as above); a decline or a void
settles the attempt as failed; "no record yet" is never taken as a decline.
It waits, and only after `void_after_seconds` voids the key, under the hold's
lock, before saying nothing was charged. It also captures authorisations
whose order was committed but whose capture never happened.

A provider may answer the authorisation with "requires action" (3-D Secure):
the attempt then stays pending, so the hold does not end under it (the
sweep leaves a hold with a payment in flight), the buyer's browser finishes
it with the provider, and `finish_payment` (or a webhook, or the sweep)
settles it from `retrieve`, exactly as reconciliation does.
"""
from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, literal_column, select, text
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
from webapp.services.errors import (
    BillingRequired,
    HoldNotActive,
    InvalidRequest,
    NotFound,
    OrderNotCancellable,
    PaymentDeclined,
    PaymentInProgress,
    PaymentNeedsAction,
    SalesClosed,
    TooSoonAgain,
)
from webapp.services.messaging import language, outbox
from webapp.services.money import captures, instrument_limit, invoices, refunds
from webapp.services.money.gateway import (
    AUTHORISED,
    CAPTURED,
    REQUIRES_ACTION,
    VOIDED,
    Card,
    ChargeResult,
    GatewayUnavailable,
    PaymentGateway,
    PaymentMethodId,
)
from webapp.services.selling import attendees, codes, inventory
from webapp.services.waiting import waitlist

log = logging.getLogger(__name__)

NO_CHARGE = "no_charge"


@dataclass(frozen=True)
class PaymentResult:
    attempt_id: int
    order_id: int | None
    decline_code: str | None = None
    decline_message: str | None = None


def _order_for_hold(session: Session, hold_id: int) -> Order | None:
    return session.scalars(select(Order).where(Order.hold_id == hold_id)).first()


def _verdict(session: Session, attempt: PaymentAttempt) -> PaymentResult:
    """What a settled attempt came to."""
    if attempt.status == PaymentStatus.APPROVED:
        order = _order_for_hold(session, attempt.hold_id)
        return PaymentResult(attempt.id, order.id if order else None)
    return PaymentResult(attempt.id, None, attempt.decline_code or "failed",
                         attempt.decline_message or _("Payment failed."))


def _replay(session: Session, attempt: PaymentAttempt) -> PaymentResult:
    """The answer already given for this idempotency key."""
    if attempt.status == PaymentStatus.PENDING:
        raise PaymentInProgress()
    verdict = _verdict(session, attempt)
    if verdict.order_id is None and attempt.status != PaymentStatus.APPROVED:
        raise PaymentDeclined(verdict.decline_code or "failed", verdict.decline_message or _("Payment failed."))
    return verdict


@dataclass(frozen=True)
class StartedPayment:
    """Phase 1's outcome: a pending attempt, recorded."""

    id: int
    hold_id: int
    amount_minor: int
    currency: str


_RECORD_PENDING = text(
    "INSERT INTO payment_attempts"
    " (event_id, hold_id, user_id, idempotency_key, amount_minor, currency, card_last4, status, billing_name,"
    "  billing_address, locale) VALUES (:e, :h, :u, :k, :a, :c, :l, 'pending', :bn, :ba, :lang)"
    # Conflicts are answers, not errors: the key was used before, or another
    # checkout of this hold is in flight (the partial unique index).
    " ON CONFLICT DO NOTHING RETURNING id"
)


# What the hold page asks (attendees.asked), read with the hold's lock: paying costs no statement more.
_ASKED: tuple[Any, ...] = (
    Event.attendee_names,
    literal_column(attendees.questions_json("events.id")).label("questions"),
    literal_column("(SELECT json_agg(json_build_array(u.id, u.tier_id) ORDER BY u.id) FROM units u"
                   " WHERE u.id = ANY(holds.unit_ids))").label("unit_tiers"),
)


def _lock_hold_for_payment(session: Session, hold_id: int, user_id: int, *,
                           asked: bool = False) -> tuple[Hold, bool, EventStatus, bool, bool, attendees.Asked | None]:
    """The hold row locked, with whether it ran out, its event's status, whether sales ended and whether the
    organiser asks for a billing address: one statement.

    `asked`: also what the hold asks of its buyer (attendee names, questions).
    """
    row = session.execute(
        select(Hold, (Hold.expires_at <= func.now()).label("past"), Event.status,
               (func.now() >= func.coalesce(Event.sales_end_at, Event.starts_at)).label("sales_over"),
               Event.billing_required, *(_ASKED if asked else ()))
        .join(Event, Event.id == Hold.event_id)
        .where(Hold.id == hold_id, Hold.user_id == user_id)
        .with_for_update(of=Hold)
    ).first()
    if row is None:
        raise NotFound(_("No such reservation."))
    ask = attendees.asked(row.attendee_names, attendees.questions_from_rows(row.questions),
                          [(unit_id, tier_id, "") for unit_id, tier_id in row.unit_tiers or []]) if asked else None
    return row[0], row[1], row[2], row[3], row[4], ask


def begin_payment(session: Session, *, hold_id: int, user_id: int, idempotency_key: str,
                  card: Card | PaymentMethodId, answers: Mapping[str, list[str]] | None = None,
                  billing_name: str | None = None, billing_address: str | None = None,
                  locale: str | None = None) -> StartedPayment | PaymentResult:
    """Phase 1: make sure the hold is ours and live, and record a pending attempt.

    `answers` are the pay form's attendee fields (attendees.read_answers):
    checked before anything is charged, and kept on the hold for its order.
    Returns the earlier result when this key was already used. A billing
    name (with its address) makes the order an invoice; the organiser may
    require one. `locale`, the buyer's language (None: the request's), goes
    to the order: its mails and PDFs speak it.
    """
    if not idempotency_key or len(idempotency_key) > 64:
        raise InvalidRequest(_("Missing or invalid checkout key; reload the page and try again."))
    billing_name = (billing_name or "").strip()[:200] or None
    billing_address = (billing_address or "").strip()[:500] or None
    hold, past_expiry, event_status, sales_over, billing_required, ask = _lock_hold_for_payment(
        session, hold_id, user_id, asked=True)
    if billing_required and hold.status not in (HoldStatus.CONVERTED, HoldStatus.RELEASED) \
            and not (billing_name and billing_address):
        raise BillingRequired()

    if hold.status == HoldStatus.CONVERTED:
        previous = _attempt_by_key(session, idempotency_key)
        if previous is not None and previous.hold_id != hold.id:
            raise InvalidRequest(_("This checkout key belongs to another reservation."))
        order = _order_for_hold(session, hold.id)
        return PaymentResult(previous.id if previous else 0, order.id if order else None)
    if hold.status == HoldStatus.RELEASED:
        if (previous := _attempt_by_key(session, idempotency_key)) is not None:
            return _replay_for(session, previous, hold)
        raise HoldNotActive(_("This reservation was released. Pick your tickets again."))
    if event_status == EventStatus.CANCELLED:
        if (previous := _attempt_by_key(session, idempotency_key)) is not None:
            return _replay_for(session, previous, hold)
        # Reserving reads the event's status without a lock, so a hold can be
        # made in the instant an admin cancels; it must never be paid for.
        raise SalesClosed(_("This event was cancelled; nothing was charged."))

    lapsed = hold.status == HoldStatus.EXPIRED or (hold.status == HoldStatus.ACTIVE and past_expiry)
    if lapsed and sales_over:
        if (previous := _attempt_by_key(session, idempotency_key)) is not None:
            return _replay_for(session, previous, hold)
        # A hold made before the sale end is paid within its own window; taking
        # its units again afterwards would be a new sale after the end.
        raise SalesClosed(_("Sales for this event have ended and your reservation ran out; nothing was charged."))
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
        # Its discount code's use went back when it lapsed: take it again (lock: hold, units, code);
        # an access code that opened it must still be valid.
        codes.claim_again(session, hold)

    if ask is not None and ask.anything:
        kept, errors = attendees.read_answers(ask, answers or {})
        if errors:
            raise attendees.AnswersInvalid(errors)
        hold.answers = kept
    session.flush()
    attempt_id = session.execute(_RECORD_PENDING, {
        "e": hold.event_id, "h": hold.id, "u": user_id, "k": idempotency_key, "a": hold.total_minor,
        "c": hold.currency, "l": card.last4, "bn": billing_name, "ba": billing_address,
        "lang": locale or language.current(),
    }).scalar()
    if attempt_id is None:
        previous = _attempt_by_key(session, idempotency_key)
        if previous is None:
            raise PaymentInProgress()  # another tab's checkout of this hold is in flight
        return _replay_for(session, previous, hold)
    return StartedPayment(attempt_id, hold.id, hold.total_minor, hold.currency)


_PENDING = text("SELECT EXISTS (SELECT 1 FROM payment_attempts WHERE hold_id = :h AND status = 'pending')")
_AGAIN_IN = text("""
    SELECT greatest(0, ceil(extract(epoch FROM h.expires_at + make_interval(secs => e.rehold_cooldown_seconds)
                                              - now())))::int AS wait,
           EXISTS (SELECT 1 FROM units u WHERE u.id = h.unit_ids[1] AND u.seat_number IS NOT NULL) AS seated
    FROM holds h JOIN events e ON e.id = h.event_id WHERE h.id = :h
""")


def reserve_again(session: Session, *, hold_id: int, user_id: int) -> Hold:
    """The hold page's "Reserve again" after the hold ran out: the same units, taken again if still free.

    The re-hold cool-down (tb_buyer_rules) stops a buyer cycling holds to
    keep seats off sale. A buyer whose hold just lapsed and who asks for the
    same units at once is not cycling, so this is not a fresh reserve: it is
    the lapsed-hold path a late payment takes (promise 3), under the hold's
    lock, only if every unit is still free and nobody on the waiting list
    is owed them, the per-buyer limit counted again. Once per hold, and
    with no waiting-room pass, as a late payment needs none: a hold taken
    again that lapses again is reserved afresh, under the cool-down and the
    pass like any reserve. A hold still live (a double click) is left as it
    is. The caller commits.
    """
    hold, past_expiry, event_status, sales_over, _billing, _asked = _lock_hold_for_payment(session, hold_id, user_id)
    if hold.status == HoldStatus.ACTIVE and not past_expiry:
        return hold
    if hold.status == HoldStatus.CONVERTED:
        raise HoldNotActive(_("This reservation is paid: your tickets are in My tickets."))
    if hold.status == HoldStatus.RELEASED:
        raise HoldNotActive(_("You released this reservation. Pick your tickets again on the event page."))
    if event_status != EventStatus.ON_SALE or sales_over:
        raise SalesClosed(_("Sales for this event have ended, so these tickets cannot be reserved again."))
    if session.execute(_PENDING, {"h": hold.id}).scalar_one():
        # The sweep leaves a hold to its payment in flight: so does this.
        raise PaymentInProgress()
    if hold.taken_again_at is not None:
        again = session.execute(_AGAIN_IN, {"h": hold.id}).one()
        if again.wait > 0:
            raise TooSoonAgain(again.wait, expired=True, seated=again.seated)
        raise HoldNotActive(_("This reservation was already taken again once after it ran out: reserve these tickets"
                              " afresh."))
    if hold.status == HoldStatus.ACTIVE:
        # Ran out, not yet swept: expire it properly first, so the waiting
        # list gets its chance, then see whether the units are still free.
        inventory.release_hold(session, hold, status=HoldStatus.EXPIRED, reason="expired")
    inventory.take_units_again(session, hold)
    codes.claim_again(session, hold)
    hold.taken_again_at = func.now()
    session.flush()
    return hold


def _attempt_by_key(session: Session, idempotency_key: str) -> PaymentAttempt | None:
    return session.scalars(
        select(PaymentAttempt).where(PaymentAttempt.idempotency_key == idempotency_key)
    ).first()


def _replay_for(session: Session, previous: PaymentAttempt, hold: Hold) -> PaymentResult:
    if previous.hold_id != hold.id:
        raise InvalidRequest(_("This checkout key belongs to another reservation."))
    return _replay(session, previous)


def settle_payment(session: Session, gateway: PaymentGateway, *, attempt_id: int, result: ChargeResult | None,
                   hold_id: int | None = None) -> PaymentResult:
    """Phase 3: record the gateway's definitive answer; on approval, confirm the order.

    `result` None means the gateway has no record and we waited long enough:
    the key is voided here, under the hold's lock, and its answer recorded.
    Voiding only under this lock, with the attempt seen pending, is what
    keeps a checkout from confirming an order on a charge being voided.
    The caller commits, then captures an authorisation that became an order.
    """
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
        return _verdict(session, attempt)  # settled first by the other of checkout and the sweep
    if result is None:
        result = gateway.void(attempt.idempotency_key)

    attempt.gateway_reference = result.reference or None
    attempt.instrument = result.instrument
    attempt.completed_at = func.now()
    over_limit = instrument_limit.refusal(session, event_id=hold.event_id, instrument=result.instrument,
                                          tickets=len(hold.unit_ids)) if result.approved else None
    if result.status == VOIDED:
        attempt.status = PaymentStatus.FAILED
        attempt.decline_code = NO_CHARGE
        attempt.decline_message = result.message
    elif not result.approved:
        attempt.status = PaymentStatus.DECLINED
        attempt.decline_code = result.outcome
        attempt.decline_message = result.message
    elif over_limit:
        # Refused before the capture: the authorisation is released, the hold kept for another card.
        attempt.status = PaymentStatus.FAILED
        attempt.decline_code = instrument_limit.CODE
        attempt.decline_message = over_limit
        _give_back(gateway, attempt.idempotency_key, attempt.amount_minor)
    elif hold.status != HoldStatus.ACTIVE:
        # The sweep leaves holds with a payment in flight alone, so only an
        # admin cancelling the event, or the buyer reserving afresh in
        # another tab, ends one mid-payment. The authorisation is released
        # rather than captured into an order for units now gone.
        attempt.status = PaymentStatus.FAILED
        attempt.decline_code = "hold_ended"
        if _give_back(gateway, attempt.idempotency_key, attempt.amount_minor) == VOIDED:
            attempt.decline_message = _("Your reservation ended during payment; nothing was charged.")
        else:
            attempt.decline_message = _("Your reservation ended during payment; the charge was refunded.")
    else:
        attempt.status = PaymentStatus.APPROVED
        session.flush()
        order = _confirm(session, hold, attempt)
        return PaymentResult(attempt.id, order.id)
    session.flush()
    return _verdict(session, attempt)


def _give_back(gateway: PaymentGateway, idempotency_key: str, amount_minor: int) -> str:
    """Void the key's authorisation; refund it if it was captured already. Returns which."""
    after = gateway.void(idempotency_key)
    if after.status == CAPTURED:
        gateway.refund(after.reference, amount_minor)
    return after.status


def _capture(gateway: PaymentGateway, reference: str, attempt_id: int) -> None:
    """Take the money of an authorisation whose order is committed, and note when (a statement of its own).

    A failure here leaves the order standing and the authorisation to the
    sweep, which captures it (`reconcile_stale_payments`).
    """
    try:
        captured = gateway.capture(reference)
    except Exception as error:  # the provider unreachable: handled, the sweep retries
        log.warning("payment.capture_deferred", extra={"reference": reference, "error": repr(error)[:200]})
        return
    if captured.status != CAPTURED:
        log.error("payment.capture_refused", extra={"reference": reference, "status": captured.status})
        return
    captures.note_captured_now(attempt_id)


def _confirm(session: Session, hold: Hold, attempt: PaymentAttempt, *, sold_by: int | None = None,
             buyer_email: str | None = None) -> Order:
    """Turn a paid hold into an order with one ticket per unit, at the prices held, less the hold's code.

    `sold_by`: the box-office clerk whose hold it was (pay_in_person); the tickets are mailed to
    `buyer_email` then, if the clerk typed one, and never to the clerk.
    """
    order = Order(
        event_id=hold.event_id, user_id=hold.user_id, hold_id=hold.id, payment_attempt_id=attempt.id,
        status=OrderStatus.CONFIRMED, total_minor=hold.total_minor, currency=hold.currency,
        code_id=hold.code_id, discount_minor=hold.discount_minor, access_code_id=hold.access_code_id,
        answers=(hold.answers or {}).get("order") or {},
        billing_name=attempt.billing_name, billing_address=attempt.billing_address, locale=attempt.locale,
        channel="box_office" if sold_by is not None else "online", sold_by=sold_by, buyer_email=buyer_email,
    )
    session.add(order)
    session.flush()
    sold = inventory.sell_hold(session, hold)
    # The price held is the price paid (a tier repriced since does not change it);
    # holds from before prices were kept per unit take the tier's.
    held_at = dict(zip(hold.unit_ids, hold.unit_prices or [], strict=False))
    tier_prices = {tier_id: price for tier_id, price in session.execute(
        select(Tier.id, Tier.price_minor).where(Tier.event_id == hold.event_id)).all()} if not held_at else {}
    # What the code took off each unit: the tickets add up to the hold's total.
    off = dict(zip(hold.unit_ids, hold.unit_discounts or [], strict=False)) if hold.code_id else {}
    session.execute(
        Ticket.__table__.insert(),
        [
            dict(event_id=hold.event_id, order_id=order.id, unit_id=unit_id, tier_id=tier_id,
                 code=secrets.token_urlsafe(16), status=TicketStatus.VALID.value,
                 price_minor=(held_at[unit_id] if held_at else tier_prices[tier_id]) - off.get(unit_id, 0),
                 attendee_name=attendees.on_tickets(hold.answers, unit_id)[0],
                 answers=attendees.on_tickets(hold.answers, unit_id)[1])
            for unit_id, tier_id in sold
        ],
    )
    invoices.issue_invoice(session, order)
    if hold.waitlist_entry_id is not None:
        waitlist.offer_accepted(session, hold)
    if sold_by is None:
        outbox.queue_order_confirmation(session, order)
    elif buyer_email:
        outbox.queue(session, template="order_confirmation", recipient=buyer_email, event_id=order.event_id,
                     params={"order_id": order.id}, defer=True)
    return order


IN_PERSON = ("cash", "terminal")


def pay_in_person(session: Session, *, hold_id: int, clerk_id: int, paid_with: str,
                  buyer_email: str | None = None) -> Order:
    """The box office takes the money at the counter (cash, or its own card terminal) for the clerk's hold: an
    approved attempt with no gateway behind it (`in_person`), and the order, marked as sold by the clerk.

    No gateway is asked, so this is one transaction with the reserve before it; the caller commits.
    """
    if paid_with not in IN_PERSON:
        raise InvalidRequest("Say how it was paid: cash or card terminal.")
    hold, past_expiry, event_status, sales_over, _, _ = _lock_hold_for_payment(session, hold_id, clerk_id)
    if hold.status != HoldStatus.ACTIVE or past_expiry:
        raise HoldNotActive("This reservation is no longer held. Pick the tickets again.")
    if event_status == EventStatus.CANCELLED:
        raise SalesClosed("This event was cancelled.")
    attempt = PaymentAttempt(
        event_id=hold.event_id, hold_id=hold.id, user_id=clerk_id, idempotency_key=f"in-person-{hold.id}",
        amount_minor=hold.total_minor, currency=hold.currency, card_last4="", status=PaymentStatus.APPROVED,
        in_person=paid_with, completed_at=func.now(), locale=language.current())
    session.add(attempt)
    session.flush()
    return _confirm(session, hold, attempt, sold_by=clerk_id, buyer_email=buyer_email)


def pay(session: Session, gateway: PaymentGateway, *, hold_id: int, user_id: int, idempotency_key: str,
        card: Card | PaymentMethodId, answers: Mapping[str, list[str]] | None = None,
        billing_name: str | None = None, billing_address: str | None = None,
        locale: str | None = None) -> PaymentResult:
    """The whole checkout: three transactions around the authorisation, then the capture.

    Commits on its own, because a card must never be authorised inside an
    open transaction (see the module docstring).
    """
    started = begin_payment(session, hold_id=hold_id, user_id=user_id, idempotency_key=idempotency_key, card=card,
                            answers=answers, locale=locale,
                            billing_name=billing_name, billing_address=billing_address)
    if isinstance(started, PaymentResult):
        session.rollback()
        return started
    attempt_id, amount, currency = started.id, started.amount_minor, started.currency
    session.commit()

    try:
        result = gateway.authorise(idempotency_key=idempotency_key, amount_minor=amount, currency=currency, card=card)
    except GatewayUnavailable as unanswered:
        # Nothing is known: the attempt stays pending (its hold kept), and the sweep asks again.
        log.warning("payment.unanswered", extra={"attempt_id": attempt_id, "error": str(unanswered)[:200]})
        raise PaymentInProgress(_("Your bank has not answered yet. This page follows the payment;"
                                  " you will be charged once at most.")) from unanswered
    if result.status == REQUIRES_ACTION:
        # Left pending: the buyer's browser finishes it, then finish_payment (or the sweep) settles it.
        raise PaymentNeedsAction(result.client_secret or "")
    outcome = _settle_and_capture(session, gateway, attempt_id=attempt_id, hold_id=hold_id, result=result)
    log.info("payment.settled", extra={"hold_id": hold_id, "user_id": user_id, "attempt_id": attempt_id,
                                        "outcome": result.outcome, "order_id": outcome.order_id})
    if outcome.order_id is None:
        raise PaymentDeclined(outcome.decline_code or result.outcome, outcome.decline_message or result.message)
    return outcome


def _settle_and_capture(session: Session, gateway: PaymentGateway, *, attempt_id: int, hold_id: int,
                        result: ChargeResult | None) -> PaymentResult:
    """Phase 3 committed, then the capture of an authorisation that became an order."""
    outcome = settle_payment(session, gateway, attempt_id=attempt_id, result=result, hold_id=hold_id)
    session.commit()
    if outcome.order_id is not None and result is not None and result.status == AUTHORISED:
        _capture(gateway, result.reference, attempt_id)
    return outcome


def settle_from_gateway(session: Session, gateway: PaymentGateway, *, idempotency_key: str,
                        user_id: int | None = None) -> PaymentResult | None:
    """Settle one pending attempt from the gateway's definitive answer, as the sweep would; None if none yet.

    For the buyer coming back from 3-D Secure (`user_id`: theirs only) and for the provider's webhooks
    (None): neither is trusted for the outcome, which comes from `retrieve`. An attempt already
    settled gives its verdict again.
    """
    attempt = _attempt_by_key(session, idempotency_key)
    if attempt is None or (user_id is not None and attempt.user_id != user_id):
        raise NotFound(_("No such payment."))
    attempt_id, hold_id, status = attempt.id, attempt.hold_id, attempt.status
    if status != PaymentStatus.PENDING:
        verdict = _verdict(session, attempt)
        session.rollback()
        return verdict
    session.rollback()
    result = gateway.retrieve(idempotency_key)
    if result is None:
        return None  # still moving: not a decline
    return _settle_and_capture(session, gateway, attempt_id=attempt_id, hold_id=hold_id, result=result)


_STALE_PAYMENTS = text(
    "SELECT id, idempotency_key, hold_id, created_at < now() - make_interval(secs => :v) AS give_up"
    " FROM payment_attempts WHERE status = 'pending'"
    " AND created_at < now() - make_interval(secs => :s) ORDER BY id LIMIT :n"
)


def reconcile_stale_payments(session: Session, gateway: PaymentGateway, *, older_than_seconds: float,
                             void_after_seconds: float, limit: int = 50) -> int:
    """Settle payments left pending (a crash, a slow bank) by asking the gateway; returns how many.

    Acts only on a definitive answer. "No record yet" means wait, until the
    attempt is `void_after_seconds` old: then its key is voided (see
    `settle_payment`), so nothing can be charged under it any more, and only
    then is it settled as "nothing was charged". Also captures
    authorisations whose order exists but whose capture never happened.
    """
    stale = session.execute(
        _STALE_PAYMENTS, {"s": older_than_seconds, "v": void_after_seconds, "n": limit}).all()
    session.rollback()
    settled = 0
    for attempt_id, key, hold_id, give_up in stale:
        result = gateway.retrieve(key)
        if result is None and not give_up:
            continue  # the authorisation may still be in flight: not a decline
        outcome = _settle_and_capture(session, gateway, attempt_id=attempt_id, hold_id=hold_id, result=result)
        settled += 1
        log.warning("payment.reconciled", extra={"attempt_id": attempt_id, "order_id": outcome.order_id,
                                                 "decline_code": outcome.decline_code})
    _capture_or_void_leftovers(session, gateway, older_than_seconds=older_than_seconds, limit=limit)
    return settled


def _capture_or_void_leftovers(session: Session, gateway: PaymentGateway, *, older_than_seconds: float,
                               limit: int) -> None:
    """Authorisations nobody captured: capture those with an order, void those that will never have one."""
    leftovers = gateway.uncaptured(older_than_seconds=older_than_seconds, limit=limit)
    if not leftovers:
        return
    attempts = {key: (status, attempt_id) for key, status, attempt_id in session.execute(
        select(PaymentAttempt.idempotency_key, PaymentAttempt.status, PaymentAttempt.id)
        .where(PaymentAttempt.idempotency_key.in_([key for key, _ in leftovers]))
    ).all()}
    session.rollback()
    for key, reference in leftovers:
        status, attempt_id = attempts.get(key, (None, 0))
        if status == PaymentStatus.APPROVED:
            _capture(gateway, reference, attempt_id)
            log.warning("payment.captured_late", extra={"reference": reference})
        elif status != PaymentStatus.PENDING:
            # Declined, failed or unknown to us: no order will ever be made of it.
            # (Settled attempts never change again; only a pending one might.)
            gateway.void(key)
            log.warning("payment.voided_leftover", extra={"reference": reference})


def cancel_order(session: Session, gateway: PaymentGateway, *, order_id: int, user_id: int | None,
                 reason: str, refund: bool = True) -> Order:
    """Cancel a confirmed order: void its tickets, refund what is left of it, free its units.

    `user_id` restricts the order to its buyer (None: an admin acting): the
    buyer may cancel within the organiser's policy (until N hours before the
    start), which may keep a fee or a percentage. The refund is a refund row
    (services/money/refunds.py) made at the gateway inside this transaction,
    under a key fixed per order, so a cancel retried after a rollback gives
    back nothing twice. The freed units go to the waiting list first.
    """
    query = select(Order).where(Order.id == order_id).with_for_update()
    if user_id is not None:
        # A door sale is in its clerk's name, but it is not the clerk's to cancel.
        query = query.where(Order.user_id == user_id, Order.sold_by.is_(None))
    order = session.scalars(query).first()
    if order is None:
        raise NotFound(_("No such order."))
    if order.status != OrderStatus.CONFIRMED:
        raise OrderNotCancellable(_("This order is already cancelled."))
    if user_id is not None and any(t.holder_id is not None for t in order.tickets):
        # Its buyer cannot void a ticket someone else now holds; the organiser can.
        raise OrderNotCancellable(_("A ticket of this order was transferred to someone else, so you cannot cancel "
                                    "it; ask the organiser."))
    keep = refunds.buyer_cancel_fee(session, order) if user_id is not None else 0
    if refund:
        made = refunds.request_refund(session, order_id=order.id, reason=reason, actor_id=None, whole=True,
                                      keep_minor=keep, buyer_id=user_id, key=f"rf_{order.id}_whole")
        refunds.send_refund(session, gateway, made)
        session.refresh(order)
        return order
    unit_ids = [t.unit_id for t in order.tickets if t.status == TicketStatus.VALID]
    session.execute(
        text("UPDATE tickets SET status = 'void' WHERE order_id = :o AND status = 'valid'"), {"o": order.id}
    )
    order.status = OrderStatus.CANCELLED
    order.cancelled_at = func.now()
    order.cancel_reason = reason
    session.flush()
    inventory.free_sold_units(session, event_id=order.event_id, unit_ids=unit_ids)
    session.expire(order, ["tickets"])
    return order


def cancel_by_buyer(session: Session, gateway: PaymentGateway, *, order_id: int, user_id: int) -> Order:
    """The buyer cancels their own order: refunded, units freed, and the buyer mailed. The caller commits."""
    order = cancel_order(session, gateway, order_id=order_id, user_id=user_id, reason="cancelled by buyer")
    outbox.queue(session, template="order_cancelled", recipient=order.user.email, event_id=order.event_id,
                 params={"order_id": order.id}, locale=order.locale)
    return order
