"""Stripe's webhooks through the real endpoint, on an app configured for Stripe (the fake one, localstripe).

A webhook is a hint that settles a checkout now rather than at the sweep's
next pass: these tests check that a good signature is needed, that a second
delivery does nothing, and that what it settles is what the sweep would.
The dispute event is a body shaped as in Stripe's API reference
(tests/data/stripe_dispute_created.json): localstripe has no disputes.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from config import TestConfig
from tests.fake_stripe import PUBLISHABLE_KEY, fake_stripe, intent, payment_method, stripe_proxy  # noqa: F401
from tests.support import admin_client, assert_consistent, reserve_general, sign_in
from webapp import create_app
from webapp.extensions import db
from webapp.models import Order, PaymentAttempt, PaymentStatus
from webapp.services.errors import PaymentInProgress
from webapp.services.invariants import check_stripe_money
from webapp.services.money import checkout
from webapp.services.money.gateway import PaymentMethodId, payment_gateway

SECRET = "whsec_test_ticketbooth"


@pytest.fixture
def stripe_app(app, database_url, stripe_proxy):  # noqa: F811
    """The app with PAYMENT_GATEWAY=stripe, talking to the fake Stripe through the fault proxy."""
    stripe = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "PAYMENT_GATEWAY": "stripe",
                         "STRIPE_SECRET_KEY": "sk_test_ticketbooth", "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
                         "STRIPE_API_BASE": stripe_proxy.url, "STRIPE_JS_URL": stripe_proxy.url + "/js.stripe.com/v3/",
                         "STRIPE_WEBHOOK_SECRET": SECRET, "STRIPE_READ_TIMEOUT_SECONDS": 2}, config_class=TestConfig)
    yield stripe
    with stripe.app_context():
        db.engine.dispose()


def _signed(payload: bytes, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if at is None else at
    signature = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={stamp},v1={signature}", "Content-Type": "application/json"}


def _event(kind: str, obj: dict, event_id: str = "evt_test_1") -> bytes:
    return json.dumps({"id": event_id, "object": "event", "type": kind, "data": {"object": obj}}).encode()


def _pending_after_a_dropped_answer(stripe_app, stripe_proxy, fake_stripe, factory_user=None):  # noqa: F811
    """A checkout whose confirm reached Stripe but whose answer never came back: pending, money authorised."""
    from tests.factories import Factory

    with stripe_app.app_context():
        factory = Factory(db.session)
        event = factory.ga_event(capacity=4)
        buyer = factory.user()
        hold = reserve_general(db.session, user_id=buyer.id, event_id=event.id,
                               quantities={factory.tier(event).id: 1})
        db.session.commit()
        stripe_proxy.fault("/confirm", "drop")
        with pytest.raises(PaymentInProgress):
            checkout.pay(db.session, payment_gateway(), hold_id=hold.id, user_id=buyer.id,
                         idempotency_key="key-webhook-00001", card=PaymentMethodId(payment_method(fake_stripe)))
        intent_id = db.session.execute(text("SELECT intent_id FROM stripe_intents")).scalar_one()
        return event.id, hold.id, buyer.id, intent_id


def test_a_signed_payment_intent_event_settles_the_checkout_once(stripe_app, stripe_proxy, fake_stripe):  # noqa: F811
    event_id, hold_id, _, intent_id = _pending_after_a_dropped_answer(stripe_app, stripe_proxy, fake_stripe)
    body = _event("payment_intent.amount_capturable_updated", intent(fake_stripe, intent_id))
    client = stripe_app.test_client()
    first = client.post("/stripe/webhook", data=body, headers=_signed(body))
    assert first.status_code == 200 and first.json["done"] == "settled"
    again = client.post("/stripe/webhook", data=body, headers=_signed(body))
    assert again.status_code == 200 and again.json["done"] == "duplicate"
    with stripe_app.app_context():
        attempt = db.session.query(PaymentAttempt).one()
        assert attempt.status == PaymentStatus.APPROVED
        assert intent(fake_stripe, intent_id)["status"] == "succeeded"
        # The sweep, after it, finds nothing to do: the webhook did what it would have.
        assert checkout.reconcile_stale_payments(db.session, payment_gateway(), older_than_seconds=0,
                                                 void_after_seconds=0) == 0
        assert_consistent(db.session, event_id)
        assert check_stripe_money(db.session, event_id, lambda i: intent(fake_stripe, i)) == []


def test_an_early_event_changes_nothing_the_sweep_would_not(stripe_app, stripe_proxy, fake_stripe):  # noqa: F811
    """An event about an intent still waiting for 3-D Secure: Stripe's word is "not yet", so nothing is settled."""
    body = _event("payment_intent.requires_action", {"id": "pi_x", "metadata": {"ticketbooth_key": "no-such-key-0001"}})
    answer = stripe_app.test_client().post("/stripe/webhook", data=body, headers=_signed(body))
    assert answer.status_code == 200 and answer.json["done"] == "not ours"


@pytest.mark.parametrize("headers", [
    {"Stripe-Signature": "t=1,v1=00"},
    "wrong secret",
    "too old",
    {},
])
def test_a_bad_signature_is_refused_and_recorded_nowhere(stripe_app, headers):
    body = _event("payment_intent.succeeded", {"id": "pi_x", "metadata": {}}, event_id="evt_bad")
    if headers == "wrong secret":
        headers = _signed(body, secret="whsec_other")
    elif headers == "too old":
        headers = _signed(body, at=int(time.time()) - 3600)
    answer = stripe_app.test_client().post("/stripe/webhook", data=body, headers=headers)
    assert answer.status_code == 400
    with stripe_app.app_context():
        assert db.session.execute(text("SELECT count(*) FROM stripe_events")).scalar() == 0


def test_a_dispute_is_recorded_once_and_shown_to_admins(stripe_app, stripe_proxy, fake_stripe):  # noqa: F811
    event_id, hold_id, _, intent_id = _pending_after_a_dropped_answer(stripe_app, stripe_proxy, fake_stripe)
    with stripe_app.app_context():
        checkout.settle_from_gateway(db.session, payment_gateway(), idempotency_key="key-webhook-00001")
    recorded = Path(__file__).parent / "data" / "stripe_dispute_created.json"
    body = recorded.read_text().replace("PAYMENT_INTENT", intent_id).encode()
    client = stripe_app.test_client()
    assert client.post("/stripe/webhook", data=body, headers=_signed(body)).json["done"] == "recorded"
    assert client.post("/stripe/webhook", data=body, headers=_signed(body)).json["done"] == "duplicate"
    with stripe_app.app_context():
        from tests.factories import Factory

        disputes = db.session.execute(text("SELECT provider_id, event_id, amount_minor, reason FROM payment_disputes")
                                      ).all()
        assert [tuple(d) for d in disputes] == [("dp_1QdisputeTB0000000000001", event_id, 10000, "fraudulent")]
        admin, _, _ = admin_client(client, Factory(db.session))
    page = client.get("/admin/disputes").get_data(as_text=True)
    assert "dp_1QdisputeTB0000000000001" in page and "fraudulent" in page and re.search(r"#\d+</a>", page)
    assert "needs response" in page and "open" in page
    with stripe_app.app_context():
        order_id = db.session.execute(text("SELECT id FROM orders WHERE hold_id = :h"), {"h": hold_id}).scalar_one()
        assert db.session.get(Order, order_id).disputed_at is not None
        assert _audit_of(order_id) == [("dispute.created", "needs_response")]
    assert "A chargeback is open or was lost" in client.get(f"/admin/orders/{order_id}").get_data(as_text=True)

    # Closed, lost: recorded once, the order stays flagged, the invariants still add up (no money of ours moved).
    closed = (Path(__file__).parent / "data" / "stripe_dispute_closed.json").read_text()
    body = closed.replace("PAYMENT_INTENT", intent_id).encode()
    assert client.post("/stripe/webhook", data=body, headers=_signed(body)).json["done"] == "recorded"
    assert client.post("/stripe/webhook", data=body, headers=_signed(body)).json["done"] == "duplicate"
    with stripe_app.app_context():
        status, closed_at = db.session.execute(text("SELECT status, closed_at FROM payment_disputes")).one()
        assert status == "lost" and closed_at is not None
        assert db.session.get(Order, order_id).disputed_at is not None
        assert _audit_of(order_id) == [("dispute.created", "needs_response"), ("dispute.closed", "lost")]
        assert_consistent(db.session, event_id)
        assert check_stripe_money(db.session, event_id, lambda i: intent(fake_stripe, i)) == []
    assert re.search(r"lost</td>\s*<td>\w", client.get("/admin/disputes").get_data(as_text=True))


def test_a_dispute_won_unflags_its_order_and_a_late_update_does_not_reopen_it(stripe_app, stripe_proxy,  # noqa: F811
                                                                                fake_stripe):  # noqa: F811
    _, hold_id, _, intent_id = _pending_after_a_dropped_answer(stripe_app, stripe_proxy, fake_stripe)
    with stripe_app.app_context():
        checkout.settle_from_gateway(db.session, payment_gateway(), idempotency_key="key-webhook-00001")
    client = stripe_app.test_client()
    recorded = json.loads((Path(__file__).parent / "data" / "stripe_dispute_closed.json").read_text()
                          .replace("PAYMENT_INTENT", intent_id))
    recorded["data"]["object"]["status"] = "won"
    body = json.dumps(recorded).encode()
    assert client.post("/stripe/webhook", data=body, headers=_signed(body)).json["done"] == "recorded"
    # The created event arriving after the close (Stripe does not promise order) does not reopen it.
    created = (Path(__file__).parent / "data" / "stripe_dispute_created.json").read_text()
    body = created.replace("PAYMENT_INTENT", intent_id).encode()
    assert client.post("/stripe/webhook", data=body, headers=_signed(body)).json["done"] == "recorded"
    with stripe_app.app_context():
        assert tuple(db.session.execute(text("SELECT status, closed_at IS NOT NULL FROM payment_disputes")).one()) \
            == ("won", True)
        order_id = db.session.execute(text("SELECT id FROM orders WHERE hold_id = :h"), {"h": hold_id}).scalar_one()
        assert db.session.get(Order, order_id).disputed_at is None


def _audit_of(order_id: int) -> list[tuple[str, str]]:
    return [(action, after["status"]) for action, after in db.session.execute(text(
        "SELECT action, after FROM audit_log WHERE entity = 'order' AND entity_id = :o AND action LIKE 'dispute.%'"
        " ORDER BY id"), {"o": order_id}).all()]


def test_the_hold_page_shows_stripes_card_element_and_no_card_fields(stripe_app):
    from tests.factories import Factory

    with stripe_app.app_context():
        factory = Factory(db.session)
        event = factory.ga_event(capacity=4)
        buyer = factory.user()
        hold = reserve_general(db.session, user_id=buyer.id, event_id=event.id,
                               quantities={factory.tier(event).id: 1})
        db.session.commit()
        hold_id, buyer_id = hold.id, buyer.id
    client = stripe_app.test_client()
    sign_in(client, buyer_id)
    answer = client.get(f"/holds/{hold_id}")
    page = answer.get_data(as_text=True)
    assert 'id="card-element"' in page and 'name="payment_method"' in page
    assert 'name="number"' not in page and 'name="cvc"' not in page  # no card field of ours
    assert "/js.stripe.com/v3/" in page
    policy = answer.headers["Content-Security-Policy"]
    assert "script-src 'self' http://127.0.0.1:" in policy and "connect-src 'self' http://127.0.0.1:" in policy
    # A card number posted to us is not read: the form wants a PaymentMethod id.
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    refused = client.post(f"/holds/{hold_id}/pay", data={"csrf_token": token, "idempotency_key": "k" * 24,
                                                         "number": "4242424242424242", "payment_method": ""})
    assert refused.status_code == 400 and "Enter your card details." in refused.get_data(as_text=True)
