"""The logs of a buyer's whole journey: one JSON access line per request with its context, and no secret.

Sign up, a wrong password, log in, reserve, a declined card, pay, an API
token made and used (a second purchase through the API), a password reset
by its link: then every log line is searched for the card numbers, the
passwords, the API token and the reset link's token, and the buyer's e-mail.
"""
from __future__ import annotations

import io
import json
import logging
import re

import pytest
from sqlalchemy import select

from config import TestConfig
from tests.support import csrf_token
from webapp import create_app
from webapp.extensions import db
from webapp.logs import json_lines
from webapp.models import OutboxMessage, User

PASSWORD = "correct-horse-battery-staple-7"
NEW_PASSWORD = "a-brand-new-passphrase-for-logs"
EMAIL = "log.journey@example.com"
GOOD_CARD, DECLINED_CARD = "4242 4242 4242 4242", "4000 0000 0000 0002"


def form_token(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


@pytest.fixture
def logged(app, database_url):
    """A client of an app logging at INFO (as in production), and what its logs say, as text."""
    journey_app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "LOG_LEVEL": "INFO"},
                             config_class=TestConfig)
    stream = io.StringIO()
    handler = json_lines(logging.StreamHandler(stream))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield journey_app, stream
    finally:
        root.removeHandler(handler)
        with journey_app.app_context():
            db.session.remove()
            db.engine.dispose()


def _pay(client, hold_id: int, number: str, key: str):
    token = csrf_token(client, f"/holds/{hold_id}")
    return client.post(f"/holds/{hold_id}/pay", headers={"X-CSRFToken": token},
                       data={"name": "Ada Journey", "number": number, "expiry": "12/39", "cvc": "123",
                             "idempotency_key": key})


def test_a_journeys_logs_hold_no_secret_and_say_who_did_what(logged, factory, session):
    app, stream = logged
    event = factory.ga_event(capacity=10)
    tier_id = event.tiers[0].id
    client = app.test_client()

    signed_up = client.post("/register", data={"name": "Ada Journey", "email": EMAIL, "password": PASSWORD,
                                               "csrf_token": form_token(client, "/register")})
    assert signed_up.status_code == 303
    client.post("/logout", headers={"X-CSRFToken": csrf_token(client)})
    wrong = client.post("/login", data={"email": EMAIL, "password": PASSWORD + "-wrong",
                                        "csrf_token": form_token(client, "/login")})
    assert wrong.status_code in (200, 400, 401)
    assert client.post("/login", data={"email": EMAIL, "password": PASSWORD,
                                       "csrf_token": form_token(client, "/login")}).status_code == 303
    user_id = session.scalars(select(User.id).where(User.email == EMAIL)).one()

    reserved = client.post(f"/events/{event.id}/reserve", data={f"qty-{tier_id}": "2"},
                           headers={"X-CSRFToken": csrf_token(client, f"/events/{event.id}"),
                                    "X-Request-ID": "journey-reserve-1"})
    assert reserved.status_code == 303
    hold_id = int(reserved.headers["Location"].rstrip("/").split("/")[-1])
    assert _pay(client, hold_id, DECLINED_CARD, "journey-declined-key-0001").status_code == 402
    assert _pay(client, hold_id, GOOD_CARD, "journey-approved-key-0001").status_code == 303

    page = client.post("/account/tokens", data={"name": "script", "scope": "buyer",
                                                "csrf_token": csrf_token(client, "/account/tokens")})
    api_token = re.search(r'value="(tb_[A-Za-z0-9_-]+)"', page.get_data(as_text=True)).group(1)
    bearer = {"Authorization": f"Bearer {api_token}"}
    held = client.post(f"/api/v1/events/{event.id}/holds", json={"quantities": [
        {"tier_id": tier_id, "quantity": 1}]}, headers=bearer)
    assert held.status_code == 201
    paid = client.post(f"/api/v1/holds/{held.get_json()['id']}/payment", headers={
        **bearer, "Idempotency-Key": "journey-api-key-0001"}, json={"card": {
            "number": GOOD_CARD.replace(" ", ""), "expiry": "12/39", "cvc": "123", "name": "Ada Journey"}})
    assert paid.status_code == 201, paid.get_data(as_text=True)

    stranger = app.test_client()
    stranger.post("/password/forgot", data={"email": EMAIL, "csrf_token": form_token(stranger, "/password/forgot")})
    session.expire_all()
    mail = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "password_reset")).one()
    link = re.search(r"http://tickets\.test(/password/reset/(\S+))", mail.body)
    reset_path, reset_token = link.group(1), link.group(2)
    stranger.get(reset_path)
    done = stranger.post(reset_path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD,
                                           "csrf_token": form_token(stranger, "/password/forgot")})
    assert done.status_code == 303

    logs = stream.getvalue()
    lines = [json.loads(line) for line in logs.splitlines()]
    assert len(lines) > 20
    secrets = {
        "card number": GOOD_CARD.replace(" ", ""), "spaced card number": GOOD_CARD,
        "declined card": DECLINED_CARD.replace(" ", ""), "last eight digits": "42424242",
        "password": PASSWORD, "new password": NEW_PASSWORD, "API token": api_token,
        "API token without its prefix": api_token[3:], "reset token": reset_token, "e-mail": EMAIL,
    }
    leaked = {what: [line for line in logs.splitlines() if secret in line][:2]
              for what, secret in secrets.items() if secret in logs}
    assert leaked == {}

    access = [line for line in lines if line["message"] == "request"]
    reserve = next(line for line in access if line["request_id"] == "journey-reserve-1")
    assert reserve["route"] == "shop.reserve" and reserve["status"] == 303 and reserve["method"] == "POST"
    assert reserve["user_id"] == user_id and reserve["event_id"] == event.id and reserve["ms"] > 0
    api_pay = next(line for line in access if line["route"] == "api.pay")
    assert api_pay["user_id"] == user_id and api_pay["status"] == 201
    assert all(isinstance(line["user_id"], (int, type(None))) for line in access)
    # The reset link's path is logged as its rule, without the token.
    assert any(line["path"] == "/password/reset/<token>" for line in access)
    for line in access:
        assert {"request_id", "route", "method", "path", "status", "ms", "user_id", "event_id"} <= line.keys()
