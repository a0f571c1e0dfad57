"""Exactly once: one charge per hold, a slow gateway, and the checker's money rules.

The races run real threads on real connections (`tests.support.race`) and
end with the invariant checker. The gateway's ledger (`gateway_charges`) is
read directly: a charge refunded later still shows on the buyer's statement,
so "one order" is not enough; the card must have been authorised once.
"""
from __future__ import annotations

import re
import secrets
import threading
import time

import pytest
from sqlalchemy import func, select, text

from tests.support import GOOD, SLOW_CARD, assert_consistent, csrf_token, race, reserve_general, sign_in
from webapp.extensions import db
from webapp.models import GatewayCharge, Hold, Order, OrderStatus, PaymentAttempt, PaymentStatus
from webapp.services.errors import PaymentDeclined, PaymentInProgress, SalesClosed
from webapp.services.invariants import check_event
from webapp.services.money import checkout
from webapp.services.money.gateway import AUTHORISED, CAPTURED, VOIDED, SimulatedGateway

HX = {"HX-Request": "true"}
CARD_FORM = {"name": "Ada Tab", "expiry": "12/39", "cvc": "123"}


def _hold(session, factory, *, quantity: int = 1, capacity: int = 10):
    """A GA event and a buyer holding `quantity` places; ids only (ORM objects stay in this thread)."""
    event = factory.ga_event(capacity=capacity)
    buyer = factory.user()
    hold = reserve_general(session, user_id=buyer.id, event_id=event.id,
                                     quantities={factory.tier(event).id: quantity})
    session.commit()
    return event.id, hold.id, buyer.id


def _charges(session, hold_id: int) -> list[GatewayCharge]:
    """Every row the gateway keeps for this hold's attempts (declines and voids included)."""
    session.expire_all()
    return list(session.scalars(
        select(GatewayCharge).join(PaymentAttempt, PaymentAttempt.idempotency_key == GatewayCharge.idempotency_key)
        .where(PaymentAttempt.hold_id == hold_id)))


def _live(charges: list[GatewayCharge]) -> list[GatewayCharge]:
    """Money reserved or taken, and not given back."""
    return [c for c in charges if c.status == AUTHORISED or (c.status == CAPTURED and c.refunded_minor == 0)]


# ---- Item 1: several tabs, each with its own key -------------------------------------------------

@pytest.mark.slow
def test_several_tabs_paying_one_hold_reach_the_gateway_once_and_the_others_follow(app, session, factory):
    """6 rounds of 4 tabs, each with its own checkout key, submitting one hold's pay form together.

    The gateway sees ONE authorisation per hold (not an approval and a
    refund); every other tab is told to follow the payment in flight (409
    with the self-refreshing "being processed" panel, no pay form) or, if it
    came after, is sent to the same order.
    """
    for round_no in range(6):
        event_id, hold_id, buyer_id = _hold(session, factory)
        tabs = []
        for _ in range(4):
            client = app.test_client()
            sign_in(client, buyer_id)
            with app.app_context():
                tabs.append((client, csrf_token(client, f"/holds/{hold_id}")))

        def submit(i, tabs=tabs, hold_id=hold_id, round_no=round_no):
            client, token = tabs[i]
            # Mixed cards: a fast card behind a slow one must not slip through.
            number = "4242 4242 4242 4242" if (i + round_no) % 2 else "4000 0000 0000 0077"
            key = f"tab-{round_no}-{i}-{'k' * 20}"
            return client.post(f"/holds/{hold_id}/pay", headers={**HX, "X-CSRFToken": token},
                               data={**CARD_FORM, "number": number, "idempotency_key": key})

        answers = race(app, 4, submit)
        session.expire_all()
        order_id = session.scalars(select(Order.id).where(Order.hold_id == hold_id)).one()
        charges = _charges(session, hold_id)
        assert len(charges) == 1, [(c.idempotency_key, c.status) for c in charges]
        assert charges[0].status == CAPTURED and charges[0].refunded_minor == 0
        to_order = [a for a in answers if a.status_code == 204 and a.headers.get("HX-Redirect", "").endswith(
            f"/orders/{order_id}")]
        following = [a for a in answers if a.status_code == 409]
        assert len(to_order) + len(following) == 4, [a.status_code for a in answers]
        for answer in following:
            body = answer.get_data(as_text=True)
            assert "being processed" in body and 'id="pay-form"' not in body
            assert re.search(rf'hx-get="/holds/{hold_id}"[^>]*hx-trigger="every 1s"', body)
        assert session.scalar(select(func.count()).where(PaymentAttempt.hold_id == hold_id)) == 1
        assert_consistent(session, event_id)


# ---- Item 2: a gateway slower than the reconcile window ------------------------------------------

def _pay_in_background(app, gateway, hold_id: int, buyer_id: int, key: str) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run():
        with app.app_context():
            try:
                outcome["order_id"] = checkout.pay(db.session, gateway, hold_id=hold_id, user_id=buyer_id,
                                                   idempotency_key=key, card=SLOW_CARD).order_id
            except PaymentDeclined as declined:
                outcome["declined"] = declined.message
            finally:
                db.session.remove()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def _reconcile_while(thread: threading.Thread, gateway, *, window: float, void_after: float) -> int:
    """The sweep's payment pass, over and over while the charge is in flight (its own session)."""
    from sqlalchemy.orm import Session

    passes = 0
    while thread.is_alive():
        with Session(db.engine) as own:
            checkout.reconcile_stale_payments(own, gateway, older_than_seconds=window, void_after_seconds=void_after)
            own.commit()
        passes += 1
        time.sleep(0.2)
    return passes


@pytest.mark.slow
def test_a_charge_slower_than_the_reconcile_window_is_waited_for_and_becomes_the_order(
        app, client, session, factory):
    """A 3 s card, a 1 s window: the sweep passes over it many times while it is in flight.

    "No record yet" is not "declined": the attempt stays pending, the hold
    page says the payment is still being confirmed, other tabs are told to
    follow it, and the approval becomes the order, charged (captured) once.
    """
    gateway = SimulatedGateway(db.engine, slow_seconds=3)
    event_id, hold_id, buyer_id = _hold(session, factory, quantity=2)
    sign_in(client, buyer_id)
    thread, outcome = _pay_in_background(app, gateway, hold_id, buyer_id, "slow-card-key-" + "s" * 20)
    time.sleep(1.3)  # past the window, still in flight

    page = client.get(f"/holds/{hold_id}").get_data(as_text=True)
    assert "being processed" in page and "declined" not in page.lower() and 'id="pay-form"' not in page
    with pytest.raises(PaymentInProgress):  # an impatient second tab, with its own key
        checkout.pay(session, gateway, hold_id=hold_id, user_id=buyer_id,
                     idempotency_key="second-tab-" + "t" * 20, card=GOOD)
    session.rollback()
    passes = _reconcile_while(thread, gateway, window=1, void_after=60)
    thread.join()

    assert passes >= 3 and "order_id" in outcome, outcome
    charges = _charges(session, hold_id)
    assert len(charges) == 1 and charges[0].status == CAPTURED
    assert session.get(Order, outcome["order_id"]).status == OrderStatus.CONFIRMED
    assert_consistent(session, event_id)


@pytest.mark.slow
def test_a_payment_given_up_on_is_voided_first_so_its_late_approval_charges_nothing(app, client, session, factory):
    """The same slow card, but the sweep gives up after 1 s: it voids the key before saying "nothing was
    charged". The approval that turns up two seconds later finds the key voided: no money moves, the
    buyer is told the truth, and paying again works, with one charge in all."""
    gateway = SimulatedGateway(db.engine, slow_seconds=3)
    event_id, hold_id, buyer_id = _hold(session, factory)
    sign_in(client, buyer_id)
    thread, outcome = _pay_in_background(app, gateway, hold_id, buyer_id, "given-up-key-" + "g" * 20)
    time.sleep(0.2)
    _reconcile_while(thread, gateway, window=1, void_after=1)
    thread.join()

    assert outcome.get("declined") == "The payment did not go through. Nothing was charged.", outcome
    [voided] = _charges(session, hold_id)
    assert voided.status == VOIDED and not _live([voided])
    page = client.get(f"/holds/{hold_id}").get_data(as_text=True)
    assert "Nothing was charged" in page and 'id="pay-form"' in page
    assert_consistent(session, event_id)

    again = checkout.pay(session, gateway, hold_id=hold_id, user_id=buyer_id,
                         idempotency_key="second-try-" + "a" * 20, card=GOOD)
    assert again.order_id is not None
    assert len(_live(_charges(session, hold_id))) == 1
    assert_consistent(session, event_id)


@pytest.mark.slow
def test_slow_payments_under_an_eager_sweep_never_charge_without_an_order_or_twice(app, session, factory):
    """Eight buyers pay with the 3 s card, each with a rival tab retrying with its own key, while two
    sweepers reconcile with a 1 s window and give up on "no record" after 2 s.

    Whatever each payment came to, no hold has an authorised or captured
    charge without its order, none has two, and the checker passes.
    """
    from sqlalchemy.orm import Session

    gateway = SimulatedGateway(db.engine, slow_seconds=3)
    event = factory.ga_event(capacity=20)
    tier = factory.tier(event)
    buyers = [u.id for u in factory.users(8)]
    holds = []
    for user_id in buyers:
        holds.append(reserve_general(session, user_id=user_id, event_id=event.id,
                                               quantities={tier.id: 1}).id)
    session.commit()
    done = threading.Event()
    buyers_finished = threading.Barrier(16, action=done.set)  # then the sweepers stop

    def pay_until_settled(n: int, rival: int) -> int | None:
        card = GOOD if rival else SLOW_CARD
        for attempt in range(12):
            try:
                return checkout.pay(db.session, gateway, hold_id=holds[n], user_id=buyers[n],
                                    idempotency_key=f"buyer-{n}-tab-{rival}-try-{attempt}-{'x' * 12}",
                                    card=card).order_id
            except (PaymentInProgress, PaymentDeclined):
                db.session.rollback()
                time.sleep(0.4)
        return None

    def run(i):
        if i >= 16:
            while not done.is_set():
                with Session(db.engine) as own:
                    checkout.reconcile_stale_payments(own, gateway, older_than_seconds=1, void_after_seconds=2)
                    own.commit()
                time.sleep(0.1)
            return None
        try:
            return pay_until_settled(*divmod(i, 2))
        finally:
            buyers_finished.wait()

    race(app, 18, run)
    session.expire_all()
    for hold_id in holds:
        charges = _charges(session, hold_id)
        live = _live(charges)
        order = session.scalars(select(Order).where(Order.hold_id == hold_id)).first()
        assert len(live) <= 1, [(c.idempotency_key, c.status) for c in charges]
        assert (order is None) == (not live), (hold_id, order, [(c.idempotency_key, c.status) for c in charges])
    # The sweep gave up on the 3 s card (after 2 s) and voided it, and the rival tab then paid.
    assert session.scalar(select(func.count()).where(GatewayCharge.status == VOIDED)) >= 1
    assert session.scalar(select(func.count()).select_from(Order)) == len(holds)
    assert_consistent(session, event.id)


def test_the_sweep_voids_under_the_hold_lock_so_checkout_cannot_confirm_a_voided_charge(app, session, factory):
    """The worst moment: the sweep saw "no record", gave up, and voids; the authorisation landed just
    before, and the buyer's own checkout comes to settle with it right then.

    The void is made under the hold's lock with the attempt seen pending, so
    the checkout waits, then finds the attempt settled ("nothing was
    charged"). Voided outside that lock, the checkout would confirm an
    order on a voided charge (checked by hand: the checker then reports it).
    """
    from sqlalchemy.orm import Session

    real = SimulatedGateway(db.engine, slow_seconds=0)
    event_id, hold_id, buyer_id = _hold(session, factory)
    started = checkout.begin_payment(session, hold_id=hold_id, user_id=buyer_id, idempotency_key="L" * 24, card=GOOD)
    session.commit()
    landed = real.authorise(idempotency_key="L" * 24, amount_minor=started.amount_minor, currency="EUR", card=GOOD)
    checkout_outcome: dict = {}

    def buyers_checkout_settles():
        with app.app_context(), Session(db.engine) as own:
            checkout_outcome["result"] = checkout.settle_payment(own, real, attempt_id=started.id, result=landed,
                                                                 hold_id=hold_id)
            own.commit()

    class SweepsView(SimulatedGateway):
        def retrieve(self, idempotency_key):
            return None  # read a moment before the authorisation landed

        def void(self, idempotency_key):
            after = super().void(idempotency_key)
            rival = threading.Thread(target=buyers_checkout_settles)
            rival.start()
            rival.join(timeout=1.0)  # blocks on the hold lock, as it must
            return after

    with app.app_context():
        checkout.reconcile_stale_payments(db.session, SweepsView(db.engine, slow_seconds=0), older_than_seconds=0,
                                          void_after_seconds=0)
        db.session.remove()
    deadline = time.monotonic() + 5
    while "result" not in checkout_outcome and time.monotonic() < deadline:
        time.sleep(0.05)
    assert checkout_outcome["result"].order_id is None
    assert checkout_outcome["result"].decline_code == "no_charge"
    assert session.scalar(select(func.count()).select_from(Order)) == 0
    assert real.retrieve("L" * 24).status == VOIDED
    assert_consistent(session, event_id)


def test_an_authorisation_whose_hold_ended_is_voided_not_charged_and_refunded(session, factory, gateway):
    """The process died after the authorisation; meanwhile the buyer reserved afresh in another tab
    (which ends the old basket). The sweep voids the authorisation: nothing is charged, so nothing is refunded."""
    event_id, hold_id, buyer_id = _hold(session, factory)
    started = checkout.begin_payment(session, hold_id=hold_id, user_id=buyer_id, idempotency_key="q" * 24, card=GOOD)
    session.commit()
    gateway.authorise(idempotency_key="q" * 24, amount_minor=started.amount_minor, currency="EUR", card=GOOD)
    tier_id = session.get(Hold, hold_id).event.tiers[0].id
    reserve_general(session, user_id=buyer_id, event_id=event_id, quantities={tier_id: 1})
    session.commit()

    assert checkout.reconcile_stale_payments(session, gateway, older_than_seconds=0, void_after_seconds=60) == 1
    [charge] = _charges(session, hold_id)
    assert charge.status == VOIDED and charge.refunded_minor == 0
    attempt = session.scalars(select(PaymentAttempt)).one()
    assert attempt.status == PaymentStatus.FAILED
    assert attempt.decline_message == "Your reservation ended during payment; nothing was charged."
    assert_consistent(session, event_id)


def test_the_sweep_captures_an_order_whose_capture_never_happened(session, factory, gateway):
    """Crash between the order's commit and the capture: the authorisation is captured later, once."""
    event_id, hold_id, buyer_id = _hold(session, factory)
    started = checkout.begin_payment(session, hold_id=hold_id, user_id=buyer_id, idempotency_key="w" * 24, card=GOOD)
    session.commit()
    result = gateway.authorise(idempotency_key="w" * 24, amount_minor=started.amount_minor, currency="EUR", card=GOOD)
    outcome = checkout.settle_payment(session, gateway, attempt_id=started.id, result=result, hold_id=hold_id)
    session.commit()  # ... and the process dies before capturing
    assert outcome.order_id is not None and _charges(session, hold_id)[0].status == AUTHORISED
    assert_consistent(session, event_id)  # authorised, with its order: consistent, just not yet captured

    checkout.reconcile_stale_payments(session, gateway, older_than_seconds=0, void_after_seconds=60)
    checkout.reconcile_stale_payments(session, gateway, older_than_seconds=0, void_after_seconds=60)
    [charge] = _charges(session, hold_id)
    assert charge.status == CAPTURED and charge.captured_at is not None
    assert_consistent(session, event_id)


def test_a_capture_that_fails_leaves_the_order_and_the_sweep_captures_it(session, factory):
    class CaptureDown(SimulatedGateway):
        def capture(self, reference):
            raise ConnectionError("gateway unreachable")

    event_id, hold_id, buyer_id = _hold(session, factory)
    result = checkout.pay(session, CaptureDown(db.engine, slow_seconds=0), hold_id=hold_id, user_id=buyer_id,
                          idempotency_key="c" * 24, card=GOOD)
    assert session.get(Order, result.order_id).status == OrderStatus.CONFIRMED
    assert _charges(session, hold_id)[0].status == AUTHORISED
    checkout.reconcile_stale_payments(session, SimulatedGateway(db.engine), older_than_seconds=0,
                                      void_after_seconds=60)
    assert _charges(session, hold_id)[0].status == CAPTURED
    assert_consistent(session, event_id)


def test_no_record_yet_is_waited_for_then_voided_and_only_then_no_charge(session, factory, gateway):
    event_id, hold_id, buyer_id = _hold(session, factory)
    checkout.begin_payment(session, hold_id=hold_id, user_id=buyer_id, idempotency_key="n" * 24, card=GOOD)
    session.commit()
    assert checkout.reconcile_stale_payments(session, gateway, older_than_seconds=0, void_after_seconds=60) == 0
    assert session.scalars(select(PaymentAttempt.status)).one() == PaymentStatus.PENDING
    assert checkout.reconcile_stale_payments(session, gateway, older_than_seconds=0, void_after_seconds=0) == 1
    session.expire_all()
    assert session.scalars(select(PaymentAttempt.status)).one() == PaymentStatus.FAILED
    assert gateway.retrieve("n" * 24).status == VOIDED
    # The authorisation arriving now, after the void, moves no money.
    late = gateway.authorise(idempotency_key="n" * 24, amount_minor=5000, currency="EUR", card=GOOD)
    assert late.status == VOIDED and not late.approved
    assert_consistent(session, event_id)


def test_cancelling_an_order_not_yet_captured_voids_the_authorisation(session, factory, gateway):
    event_id, hold_id, buyer_id = _hold(session, factory)
    started = checkout.begin_payment(session, hold_id=hold_id, user_id=buyer_id, idempotency_key="v" * 24, card=GOOD)
    session.commit()
    result = gateway.authorise(idempotency_key="v" * 24, amount_minor=started.amount_minor, currency="EUR", card=GOOD)
    outcome = checkout.settle_payment(session, gateway, attempt_id=started.id, result=result, hold_id=hold_id)
    session.commit()
    checkout.cancel_order(session, gateway, order_id=outcome.order_id, user_id=buyer_id, reason="test")
    session.commit()
    [charge] = _charges(session, hold_id)
    assert charge.status == VOIDED and charge.refunded_minor == 0
    assert gateway.capture(charge.reference).status == VOIDED  # a late capture takes nothing
    assert_consistent(session, event_id)


def test_the_sweep_voids_an_authorisation_no_order_will_come_of(session, factory, gateway):
    event_id, hold_id, buyer_id = _hold(session, factory)
    checkout.begin_payment(session, hold_id=hold_id, user_id=buyer_id, idempotency_key="d" * 24, card=GOOD)
    session.commit()
    session.execute(text("UPDATE payment_attempts SET status = 'failed', decline_code = 'no_charge'"))
    session.commit()
    gateway.authorise(idempotency_key="d" * 24, amount_minor=5000, currency="EUR", card=GOOD)
    assert any("without an order" in p for p in check_event(session, event_id))
    checkout.reconcile_stale_payments(session, gateway, older_than_seconds=0, void_after_seconds=60)
    assert gateway.retrieve("d" * 24).status == VOIDED
    assert_consistent(session, event_id)


# ---- Item 3: the checker's rules find their violations --------------------------------------------

def _paid(session, factory, *, quantity: int = 2):
    from tests.support import buy

    event = factory.ga_event(capacity=5)
    order = buy(session, event, factory.user(), quantities={factory.tier(event).id: quantity})
    assert check_event(session, event.id) == []
    return event, session.get(Order, order.id)


def _found(session, event_id: int) -> str:
    session.flush()
    return " | ".join(check_event(session, event_id))


def test_checker_finds_a_second_live_charge_for_a_hold(session, factory):
    event, order = _paid(session, factory)
    attempt = session.get(PaymentAttempt, order.payment_attempt_id)
    session.add(GatewayCharge(idempotency_key="second-tab-charge-0001", reference="ch_second", amount_minor=1,
                              currency="EUR", card_last4="4242", outcome="approved", status=CAPTURED))
    session.add(PaymentAttempt(event_id=event.id, hold_id=attempt.hold_id, user_id=attempt.user_id,
                               idempotency_key="second-tab-charge-0001", amount_minor=1, currency="EUR",
                               card_last4="4242", status="declined"))
    assert "hold with more than one live charge" in _found(session, event.id)
    session.rollback()


def test_checker_finds_an_order_that_does_not_add_up(session, factory):
    event, order = _paid(session, factory)
    session.execute(text("UPDATE orders SET total_minor = total_minor + 1 WHERE id = :o"), {"o": order.id})
    assert "total differs from the sum of its tickets' prices" in _found(session, event.id)
    session.rollback()


def test_checker_finds_an_order_whose_hold_was_made_after_the_sale_end(session, factory):
    event, order = _paid(session, factory)
    session.execute(text("UPDATE events SET sales_end_at = (SELECT created_at FROM holds WHERE id = :h)"
                         " WHERE id = :e"), {"h": order.hold_id, "e": event.id})
    assert "order sold after its event's sales ended" in _found(session, event.id)
    session.rollback()


def test_checker_finds_an_order_paid_for_after_its_hold_ran_out(session, factory):
    event, order = _paid(session, factory)
    session.execute(text("UPDATE holds SET expires_at = (SELECT created_at FROM payment_attempts WHERE id = :p)"
                         " WHERE id = :h"), {"p": order.payment_attempt_id, "h": order.hold_id})
    assert "order sold after its event's sales ended" in _found(session, event.id)
    session.rollback()


def test_checker_finds_a_live_charge_without_an_order_and_an_order_without_money(session, factory):
    event, order = _paid(session, factory)
    session.execute(text("UPDATE gateway_charges SET status = 'voided'"))
    assert "confirmed order whose charge is not authorised or captured" in _found(session, event.id)
    session.rollback()
    # A checkout told "nothing was charged" while its authorisation stands.
    attempt = session.get(PaymentAttempt, order.payment_attempt_id)
    session.add(PaymentAttempt(event_id=event.id, hold_id=attempt.hold_id, user_id=attempt.user_id,
                               idempotency_key="told-no-charge-0001", amount_minor=1, currency="EUR",
                               card_last4="4242", status="failed"))
    session.add(GatewayCharge(idempotency_key="told-no-charge-0001", reference="ch_kept", amount_minor=1,
                              currency="EUR", card_last4="4242", outcome="approved", status=AUTHORISED))
    assert "charge authorised or captured at the gateway without an order" in _found(session, event.id)
    session.rollback()


def test_a_hold_made_before_the_sale_end_is_paid_after_it_and_the_checker_agrees(session, factory, gateway):
    event_id, hold_id, buyer_id = _hold(session, factory)
    session.execute(text("UPDATE events SET sales_end_at = now() WHERE id = :e"), {"e": event_id})
    session.commit()
    result = checkout.pay(session, gateway, hold_id=hold_id, user_id=buyer_id,
                          idempotency_key=secrets.token_urlsafe(24), card=GOOD)
    assert result.order_id is not None
    assert check_event(session, event_id) == []


def test_a_lapsed_hold_is_not_taken_again_after_the_sale_end(session, factory, gateway):
    """Its own window is over and so are sales: paying it would be a new sale after the end."""
    event_id, hold_id, buyer_id = _hold(session, factory)
    session.execute(text("UPDATE holds SET expires_at = now() WHERE id = :h"), {"h": hold_id})
    session.execute(text("UPDATE events SET sales_end_at = now() WHERE id = :e"), {"e": event_id})
    session.commit()
    with pytest.raises(SalesClosed):
        checkout.pay(session, gateway, hold_id=hold_id, user_id=buyer_id,
                     idempotency_key=secrets.token_urlsafe(24), card=GOOD)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(GatewayCharge)) == 0
    assert check_event(session, event_id) == []
