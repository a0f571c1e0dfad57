"""The public API: tokens, problems in the pages' words, the buyer's walk from event to ticket, admin."""
from __future__ import annotations

import io
import json
import logging
import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text

from tests.support import csrf_token, login
from webapp.models import ApiToken, Order
from webapp.services.people import api_tokens

GOOD_CARD = {"number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123", "name": "Ada Lovelace"}
DECLINED_CARD = {**GOOD_CARD, "number": "4000 0000 0000 0002"}


class FreshContextClient(FlaskClient):
    """Each request in an app context of its own, as in production (a fresh database session per request)."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def client(app):
    return FreshContextClient(app, app.response_class, use_cookies=True)


def token_for(session, user, scope: str = "buyer") -> str:
    made = api_tokens.create(session, user_id=user.id, is_admin=user.is_admin, name="test", scope=scope)
    session.commit()
    return made.secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == status and body["detail"]
    return body


# --- tokens -----------------------------------------------------------------

def test_a_token_is_made_on_the_account_page_shown_once_and_stored_hashed(client, factory, session):
    buyer = factory.user()
    login(client, buyer.email)
    token = csrf_token(client, "/account/tokens")
    page = client.post("/account/tokens", data={"name": "my script", "scope": "buyer", "csrf_token": token})
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    secret = re.search(r'value="(tb_[A-Za-z0-9_-]+)"', page.get_data(as_text=True)).group(1)
    stored = session.scalars(select(ApiToken)).one()
    assert stored.token_hash == api_tokens.digest(secret) and secret not in stored.token_hash
    assert stored.last_used_at is None
    # Shown once: the list never shows it again.
    assert secret not in client.get("/account/tokens").get_data(as_text=True)
    assert client.get("/api/v1/orders", headers=bearer(secret)).status_code == 200
    session.expire_all()
    assert session.get(ApiToken, stored.id).last_used_at is not None
    # A buyer cannot make an admin token.
    refused = client.post("/account/tokens", data={"name": "x", "scope": "admin", "csrf_token": token})
    assert refused.status_code == 400 and "Only members of an organiser team" in refused.get_data(as_text=True)


def test_a_revoked_token_is_refused(client, factory, session):
    buyer = factory.user()
    secret = token_for(session, buyer)
    assert client.get("/api/v1/orders", headers=bearer(secret)).status_code == 200
    login(client, buyer.email)
    token = csrf_token(client, "/account/tokens")
    token_id = session.scalars(select(ApiToken.id)).one()
    assert client.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": token}).status_code == 303
    refused = client.get("/api/v1/orders", headers=bearer(secret))
    body = problem(refused, 401)
    assert "revoked" in body["detail"]
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer tb_nope", "Basic dXNlcjpwYXNz", "Bearer " + "x" * 500])
def test_without_a_valid_token_every_answer_is_401(client, header):
    headers = {"Authorization": header} if header else {}
    problem(client.get("/api/v1/orders", headers=headers), 401)
    problem(client.post("/api/v1/events/1/holds", json={"seats": [1]}, headers=headers), 401)


def test_the_api_ignores_the_session_cookie_and_needs_no_csrf(client, factory, session):
    buyer = factory.user()
    login(client, buyer.email)
    # Logged in through the pages, the cookie alone is not enough...
    problem(client.get("/api/v1/orders"), 401)
    # ...and a token needs no CSRF token for a state change.
    event = factory.ga_event(5)
    made = client.post(f"/api/v1/events/{event.id}/holds", json={"quantities": [
        {"tier_id": event.tiers[0].id, "quantity": 1}]}, headers=bearer(token_for(session, buyer)))
    assert made.status_code == 201
    assert "Set-Cookie" not in made.headers


def test_a_buyer_token_cannot_reach_admin_resources_or_another_buyers_things(client, factory, session):
    event = factory.ga_event(10)
    alice, bob = factory.user(), factory.user()
    admin = factory.user(is_admin=True)
    order = factory.order(event, alice)
    bob_token = token_for(session, bob)
    for path in ("/api/v1/admin/orders", f"/api/v1/admin/events/{event.id}/stats",
                 f"/api/v1/admin/events/{event.id}/attendees.csv"):
        problem(client.get(path, headers=bearer(bob_token)), 404)
    problem(client.post(f"/api/v1/admin/orders/{order.id}/refund", json={"reason": "x"},
                        headers=bearer(bob_token)), 404)
    # An admin's buyer-scoped token is a buyer token.
    problem(client.get("/api/v1/admin/orders", headers=bearer(token_for(session, admin))), 404)
    problem(client.get(f"/api/v1/orders/{order.id}", headers=bearer(bob_token)), 404)
    problem(client.get(f"/api/v1/orders/{order.id}/tickets", headers=bearer(bob_token)), 404)
    problem(client.post(f"/api/v1/orders/{order.id}/cancel", headers=bearer(bob_token)), 404)
    problem(client.get(f"/api/v1/holds/{order.hold_id}", headers=bearer(bob_token)), 404)
    assert session.get(Order, order.id).status.value == "confirmed"


def test_tokens_never_appear_in_logs(client, factory, session):
    from webapp.logs import json_lines

    buyer = factory.user()
    secret = token_for(session, buyer)
    event = factory.ga_event(1)
    # The app's own JSON-lines formatter and filter, writing where we can read.
    stream = io.StringIO()
    handler = json_lines(logging.StreamHandler(stream))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel("INFO")
    try:
        client.get("/api/v1/orders", headers=bearer(secret))
        client.post(f"/api/v1/events/{event.id}/holds", json={"quantities": [
            {"tier_id": event.tiers[0].id, "quantity": 1}]}, headers=bearer(secret))
        client.get("/api/v1/orders?token=" + secret, headers=bearer(secret + "x"))
        client.get("/api/v1/nope", headers=bearer(secret))
        client.post(f"/api/v1/events/{event.id}/holds", json={"seats": [secret]}, headers=bearer(secret))
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    logged = stream.getvalue()
    lines = [json.loads(line) for line in logged.splitlines()]
    assert any(line.get("message") == "hold.created" and line.get("user_id") == buyer.id for line in lines), logged
    assert sum(line.get("message") == "request" for line in lines) == 5
    assert secret not in logged and secret[3:] not in logged and api_tokens.digest(secret) not in logged


def test_cors_is_off_unless_configured(client, factory, session, app):
    secret = token_for(session, factory.user())
    plain = client.get("/api/v1/events", headers={**bearer(secret), "Origin": "https://shop.example"})
    assert "Access-Control-Allow-Origin" not in plain.headers
    app.config["API_CORS_ORIGINS"] = ("https://shop.example",)
    try:
        allowed = client.get("/api/v1/events", headers={**bearer(secret), "Origin": "https://shop.example"})
        assert allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example"
        other = client.get("/api/v1/events", headers={**bearer(secret), "Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in other.headers
    finally:
        app.config["API_CORS_ORIGINS"] = ()


def test_rate_limits_are_per_token_with_headers(database_url, factory, session):
    from tests.support import rate_limited_client

    a, b = token_for(session, factory.user()), token_for(session, factory.user())
    with rate_limited_client(database_url, API_RATE_LIMIT="3 per minute") as limited:
        answers = [limited.get("/api/v1/orders", headers=bearer(a)) for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert answers[0].headers["X-RateLimit-Limit"] == "3"
        assert answers[1].headers["X-RateLimit-Remaining"] == "1"
        body = problem(answers[3], 429)
        assert int(answers[3].headers["Retry-After"]) >= 1 and "Too many" in body["detail"]
        # Another token has its own budget.
        assert limited.get("/api/v1/orders", headers=bearer(b)).status_code == 200


# --- the buyer's walk -----------------------------------------------------------

def test_from_event_list_to_ticket_and_cancel(client, factory, session):
    event = factory.ga_event(10, tiers=2)
    buyer = factory.user()
    h = bearer(token_for(session, buyer))
    listed = client.get("/api/v1/events?q=festival", headers=h).get_json()["events"]
    assert [e["id"] for e in listed] == [event.id]
    assert client.get("/api/v1/events?q=nothing-like-it", headers=h).get_json()["events"] == []
    detail = client.get(f"/api/v1/events/{event.id}", headers=h).get_json()
    assert [t["available"] for t in detail["tiers"]] == [10, 10]
    tier = detail["tiers"][0]["id"]

    made = client.post(f"/api/v1/events/{event.id}/holds", json={"quantities": [{"tier_id": tier, "quantity": 2}]},
                       headers=h)
    assert made.status_code == 201
    hold = made.get_json()
    assert made.headers["Location"].endswith(f"/api/v1/holds/{hold['id']}")
    assert hold["payable"] and hold["expires_at"] and hold["total_minor"] == 2 * 5000 and len(hold["lines"]) == 2
    # No tax on this tier; no Stripe key with the simulated gateway.
    assert (hold["net_minor"], hold["tax_minor"], hold["stripe_publishable_key"]) == (10000, 0, None)
    assert client.get(f"/api/v1/events/{event.id}", headers=h).get_json()["tiers"][0]["available"] == 8

    declined = client.post(f"/api/v1/holds/{hold['id']}/payment", json={"card": DECLINED_CARD},
                           headers={**h, "Idempotency-Key": "k" * 20})
    body = problem(declined, 402)
    assert body["decline_code"] == "card_declined" and body["detail"]
    paid = client.post(f"/api/v1/holds/{hold['id']}/payment", json={"card": GOOD_CARD},
                       headers={**h, "Idempotency-Key": "second-try-key-0001"})
    assert paid.status_code == 201, paid.get_data(as_text=True)
    order = paid.get_json()
    assert order["status"] == "confirmed" and len(order["tickets"]) == 2
    # The same key again: the same order, no second charge.
    again = client.post(f"/api/v1/holds/{hold['id']}/payment", json={"card": GOOD_CARD},
                        headers={**h, "Idempotency-Key": "second-try-key-0001"})
    assert again.get_json()["id"] == order["id"]
    assert session.execute(text("SELECT count(*) FROM gateway_charges WHERE outcome = 'approved'")).scalar() == 1

    tickets = client.get(f"/api/v1/orders/{order['id']}/tickets", headers=h).get_json()["tickets"]
    assert all(len(t["code"]) >= 16 for t in tickets)
    assert [o["id"] for o in client.get("/api/v1/orders", headers=h).get_json()["orders"]] == [order["id"]]
    cancelled = client.post(f"/api/v1/orders/{order['id']}/cancel", headers=h)
    assert cancelled.get_json()["status"] == "refunded"
    problem(client.post(f"/api/v1/orders/{order['id']}/cancel", headers=h), 409)
    assert session.execute(text("SELECT count(*) FROM outbox_messages WHERE template = 'order_cancelled'")
                           ).scalar() == 1


def test_refusals_use_the_pages_words(client, factory, session):
    seated = factory.seated_event(1, 4)
    seats = factory.seat_ids(seated)
    rival, buyer = factory.user(), factory.user()
    factory.hold(seated, rival, seats=seats[:2])
    h = bearer(token_for(session, buyer))
    taken = problem(client.post(f"/api/v1/events/{seated.id}/holds", json={"seats": seats[1:3]}, headers=h), 409)
    assert taken["detail"] == "Sorry, the following seat was just taken: Stalls, row A, seat 2."
    assert taken["taken_seats"] == [{"id": seats[1], "label": "Stalls, row A, seat 2"}]

    ga = factory.ga_event(3)
    tier = ga.tiers[0]
    short = problem(client.post(f"/api/v1/events/{ga.id}/holds",
                                json={"quantities": [{"tier_id": tier.id, "quantity": 5}]}, headers=h), 409)
    assert short["detail"] == f"Only 3 left in {tier.name}; you asked for 5." and short["left"] == 3
    factory.hold(ga, rival, quantities={tier.id: 3})
    gone = problem(client.post(f"/api/v1/events/{ga.id}/holds",
                               json={"quantities": [{"tier_id": tier.id, "quantity": 1}]}, headers=h), 409)
    assert gone["detail"] == f"{tier.name} is sold out. You can join the waiting list."
    assert gone["waitlist_open"] is True and gone["left"] == 0

    bad = problem(client.post(f"/api/v1/events/{ga.id}/holds", json={"quantities": "lots"}, headers=h), 400)
    assert "quantities" in bad["errors"]
    problem(client.post(f"/api/v1/events/{ga.id}/holds", json={"seats": [1], "quantities": []}, headers=h), 400)
    problem(client.post(f"/api/v1/events/{ga.id}/holds", data="not json", headers=h), 415)
    problem(client.post("/api/v1/events/999999/holds", json={"seats": [1]}, headers=h), 404)
    problem(client.get("/api/v1/events/99999999999", headers=h), 404)


def test_seats_answer_304_while_nothing_changed(client, factory, session):
    event = factory.seated_event(2, 3)
    seats = factory.seat_ids(event)
    buyer = factory.user()
    h = bearer(token_for(session, buyer))
    first = client.get(f"/api/v1/events/{event.id}/seats", headers=h)
    assert first.status_code == 200 and {s["status"] for s in first.get_json()["seats"]} == {"available"}
    etag = first.headers["ETag"]
    assert client.get(f"/api/v1/events/{event.id}/seats", headers={**h, "If-None-Match": etag}).status_code == 304
    factory.hold(event, buyer, seats=seats[:1])
    changed = client.get(f"/api/v1/events/{event.id}/seats", headers={**h, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert changed.get_json()["seats"][0]["status"] == "mine"
    ga = factory.ga_event(2)
    problem(client.get(f"/api/v1/events/{ga.id}/seats", headers=h), 404)


def test_hold_release_and_the_waiting_list(client, factory, session):
    event = factory.ga_event(1)
    tier = event.tiers[0]
    first, second = factory.user(), factory.user()
    h1, h2 = bearer(token_for(session, first)), bearer(token_for(session, second))
    hold = client.post(f"/api/v1/events/{event.id}/holds", json={"quantities": [{"tier_id": tier.id, "quantity": 1}]},
                       headers=h1).get_json()
    open_event = factory.ga_event(5)
    not_yet = problem(client.post(f"/api/v1/events/{open_event.id}/waitlist",
                                  json={"tier_id": open_event.tiers[0].id, "quantity": 1}, headers=h1), 409)
    assert not_yet["detail"] == "Tickets are still available: you can book them directly."
    joined = client.post(f"/api/v1/events/{event.id}/waitlist", json={"tier_id": tier.id, "quantity": 1}, headers=h2)
    assert joined.status_code == 201, joined.get_data(as_text=True)
    entry = joined.get_json()
    assert entry["position"] == 1 and entry["offer"] is None
    problem(client.get(f"/api/v1/waitlist/{entry['id']}", headers=h1), 404)

    assert client.delete(f"/api/v1/holds/{hold['id']}", headers=h1).status_code == 204
    offered = client.get(f"/api/v1/waitlist/{entry['id']}", headers=h2).get_json()
    assert offered["status"] == "offered" and offered["offer"]["quantity"] == 1
    accepted = client.post(f"/api/v1/waitlist/{entry['id']}/accept", headers=h2).get_json()
    assert accepted["kind"] == "offer" and accepted["payable"]
    paid = client.post(f"/api/v1/holds/{accepted['id']}/payment", json={"card": GOOD_CARD},
                       headers={**h2, "Idempotency-Key": "offer-payment-key-1"})
    assert paid.status_code == 201
    assert client.get("/api/v1/waitlist", headers=h2).get_json()["entries"][0]["status"] == "fulfilled"


def test_decline_and_leave(client, factory, session):
    event = factory.ga_event(1)
    tier = event.tiers[0]
    holder, waiting = factory.user(), factory.user()
    held = factory.hold(event, holder)
    h = bearer(token_for(session, waiting))
    entry = client.post(f"/api/v1/events/{event.id}/waitlist", json={"tier_id": tier.id, "quantity": 1},
                        headers=h).get_json()
    problem(client.post(f"/api/v1/waitlist/{entry['id']}/accept", headers=h), 409)
    problem(client.post(f"/api/v1/waitlist/{entry['id']}/decline", headers=h), 409)
    from webapp.services.selling import inventory

    inventory.release_hold_by_id(session, hold_id=held.id, user_id=holder.id)
    session.commit()
    declined = client.post(f"/api/v1/waitlist/{entry['id']}/decline", headers=h)
    assert declined.get_json()["status"] == "lapsed"
    problem(client.delete(f"/api/v1/waitlist/{entry['id']}", headers=h), 409)


# --- admin ----------------------------------------------------------------------

def test_admin_runs_an_event_through_the_api(client, factory, session):
    admin = factory.user(is_admin=True)
    h = bearer(token_for(session, admin, "admin"))
    bad = problem(client.post("/api/v1/admin/events", json={"title": "", "venue": "Hall",
                                                            "starts_at": "2020-01-01T19:00"}, headers=h), 400)
    assert "Give the event a title." in bad["errors"]["title"]
    assert "A new event must start in the future." in bad["errors"]["starts_at"]
    gap = problem(client.post("/api/v1/admin/events", json={"title": "Gap", "venue": "Hall",
                                                            "timezone": "Europe/Vienna",
                                                            "starts_at": "2030-03-31T02:30"}, headers=h), 400)
    assert gap["errors"]["starts_at"]
    made = client.post("/api/v1/admin/events", json={"title": "API Night", "venue": "Hall", "timezone": "Europe/Vienna",
                                                     "starts_at": "2030-06-01T19:30", "per_order_limit": 4}, headers=h)
    assert made.status_code == 201, made.get_data(as_text=True)
    event = made.get_json()
    assert event["status"] == "draft" and event["starts_at"].startswith("2030-06-01T19:30:00+02:00")
    eid = event["id"]
    edited = client.patch(f"/api/v1/admin/events/{eid}", json={"title": "API Night 2"}, headers=h).get_json()
    assert edited["title"] == "API Night 2" and edited["starts_at"] == event["starts_at"]
    problem(client.post(f"/api/v1/admin/events/{eid}/status", json={"status": "on_sale"}, headers=h), 409)
    tiers = client.post(f"/api/v1/admin/events/{eid}/tiers", json={"name": "Floor", "price_minor": 2550,
                                                                   "capacity": 5}, headers=h)
    assert tiers.status_code == 201, tiers.get_data(as_text=True)
    floor = tiers.get_json()["tiers"][0]
    assert floor["price_minor"] == 2550 and floor["capacity"] == 5
    mixed = problem(client.post(f"/api/v1/admin/events/{eid}/tiers", json={"kind": "seated", "name": "Balcony",
                                                                           "price_minor": 4000}, headers=h), 409)
    assert "cannot mix" in mixed["detail"]
    hall = client.post("/api/v1/admin/events", json={"title": "Seated", "venue": "Hall",
                                                     "starts_at": "2030-06-02T19:30"}, headers=h).get_json()
    seated = client.post(f"/api/v1/admin/events/{hall['id']}/tiers", json={"kind": "seated", "name": "Balcony",
                                                                           "price_minor": 4000}, headers=h)
    assert seated.status_code == 201, seated.get_data(as_text=True)
    balcony = seated.get_json()["tiers"][0]
    layout = client.post(f"/api/v1/admin/events/{hall['id']}/layout", json={
        "sections": ["Balcony"], "rows": 2, "seats_per_row": 3,
        "ranges": [{"tier_id": balcony["id"], "from_row": 1, "to_row": 2}]}, headers=h)
    assert layout.status_code == 201 and layout.get_json()["created"] == 6
    patched = client.patch(f"/api/v1/admin/events/{eid}/tiers/{floor['id']}", json={"capacity": 7}, headers=h)
    assert next(t for t in patched.get_json()["tiers"] if t["id"] == floor["id"])["capacity"] == 7
    opened = client.post(f"/api/v1/admin/events/{eid}/status", json={"status": "on_sale"}, headers=h).get_json()
    assert opened["status"] == "on_sale"

    buyer = factory.user(email="fan@example.com")
    bh = bearer(token_for(session, buyer))
    hold = client.post(f"/api/v1/events/{eid}/holds", json={"quantities": [{"tier_id": floor["id"], "quantity": 2}]},
                       headers=bh).get_json()
    order = client.post(f"/api/v1/holds/{hold['id']}/payment", json={"card": GOOD_CARD},
                        headers={**bh, "Idempotency-Key": "admin-flow-key-01"}).get_json()
    stats = client.get(f"/api/v1/admin/events/{eid}/stats", headers=h).get_json()
    assert stats["sold"] == 2 and stats["capacity"] == 7 and stats["revenue_minor"] == 5100
    found = client.get("/api/v1/admin/orders?q=fan@", headers=h).get_json()["orders"]
    assert [o["id"] for o in found] == [order["id"]]
    code = order["tickets"][0]["code"]
    admitted = client.post(f"/api/v1/admin/events/{eid}/check-in", json={"code": code}, headers=h)
    assert admitted.status_code == 200 and admitted.get_json()["admitted"] is True
    twice = problem(client.post(f"/api/v1/admin/events/{eid}/check-in", json={"code": code}, headers=h), 409)
    assert twice["outcome"] == "already_checked_in"
    unknown = problem(client.post(f"/api/v1/admin/events/{eid}/check-in", json={"code": "nope"}, headers=h), 404)
    assert unknown["outcome"] == "unknown"
    csv = client.get(f"/api/v1/admin/events/{eid}/attendees.csv", headers=h)
    assert csv.mimetype == "text/csv" and csv.is_streamed
    assert len(list(io.StringIO(csv.get_data(as_text=True)))) == 3  # header + 2 tickets
    refunded = client.post(f"/api/v1/admin/orders/{order['id']}/refund", json={"reason": "double booking"},
                           headers=h).get_json()
    assert refunded["status"] == "refunded"
    audit = session.execute(text("SELECT action FROM audit_log WHERE actor_id = :a ORDER BY id"),
                            {"a": admin.id}).scalars().all()
    assert {"event.create", "event.update", "event.status", "event.export", "ticket.check_in"} <= set(audit)


def test_the_document_and_its_page(client, factory, session):
    doc = client.get("/api/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0"
    assert "/api/v1/events/{event_id}/holds" in doc["paths"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "POST /api/v1/events/{event_id}/holds" in html and 'id="problem-seats-taken"' in html
    assert "<script>" not in html and " on" + "click=" not in html


def test_the_database_away_is_503_with_retry_after():
    from config import TestConfig
    from tests.support import free_port
    from webapp import create_app

    # Nothing listens on this port: every connection is refused, as when PostgreSQL is down.
    away = create_app({"SQLALCHEMY_DATABASE_URI": f"postgresql+psycopg2://u@127.0.0.1:{free_port()}/db"},
                      config_class=TestConfig)
    answer = away.test_client().get("/api/v1/orders", headers=bearer("tb_" + "a" * 43))
    body = problem(answer, 503)
    assert answer.headers["Retry-After"] and "database" in body["detail"]
