"""Payment settings per organiser: its own Stripe account (keys named from the environment), its invoice
prefixes, owners only; each order charged, refunded and settled in its organiser's account, and webhooks
taken per organiser. Against localstripe, two organisers with two secret keys; the proxy records which
key every call to Stripe carried."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from config import TestConfig
from tests.factories import Factory
from tests.fake_stripe import PUBLISHABLE_KEY, fake_stripe, intent, payment_method, stripe_proxy  # noqa: F401
from tests.support import admin_client, csrf_token, reserve_general, sign_in
from webapp import create_app
from webapp.extensions import db
from webapp.models import AuditLog, Order, Organiser, OrganiserMember
from webapp.services.admin import orders as admin_orders
from webapp.services.invariants import check_event, check_stripe_money
from webapp.services.money import checkout
from webapp.services.money.gateway import PaymentMethodId, payment_gateway

INSTALL_SECRET, OWN_SECRET = "sk_test_ticketbooth", "sk_test_organiserb"
OWN_PUBLISHABLE = "pk_test_organiserb"
INSTALL_WEBHOOK, OWN_WEBHOOK = "whsec_install", "whsec_organiserb"


@pytest.fixture
def stripe_app(app, database_url, stripe_proxy, monkeypatch):  # noqa: F811
    monkeypatch.setenv("STRIPE_SECRET_KEY_B", OWN_SECRET)
    monkeypatch.setenv("STRIPE_SECRET_KEY_B2", "sk_test_organiserb2")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET_B", OWN_WEBHOOK)
    stripe = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "PAYMENT_GATEWAY": "stripe",
                         "STRIPE_SECRET_KEY": INSTALL_SECRET, "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
                         "STRIPE_API_BASE": stripe_proxy.url, "STRIPE_JS_URL": stripe_proxy.url + "/js.stripe.com/v3/",
                         "STRIPE_WEBHOOK_SECRET": INSTALL_WEBHOOK, "STRIPE_READ_TIMEOUT_SECONDS": 2},
                        config_class=TestConfig)
    yield stripe
    with stripe.app_context():
        db.engine.dispose()


def _signed(payload: bytes, secret: str) -> dict[str, str]:
    stamp = int(time.time())
    signature = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={stamp},v1={signature}", "Content-Type": "application/json"}


def _own_account(session, slug: str = "bee") -> Organiser:
    organiser = Organiser(slug=slug, name="Bee Events", invoice_prefix="BEE-2026-", credit_note_prefix="BEE-CN-",
                          stripe_publishable_key=OWN_PUBLISHABLE, stripe_secret_key_env="STRIPE_SECRET_KEY_B",
                          stripe_webhook_secret_env="STRIPE_WEBHOOK_SECRET_B")
    session.add(organiser)
    session.commit()
    return organiser


def _keys_used(stripe_proxy, intent_id: str) -> set[str]:  # noqa: F811
    return {key for path, key in stripe_proxy.bearers if intent_id in path}


def test_each_organisers_orders_are_charged_refunded_and_settled_in_its_own_account(stripe_app, stripe_proxy,  # noqa: F811
                                                                                    fake_stripe):  # noqa: F811
    with stripe_app.app_context():
        session = db.session
        factory = Factory(session)
        bee = _own_account(session)
        events = {"install": factory.ga_event(capacity=4), "bee": factory.ga_event(capacity=4, organiser_id=bee.id)}
        admin = factory.user(is_admin=True)
        intents = {}
        for name, event in events.items():
            buyer = factory.user()
            hold = reserve_general(session, user_id=buyer.id, event_id=event.id,
                                   quantities={factory.tier(event).id: 2})
            session.commit()
            paid = checkout.pay(session, payment_gateway(), hold_id=hold.id, user_id=buyer.id,
                                idempotency_key=f"key-account-{name}-0001",
                                card=PaymentMethodId(payment_method(fake_stripe)),
                                billing_name="Buyer Ltd", billing_address="1 Road")
            admin_orders.refund(session, payment_gateway(), actor_id=admin.id, order_id=paid.order_id,
                                reason="Seat broken", amount_minor=500)
            session.commit()
            intents[name] = session.execute(text("SELECT intent_id FROM stripe_intents WHERE idempotency_key = :k"),
                                            {"k": f"key-account-{name}-0001"}).scalar_one()
        # Create, confirm, capture and the refund's reads: every call in its organiser's account, none in the other.
        assert _keys_used(stripe_proxy, intents["install"]) == {INSTALL_SECRET}
        assert _keys_used(stripe_proxy, intents["bee"]) == {OWN_SECRET}
        refunds = [key for path, key in stripe_proxy.bearers if path.startswith("/v1/refunds") and "payment_intent"
                   not in path]
        assert sorted(refunds) == sorted([INSTALL_SECRET, OWN_SECRET])
        # The sweep asks each intent of its own account.
        stripe_proxy.bearers.clear()
        checkout.reconcile_stale_payments(session, payment_gateway(), older_than_seconds=0, void_after_seconds=0)
        # Invoices numbered in each organiser's own series.
        labels = sorted(label for (label,) in session.execute(text(
            "SELECT series || lpad(number::text, 6, '0') FROM invoices")).all())
        assert labels == ["BEE-2026-000001", "BEE-CN-000001", "CN-000001", "INV-000001"]
        # The organiser moves to another account: its earlier payment is still refunded where it was made.
        assert os.environ["STRIPE_SECRET_KEY_B2"] == "sk_test_organiserb2"  # set by the fixture
        session.get(Organiser, bee.id).stripe_secret_key_env = "STRIPE_SECRET_KEY_B2"
        session.commit()
        stripe_proxy.bearers.clear()
        bee_order = session.execute(text("SELECT id FROM orders WHERE event_id = :e"),
                                    {"e": events["bee"].id}).scalar_one()
        admin_orders.refund(session, payment_gateway(), actor_id=admin.id, order_id=bee_order, reason="Late",
                            amount_minor=500)
        session.commit()
        assert {key for _, key in stripe_proxy.bearers} == {OWN_SECRET}
        for event in events.values():
            assert check_event(session, event.id) == []
            assert check_stripe_money(session, event.id, lambda i: intent(fake_stripe, i)) == []
        bee_event = events["bee"].id

    # The buyer's Stripe.js makes the card in the organiser's account: its publishable key on the hold page.
    with stripe_app.app_context():
        factory = Factory(db.session)
        buyer = factory.user()
        hold = reserve_general(db.session, user_id=buyer.id, event_id=bee_event, quantities={
            db.session.execute(text("SELECT id FROM tiers WHERE event_id = :e"), {"e": bee_event}).scalar(): 1})
        db.session.commit()
        hold_id, buyer_id = hold.id, buyer.id
    client = stripe_app.test_client()
    sign_in(client, buyer_id)
    page = client.get(f"/holds/{hold_id}").get_data(as_text=True)
    assert f'data-publishable-key="{OWN_PUBLISHABLE}"' in page and PUBLISHABLE_KEY not in page


def test_webhooks_are_taken_per_organiser_with_its_own_secret(stripe_app, stripe_proxy, fake_stripe):  # noqa: F811
    with stripe_app.app_context():
        factory = Factory(db.session)
        bee = _own_account(db.session)
        event = factory.ga_event(capacity=4, organiser_id=bee.id)
        install_event = factory.ga_event(capacity=4)
        references = []
        for i, e in enumerate((event, install_event)):
            buyer = factory.user()
            hold = reserve_general(db.session, user_id=buyer.id, event_id=e.id, quantities={factory.tier(e).id: 1})
            db.session.commit()
            checkout.pay(db.session, payment_gateway(), hold_id=hold.id, user_id=buyer.id,
                         idempotency_key=f"key-hooks-{i}-000001", card=PaymentMethodId(payment_method(fake_stripe)))
            references.append(db.session.execute(text(
                "SELECT intent_id FROM stripe_intents WHERE idempotency_key = :k"),
                {"k": f"key-hooks-{i}-000001"}).scalar_one())
    client = stripe_app.test_client()
    recorded = (Path(__file__).parent / "data" / "stripe_dispute_created.json").read_text()
    body = recorded.replace("PAYMENT_INTENT", references[0]).encode()
    # The install's secret does not sign for the organiser's endpoint, nor the organiser's for the install's.
    assert client.post("/stripe/webhook/bee", data=body, headers=_signed(body, INSTALL_WEBHOOK)).status_code == 400
    assert client.post("/stripe/webhook", data=body, headers=_signed(body, OWN_WEBHOOK)).status_code == 400
    assert client.post("/stripe/webhook/nobody", data=body, headers=_signed(body, OWN_WEBHOOK)).status_code == 400
    # An organiser signs only for its own payments: a dispute about the install's payment is not recorded.
    other = json.loads(recorded.replace("PAYMENT_INTENT", references[1]))
    other["id"], other["data"]["object"]["id"] = "evt_other_account", "dp_other_account"
    other = json.dumps(other).encode()
    assert client.post("/stripe/webhook/bee", data=other, headers=_signed(other, OWN_WEBHOOK)).json["done"] == \
        "recorded"
    answer = client.post("/stripe/webhook/bee", data=body, headers=_signed(body, OWN_WEBHOOK))
    assert answer.status_code == 200 and answer.json["done"] == "recorded"
    with stripe_app.app_context():
        assert [d for (d,) in db.session.execute(text("SELECT provider_id FROM payment_disputes")).all()] == [
            "dp_1QdisputeTB0000000000001"]
        flagged = db.session.execute(text("SELECT count(*) FROM orders WHERE disputed_at IS NOT NULL")).scalar()
        assert flagged == 1


def test_only_an_owner_edits_the_payment_settings_and_bad_ones_are_refused(client, session, factory, monkeypatch):
    monkeypatch.setenv("STRIPE_SECRET_KEY_B", OWN_SECRET)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET_B", OWN_WEBHOOK)
    client, owner, token = admin_client(client, factory)
    organiser_id = session.execute(text("SELECT id FROM organisers WHERE slug = 'default'")).scalar_one()
    page = client.get("/admin/payment-settings")
    assert page.status_code == 200 and "/stripe/webhook/default" in page.get_data(as_text=True)
    good = {"csrf_token": token, "invoice_prefix": "ACME-2026-", "credit_note_prefix": "ACME-CN-2026-",
            "stripe_publishable_key": OWN_PUBLISHABLE, "stripe_secret_key_env": "STRIPE_SECRET_KEY_B",
            "stripe_webhook_secret_env": "STRIPE_WEBHOOK_SECRET_B"}
    for wrong, words in (({"stripe_secret_key_env": "SECRET_KEY"}, "starting with STRIPE_"),
                         ({"stripe_secret_key_env": "STRIPE_NOT_SET"}, "is not set in this app"),
                         ({"stripe_publishable_key": ""}, "or none of them"),
                         ({"stripe_publishable_key": "pk_live_abc"}, "must both be live keys, or both test keys"),
                         ({"invoice_prefix": "ACME 2026"}, "1 to 30 letters"),
                         ({"credit_note_prefix": "ACME-2026-"}, "different prefixes")):
        refused = client.post("/admin/payment-settings", data={**good, **wrong})
        assert refused.status_code == 400 and words in refused.get_data(as_text=True), wrong
    saved = client.post("/admin/payment-settings", data=good)
    assert saved.status_code in (302, 303), saved.get_data(as_text=True)[:300]
    session.expire_all()
    organiser = session.get(Organiser, organiser_id)
    assert (organiser.invoice_prefix, organiser.stripe_secret_key_env) == ("ACME-2026-", "STRIPE_SECRET_KEY_B")
    entry = session.query(AuditLog).filter_by(action="organiser.payment_settings").one()
    assert entry.after["stripe_secret_key_env"] == "STRIPE_SECRET_KEY_B" and OWN_SECRET not in json.dumps(entry.after)
    # The secret itself is on no page.
    assert OWN_SECRET not in client.get("/admin/payment-settings").get_data(as_text=True)

    # A manager of the same organiser may not see or change them.
    manager = factory.user(name="Max Manager")
    session.add(OrganiserMember(organiser_id=organiser_id, user_id=manager.id, role="manager"))
    session.commit()
    other = client.application.test_client()
    sign_in(other, manager.id)
    # Each request in an app context of its own, as in production (no user left on `g` by the owner's).
    with client.application.app_context():
        assert other.get("/admin/payment-settings").status_code == 403
    with client.application.app_context():
        forged = {**good, "csrf_token": csrf_token(other, "/admin/"), "invoice_prefix": "MAX-"}
    with client.application.app_context():
        assert other.post("/admin/payment-settings", data=forged).status_code == 403
    session.expire_all()
    assert session.get(Organiser, organiser_id).invoice_prefix == "ACME-2026-"
    assert session.query(Order).count() == 0
