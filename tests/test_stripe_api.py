"""The JSON API's pay with Stripe, against localstripe: a PaymentMethod id in, the order (201), 3-D Secure (202
with the client_secret and the URL that finishes it), declines and refusals as problem+json."""
from __future__ import annotations

import pytest
import requests
from flask.testing import FlaskClient
from sqlalchemy import text

from config import TestConfig
from tests.factories import Factory
from tests.fake_stripe import PUBLISHABLE_KEY, fake_stripe, intent, payment_method, stripe_proxy  # noqa: F401
from tests.support import reserve_general
from tests.test_stripe_gateway import DECLINED_CARD, THREE_D_SECURE
from webapp import create_app
from webapp.extensions import db
from webapp.services.invariants import check_event, check_stripe_money
from webapp.services.people import api_tokens


class FreshContextClient(FlaskClient):
    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def stripe_api(app, database_url, stripe_proxy):  # noqa: F811
    stripe = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "PAYMENT_GATEWAY": "stripe",
                         "STRIPE_SECRET_KEY": "sk_test_ticketbooth", "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
                         "STRIPE_API_BASE": stripe_proxy.url, "STRIPE_READ_TIMEOUT_SECONDS": 2},
                        config_class=TestConfig)
    yield stripe
    with stripe.app_context():
        db.engine.dispose()


def _buyer_and_hold(stripe_api):
    with stripe_api.app_context():
        factory = Factory(db.session)
        event = factory.ga_event(capacity=6)
        buyer = factory.user()
        hold = reserve_general(db.session, user_id=buyer.id, event_id=event.id,
                               quantities={factory.tier(event).id: 2})
        token = api_tokens.create(db.session, user_id=buyer.id, is_admin=False, name="app", scope="buyer")
        db.session.commit()
        return event.id, hold.id, {"Authorization": f"Bearer {token.secret}"}


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    return response.get_json(force=True)


def _clean(stripe_api, event_id, fake_stripe):  # noqa: F811
    with stripe_api.app_context():
        assert check_event(db.session, event_id) == []
        assert check_stripe_money(db.session, event_id, lambda i: intent(fake_stripe, i)) == []


def test_the_api_pays_with_a_payment_method_id_once(stripe_api, fake_stripe):  # noqa: F811
    event_id, hold_id, auth = _buyer_and_hold(stripe_api)
    client = FreshContextClient(stripe_api, stripe_api.response_class)
    hold = client.get(f"/api/v1/holds/{hold_id}", headers=auth).json
    assert hold["stripe_publishable_key"] == PUBLISHABLE_KEY  # what the client's Stripe.js makes the card with
    assert hold["net_minor"] + hold["tax_minor"] == hold["total_minor"] == 10000
    key = {"Idempotency-Key": "api-stripe-key-000001"}
    card = payment_method(fake_stripe)
    paid = client.post(f"/api/v1/holds/{hold_id}/payment", json={"payment_method": card}, headers={**auth, **key})
    assert paid.status_code == 201, paid.get_data(as_text=True)
    assert paid.json["total_minor"] == 10000 and len(paid.json["tickets"]) == 2
    again = client.post(f"/api/v1/holds/{hold_id}/payment", json={"payment_method": card}, headers={**auth, **key})
    assert again.status_code == 201 and again.json["id"] == paid.json["id"]
    with stripe_api.app_context():
        assert db.session.execute(text("SELECT count(*) FROM stripe_intents")).scalar() == 1
    _clean(stripe_api, event_id, fake_stripe)


def test_three_d_secure_answers_202_with_the_client_secret_and_finishes_into_the_order(stripe_api,
                                                                                       fake_stripe):  # noqa: F811
    event_id, hold_id, auth = _buyer_and_hold(stripe_api)
    client = FreshContextClient(stripe_api, stripe_api.response_class)
    headers = {**auth, "Idempotency-Key": "api-stripe-3ds-000001"}
    asked = client.post(f"/api/v1/holds/{hold_id}/payment",
                        json={"payment_method": payment_method(fake_stripe, THREE_D_SECURE)}, headers=headers)
    assert asked.status_code == 202, asked.get_data(as_text=True)
    assert asked.json["status"] == "requires_action" and "_secret_" in asked.json["client_secret"]
    finish = asked.json["finish"]
    assert finish == f"/api/v1/holds/{hold_id}/payment/finish"
    # Before the bank answered: still processing, nothing settled.
    waiting = client.post(finish, headers=headers)
    assert waiting.status_code == 202 and waiting.json["status"] == "processing"
    # The client confirms with the bank (Stripe.js's handleCardAction), then finishes.
    intent_id = asked.json["client_secret"].split("_secret_")[0]
    requests.post(f"{fake_stripe}/v1/payment_intents/{intent_id}/_authenticate", timeout=10,
                  data={"key": PUBLISHABLE_KEY, "client_secret": asked.json["client_secret"], "success": "true"})
    done = client.post(finish, headers=headers)
    assert done.status_code == 201, done.get_data(as_text=True)
    assert done.headers["Location"].endswith(f"/orders/{done.json['id']}")
    assert intent(fake_stripe, intent_id)["status"] == "succeeded"
    # Someone else's key, or another hold's, finishes nothing.
    assert client.post(f"/api/v1/holds/{hold_id}/payment/finish",
                       headers={**auth, "Idempotency-Key": "api-stripe-3ds-unknown"}).status_code == 404
    _clean(stripe_api, event_id, fake_stripe)


def test_a_decline_and_bad_input_are_problems_and_keep_the_hold(stripe_api, fake_stripe):  # noqa: F811
    event_id, hold_id, auth = _buyer_and_hold(stripe_api)
    client = FreshContextClient(stripe_api, stripe_api.response_class)
    url = f"/api/v1/holds/{hold_id}/payment"
    declined = _problem(client.post(url, json={"payment_method": payment_method(fake_stripe, DECLINED_CARD)},
                                    headers={**auth, "Idempotency-Key": "api-stripe-decl-00001"}), 402)
    assert "declined" in declined["detail"].lower()
    card = {"number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123", "name": "Ada"}
    refused = _problem(client.post(url, json={"card": card}, headers={**auth, "Idempotency-Key": "k" * 20}), 400)
    assert "payment_method" in refused["errors"]["card"][0]
    missing = _problem(client.post(url, json={}, headers={**auth, "Idempotency-Key": "k" * 20}), 400)
    assert "payment_method" in missing["errors"]
    malformed = _problem(client.post(url, json={"payment_method": "card_4242"},
                                     headers={**auth, "Idempotency-Key": "k" * 20}), 400)
    assert "payment_method" in malformed["errors"]
    no_key = _problem(client.post(url, json={"payment_method": "pm_x"}, headers=auth), 400)
    assert "Idempotency-Key" in no_key["errors"]
    # The hold is still there to pay with another card.
    paid = client.post(url, json={"payment_method": payment_method(fake_stripe)},
                       headers={**auth, "Idempotency-Key": "api-stripe-good-00001"})
    assert paid.status_code == 201, paid.get_data(as_text=True)
    _clean(stripe_api, event_id, fake_stripe)
