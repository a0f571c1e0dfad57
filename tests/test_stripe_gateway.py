"""The Stripe gateway against a real Stripe-compatible server (localstripe, started by the test session).

Each test pays through the real checkout (`checkout.pay`, the sweep's
`reconcile_stale_payments`) with a `StripeGateway` talking HTTP to the fake
Stripe, through a proxy that records every call and can delay, fail or drop
one. Every test ends with the invariant checker: the database's rules
(`check_event`) and Stripe's side of the money, read from Stripe
(`check_stripe_money`): no money authorised or kept without an order, no
order without money, one live charge per hold.

What localstripe lacks, and how it is covered instead:
- it ignores `Idempotency-Key`: the tests check we *send* one on every POST
  (the proxy records them) and that a retried authorise/capture makes no
  second intent or charge through our own note of key -> intent
  (`stripe_intents`); Stripe's replay of a key is not exercised here;
- it has no disputes: `charge.dispute.created` is tested with a recorded
  event body (tests/data/stripe_dispute_created.json, shaped as Stripe's API
  reference shows the event), signed as Stripe signs.
"""
from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.fake_stripe import fake_stripe, intent, payment_method, stripe_proxy  # noqa: F401
from tests.support import assert_consistent, expire_now, race, reserve_general
from webapp.extensions import db
from webapp.models import Hold, HoldStatus, PaymentAttempt, PaymentStatus
from webapp.services.errors import PaymentDeclined, PaymentInProgress, PaymentNeedsAction
from webapp.services.invariants import check_stripe_money
from webapp.services.money import checkout
from webapp.services.money.gateway import AUTHORISED, CAPTURED, DECLINED, VOIDED, PaymentMethodId
from webapp.services.money.stripe_gateway import StripeGateway
from webapp.services.selling import inventory

DECLINED_CARD = "4000000000000341"  # localstripe (and Stripe): attaches, then the charge is declined
THREE_D_SECURE = "4000002500003155"  # requires authentication


@pytest.fixture
def stripe(app_ctx, stripe_proxy):  # noqa: F811
    return StripeGateway(db.engine, secret_key="sk_test_ticketbooth", api_base=stripe_proxy.url, timeout=(2, 2))


def _hold(session, factory, capacity: int = 5):
    event = factory.ga_event(capacity=capacity)
    buyer = factory.user()
    hold = reserve_general(session, user_id=buyer.id, event_id=event.id, quantities={factory.tier(event).id: 2})
    session.commit()
    return event.id, hold.id, buyer.id


def _pay(session, gateway, hold_id, user_id, card, key="k-" + "0" * 20):
    return checkout.pay(session, gateway, hold_id=hold_id, user_id=user_id, idempotency_key=key,
                        card=PaymentMethodId(card))


def _all_clean(session, event_id, fake_stripe):  # noqa: F811
    assert_consistent(session, event_id)
    assert check_stripe_money(session, event_id, lambda i: intent(fake_stripe, i)) == []


def _intent_of(session, key):
    return session.execute(text("SELECT intent_id FROM stripe_intents WHERE idempotency_key = :k"),
                           {"k": key}).scalar()


def test_authorise_then_capture_makes_one_order_and_takes_the_money_once(session, factory, stripe, stripe_proxy,  # noqa: F811
                                                                         fake_stripe):  # noqa: F811
    event_id, hold_id, user_id = _hold(session, factory)
    result = _pay(session, stripe, hold_id, user_id, payment_method(fake_stripe), key="key-capture-000001")
    assert result.order_id is not None
    intent_id = _intent_of(session, "key-capture-000001")
    paid = intent(fake_stripe, intent_id)
    assert paid["status"] == "succeeded" and paid["capture_method"] == "manual"
    assert paid["amount"] == session.get(Hold, hold_id).total_minor and paid["currency"] == "eur"
    assert paid["metadata"]["ticketbooth_key"] == "key-capture-000001"
    # Our key went to Stripe on every POST, one per step, never the same key for two steps.
    posts = [(path.split("?")[0], key) for method, path, key in stripe_proxy.seen if method == "POST"]
    assert [key for _, key in posts] == ["key-capture-000001-create", "key-capture-000001-confirm",
                                         f"capture-{intent_id}"]
    # Paying again with the same key replays the order; Stripe is asked nothing more.
    calls = len(stripe_proxy.seen)
    assert _pay(session, stripe, hold_id, user_id, payment_method(fake_stripe),
                key="key-capture-000001").order_id == result.order_id
    assert len(stripe_proxy.seen) == calls
    _all_clean(session, event_id, fake_stripe)


def test_a_declined_card_keeps_the_hold_and_charges_nothing(session, factory, stripe, fake_stripe):  # noqa: F811
    event_id, hold_id, user_id = _hold(session, factory)
    with pytest.raises(PaymentDeclined) as declined:
        _pay(session, stripe, hold_id, user_id, payment_method(fake_stripe, DECLINED_CARD), key="key-decline-0001")
    assert declined.value.code == "card_declined"
    assert session.get(Hold, hold_id).status == HoldStatus.ACTIVE
    attempt = session.query(PaymentAttempt).filter_by(idempotency_key="key-decline-0001").one()
    assert attempt.status == PaymentStatus.DECLINED
    # A second card then works, on a new key.
    assert _pay(session, stripe, hold_id, user_id, payment_method(fake_stripe), key="key-decline-0002").order_id
    _all_clean(session, event_id, fake_stripe)


def test_a_retried_capture_takes_the_money_once(session, factory, stripe, fake_stripe):  # noqa: F811
    key = "key-retry-capture-1"
    authorised = stripe.authorise(idempotency_key=key, amount_minor=1500, currency="EUR",
                                  card=PaymentMethodId(payment_method(fake_stripe)))
    assert authorised.status == AUTHORISED
    first, again = stripe.capture(authorised.reference), stripe.capture(authorised.reference)
    assert first.status == again.status == CAPTURED
    charge = intent(fake_stripe, authorised.reference)["latest_charge"]
    assert charge["amount"] == 1500 and charge["captured"] and charge["status"] == "succeeded"
    # An authorise retried under the same key finds the same intent: no second one.
    assert stripe.authorise(idempotency_key=key, amount_minor=1500, currency="EUR",
                            card=PaymentMethodId(payment_method(fake_stripe))).reference == authorised.reference


def test_a_partial_refund_then_the_rest(session, factory, stripe, fake_stripe):  # noqa: F811
    authorised = stripe.authorise(idempotency_key="key-refund-00001", amount_minor=4000, currency="EUR",
                                  card=PaymentMethodId(payment_method(fake_stripe)))
    stripe.capture(authorised.reference)
    stripe.refund(authorised.reference, 1000)
    stripe.refund(authorised.reference, 1000)  # a retry of the same refund gives nothing more back
    assert intent(fake_stripe, authorised.reference)["latest_charge"]["amount_refunded"] == 1000
    stripe.refund(authorised.reference, 4000)
    assert intent(fake_stripe, authorised.reference)["latest_charge"]["amount_refunded"] == 4000


def test_three_d_secure_leaves_the_payment_pending_and_the_hold_kept(session, factory, stripe,
                                                                    fake_stripe):  # noqa: F811
    event_id, hold_id, user_id = _hold(session, factory)
    with pytest.raises(PaymentNeedsAction) as action:
        _pay(session, stripe, hold_id, user_id, payment_method(fake_stripe, THREE_D_SECURE), key="key-3ds-0000001")
    assert action.value.client_secret.startswith(_intent_of(session, "key-3ds-0000001") + "_secret_")
    # Past its time, the sweep still leaves the hold: its payment is in flight.
    expire_now(session, hold_id)
    inventory.expire_holds(session)  # the sweep's pass
    session.commit()
    assert session.get(Hold, hold_id).status == HoldStatus.ACTIVE
    assert checkout.settle_from_gateway(session, stripe, idempotency_key="key-3ds-0000001") is None
    # The buyer's bank says yes (as Stripe.js does it), then our server asks Stripe and settles.
    import requests

    intent_id = _intent_of(session, "key-3ds-0000001")
    requests.post(f"{fake_stripe}/v1/payment_intents/{intent_id}/_authenticate", timeout=10,
                  data={"key": "pk_test_ticketbooth", "client_secret": action.value.client_secret, "success": "true"})
    settled = checkout.settle_from_gateway(session, stripe, idempotency_key="key-3ds-0000001", user_id=user_id)
    assert settled is not None and settled.order_id is not None
    assert intent(fake_stripe, intent_id)["status"] == "succeeded"
    _all_clean(session, event_id, fake_stripe)


def test_our_process_dying_after_stripe_authorised_is_reconciled_into_the_order(session, factory, stripe,
                                                                               fake_stripe):  # noqa: F811
    event_id, hold_id, user_id = _hold(session, factory)
    key = "key-crash-000001"
    started = checkout.begin_payment(session, hold_id=hold_id, user_id=user_id, idempotency_key=key,
                                     card=PaymentMethodId(payment_method(fake_stripe)))
    session.commit()
    # Stripe authorises; we die before our commit (nothing of the answer is kept but Stripe's own record).
    stripe.authorise(idempotency_key=key, amount_minor=started.amount_minor, currency=started.currency,
                     card=PaymentMethodId(payment_method(fake_stripe)))
    session.rollback()
    assert checkout.reconcile_stale_payments(session, stripe, older_than_seconds=0, void_after_seconds=60) == 1
    attempt = session.get(PaymentAttempt, started.id)
    assert attempt.status == PaymentStatus.APPROVED
    assert intent(fake_stripe, _intent_of(session, key))["status"] == "succeeded"
    _all_clean(session, event_id, fake_stripe)


def test_a_crash_before_the_confirm_is_voided_and_nothing_is_charged(session, factory, stripe, stripe_proxy,  # noqa: F811
                                                                    fake_stripe):  # noqa: F811
    """Stripe answering 500 to the confirm: unknown, so the attempt waits, then the key is voided; the hold ends."""
    event_id, hold_id, user_id = _hold(session, factory)
    stripe_proxy.fault("/confirm", "500")
    with pytest.raises(PaymentInProgress):
        _pay(session, stripe, hold_id, user_id, payment_method(fake_stripe), key="key-500-0000001")
    assert checkout.reconcile_stale_payments(session, stripe, older_than_seconds=0, void_after_seconds=60) == 0
    assert checkout.reconcile_stale_payments(session, stripe, older_than_seconds=0, void_after_seconds=0) == 1
    attempt = session.query(PaymentAttempt).filter_by(idempotency_key="key-500-0000001").one()
    assert attempt.status == PaymentStatus.FAILED and attempt.decline_code == "no_charge"
    assert intent(fake_stripe, _intent_of(session, "key-500-0000001"))["status"] == "canceled"
    # A void is definitive: an authorise arriving late under that key is refused.
    late = stripe.authorise(idempotency_key="key-500-0000001", amount_minor=100, currency="EUR",
                            card=PaymentMethodId(payment_method(fake_stripe)))
    assert late.status == VOIDED
    # Settled, the payment no longer keeps the hold: past its time, the sweep ends it.
    expire_now(session, hold_id)
    inventory.expire_holds(session)
    session.commit()
    assert session.get(Hold, hold_id).status == HoldStatus.EXPIRED
    _all_clean(session, event_id, fake_stripe)


def test_the_connection_dropping_after_stripe_charged_makes_one_order(session, factory, stripe, stripe_proxy,  # noqa: F811
                                                                      fake_stripe):  # noqa: F811
    event_id, hold_id, user_id = _hold(session, factory)
    stripe_proxy.fault("/confirm", "drop")
    with pytest.raises(PaymentInProgress):
        _pay(session, stripe, hold_id, user_id, payment_method(fake_stripe), key="key-drop-0000001")
    assert intent(fake_stripe, _intent_of(session, "key-drop-0000001"))["status"] == "requires_capture"
    assert checkout.reconcile_stale_payments(session, stripe, older_than_seconds=0, void_after_seconds=60) == 1
    assert intent(fake_stripe, _intent_of(session, "key-drop-0000001"))["status"] == "succeeded"
    # The buyer's retry with the same key gets the order, not a second charge.
    assert _pay(session, stripe, hold_id, user_id, payment_method(fake_stripe), key="key-drop-0000001").order_id
    assert session.execute(text("SELECT count(*) FROM stripe_intents")).scalar() == 1
    _all_clean(session, event_id, fake_stripe)


def test_stripe_slow_past_the_hold_still_sells_once(session, factory, stripe, stripe_proxy,  # noqa: F811
                                                    fake_stripe):  # noqa: F811
    """The confirm's answer comes after our read timeout and after the hold's time: the sweep leaves the hold
    to its payment in flight, then reconciles it into the order."""
    event_id, hold_id, user_id = _hold(session, factory)
    stripe_proxy.fault("/confirm", "slow", 3)
    with pytest.raises(PaymentInProgress):
        _pay(session, stripe, hold_id, user_id, payment_method(fake_stripe), key="key-slow-0000001")
    expire_now(session, hold_id)
    inventory.expire_holds(session)
    session.commit()
    assert session.get(Hold, hold_id).status == HoldStatus.ACTIVE
    assert checkout.reconcile_stale_payments(session, stripe, older_than_seconds=0, void_after_seconds=60) == 1
    assert session.query(PaymentAttempt).filter_by(idempotency_key="key-slow-0000001").one().status \
        == PaymentStatus.APPROVED
    _all_clean(session, event_id, fake_stripe)


def test_a_void_before_the_intent_exists_stops_it_being_confirmed(session, stripe, fake_stripe):  # noqa: F811
    assert stripe.void("key-void-first-01").status == VOIDED
    late = stripe.authorise(idempotency_key="key-void-first-01", amount_minor=100, currency="EUR",
                            card=PaymentMethodId(payment_method(fake_stripe)))
    assert late.status == VOIDED and late.reference == ""
    assert stripe.retrieve("key-void-first-01").status == VOIDED


def test_card_numbers_are_refused_by_the_stripe_gateway(session, stripe):
    from webapp.services.money.gateway import Card

    refused = stripe.authorise(idempotency_key="key-card-number-1", amount_minor=100, currency="EUR",
                               card=Card("4242424242424242", 12, 2039, "123"))
    assert refused.status == DECLINED and refused.outcome == "invalid_card"


def test_a_forged_payment_method_is_a_decline_not_an_error(session, factory, stripe, fake_stripe):  # noqa: F811
    event_id, hold_id, user_id = _hold(session, factory)
    with pytest.raises(PaymentDeclined) as declined:
        _pay(session, stripe, hold_id, user_id, "pm_doesnotexist", key="key-forged-pm-01")
    assert declined.value.code == "invalid_card"
    assert session.get(Hold, hold_id).status == HoldStatus.ACTIVE
    _all_clean(session, event_id, fake_stripe)


def test_cancelling_a_stripe_order_refunds_it_in_full_once(session, factory, stripe, fake_stripe):  # noqa: F811
    event_id, hold_id, user_id = _hold(session, factory)
    order_id = _pay(session, stripe, hold_id, user_id, payment_method(fake_stripe), key="key-cancel-00001").order_id
    checkout.cancel_order(session, stripe, order_id=order_id, user_id=user_id, reason="test")
    session.commit()
    charge = intent(fake_stripe, _intent_of(session, "key-cancel-00001"))["latest_charge"]
    assert charge["amount_refunded"] == charge["amount"] == session.get(Hold, hold_id).total_minor
    _all_clean(session, event_id, fake_stripe)


def test_tabs_paying_one_hold_at_once_make_one_intent_and_one_order(app, session, factory, stripe,
                                                                     fake_stripe):  # noqa: F811
    """4 threads, each with its own key and connection, pay the same hold together: one reaches Stripe."""
    event_id, hold_id, user_id = _hold(session, factory)
    methods = [payment_method(fake_stripe) for _ in range(4)]

    def tab(i):
        try:
            return _pay(db.session, stripe, hold_id, user_id, methods[i], key=f"key-tab-{i}-0000000").order_id
        except PaymentInProgress:
            return "in progress"

    answers = race(app, 4, tab)
    orders = [a for a in answers if isinstance(a, int)]
    assert len(orders) >= 1 and len(set(orders)) == 1, answers
    assert session.execute(text("SELECT count(*) FROM stripe_intents WHERE intent_id IS NOT NULL")).scalar() == 1
    _all_clean(session, event_id, fake_stripe)


def test_refund_rows_give_back_their_amounts_once_each_at_stripe(session, factory, stripe, fake_stripe):  # noqa: F811
    """Two partial refunds of an order by amount, each asked of Stripe twice (a retry after our commit was
    lost): Stripe gives back each amount once, and the checker finds Stripe's total equal to our rows'."""
    from webapp.models import Refund
    from webapp.services.admin import orders as admin_orders
    event_id, hold_id, user_id = _hold(session, factory)
    order_id = _pay(session, stripe, hold_id, user_id, payment_method(fake_stripe), key="key-rows-000001").order_id
    admin = factory.user(is_admin=True)
    first = admin_orders.refund(session, stripe, actor_id=admin.id, order_id=order_id, reason="late start",
                                amount_minor=1500)
    second = admin_orders.refund(session, stripe, actor_id=admin.id, order_id=order_id, reason="bad view",
                                 amount_minor=2500)
    assert (first.state, second.state) == ("succeeded", "succeeded")
    for made in (first, second):  # the same keys again, as a retry would send them
        stripe.refund(_intent_of(session, "key-rows-000001"), made.amount_minor,
                      idempotency_key=made.idempotency_key)
    charge = intent(fake_stripe, _intent_of(session, "key-rows-000001"))["latest_charge"]
    assert charge["amount_refunded"] == 4000
    assert session.query(Refund).filter_by(order_id=order_id, state="succeeded").count() == 2
    _all_clean(session, event_id, fake_stripe)


def test_the_dashboards_money_by_state_reads_our_rows_under_stripe(session, factory, stripe, stripe_proxy,  # noqa: F811
                                                                     fake_stripe):  # noqa: F811
    """Three orders of 2 x 50.00 at Stripe: one captured, one whose capture failed (authorised until the sweep
    captures it), one captured and then refunded 15.00. Nothing of the simulated gateway's ledger is used."""
    from webapp.models import Event
    from webapp.services.admin import orders as admin_orders
    from webapp.services.admin import reports

    event = factory.ga_event(capacity=10)
    buyers = [factory.user() for _ in range(3)]
    holds = [reserve_general(session, user_id=b.id, event_id=event.id, quantities={factory.tier(event).id: 2})
             for b in buyers]
    session.commit()
    orders = []
    for i, (hold, buyer) in enumerate(zip(holds, buyers, strict=True)):
        if i == 1:
            stripe_proxy.fault("/capture", "500")
        orders.append(_pay(session, stripe, hold.id, buyer.id, payment_method(fake_stripe),
                           key=f"key-dashboard-{i:05d}").order_id)
    admin = factory.user(is_admin=True)
    admin_orders.refund(session, stripe, actor_id=admin.id, order_id=orders[2], reason="bad view", amount_minor=1500)
    session.commit()
    assert session.execute(text("SELECT count(*) FROM gateway_charges")).scalar() == 0

    money = reports.dashboard(session, session.get(Event, event.id)).money
    assert (money.authorised_minor, money.captured_minor, money.refunded_minor, money.outstanding_minor) == (
        10000, 20000, 1500, 30000 - 1500)
    assert intent(fake_stripe, _intent_of(session, "key-dashboard-00001"))["status"] == "requires_capture"

    # The sweep captures the leftover: the dashboard follows, from our rows.
    checkout.reconcile_stale_payments(session, stripe, older_than_seconds=0, void_after_seconds=0)
    money = reports.dashboard(session, session.get(Event, event.id)).money
    assert (money.authorised_minor, money.captured_minor) == (0, 30000)
    _all_clean(session, event.id, fake_stripe)


def test_one_card_across_accounts_meets_the_events_per_card_limit_before_any_capture(session, factory, stripe,  # noqa: F811
                                                                                     fake_stripe):  # noqa: F811
    """localstripe gives each PaymentMethod its card's fingerprint (as Stripe does): two accounts, one card."""
    from webapp.models import Event

    event = factory.ga_event(capacity=10)
    session.get(Event, event.id).per_instrument_limit = 3
    first, second = factory.user(), factory.user()
    holds = [reserve_general(session, user_id=u.id, event_id=event.id, quantities={factory.tier(event).id: 2})
             for u in (first, second)]
    session.commit()
    paid = _pay(session, stripe, holds[0].id, first.id, payment_method(fake_stripe), key="key-card-limit-01")
    assert paid.order_id is not None
    assert len(session.execute(text("SELECT instrument FROM payment_attempts")).scalar() or "") == 16
    with pytest.raises(PaymentDeclined) as refused:
        _pay(session, stripe, holds[1].id, second.id, payment_method(fake_stripe), key="key-card-limit-02")
    assert "already paid for 2 tickets to this event" in refused.value.message
    assert "allows 3 per card" in refused.value.message
    # Refused before the capture: Stripe's authorisation released, nothing kept; the hold is the buyer's still.
    assert intent(fake_stripe, _intent_of(session, "key-card-limit-02"))["status"] == "canceled"
    session.expire_all()
    assert session.get(Hold, holds[1].id).status == HoldStatus.ACTIVE
    # Another card pays for it.
    other = _pay(session, stripe, holds[1].id, second.id, payment_method(fake_stripe, "5555555555554444"),
                 key="key-card-limit-03")
    assert other.order_id is not None
    _all_clean(session, event.id, fake_stripe)


def test_two_accounts_paying_with_one_card_at_once_stay_within_its_limit(app, session, factory, stripe_proxy,  # noqa: F811
                                                                         fake_stripe):  # noqa: F811
    """Six accounts, one card, a limit of 2 and 2 tickets each, paying at once: exactly one order. Without the
    advisory lock on (event, card) several pass on the same count (checked by hand)."""
    from webapp.models import Event, Order

    event = factory.ga_event(capacity=20)
    session.get(Event, event.id).per_instrument_limit = 2
    buyers = factory.users(6)
    holds = [reserve_general(session, user_id=u.id, event_id=event.id, quantities={factory.tier(event).id: 2})
             for u in buyers]
    session.commit()
    work = [(h.id, u.id, payment_method(fake_stripe)) for h, u in zip(holds, buyers, strict=True)]

    def attempt(i):
        hold_id, user_id, card = work[i]
        gateway = StripeGateway(db.engine, secret_key="sk_test_ticketbooth", api_base=stripe_proxy.url, timeout=(5, 5))
        try:
            return _pay(db.session, gateway, hold_id, user_id, card, key=f"key-card-race-{i:04d}").order_id
        except PaymentDeclined as refused:
            db.session.rollback()
            return refused.code

    results = race(app, len(work), attempt)
    assert sum(isinstance(r, int) for r in results) == 1, results
    assert results.count("instrument_limit") == len(work) - 1, results
    assert session.query(Order).filter_by(event_id=event.id).count() == 1
    _all_clean(session, event.id, fake_stripe)
