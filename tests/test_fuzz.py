"""Every route, fed malformed parameters and forms as an anonymous visitor, a buyer
and an admin: never a 5xx, never a traceback or SQL in the answer.

Hypothesis draws the route, the role, the path ids (real ones mostly, so the
views get past their 404s, and some absurd ones), and the parameters: mostly
a valid form or query for that route with a few values replaced, so that a bad
value gets as far as the database, plus stray ones. The values are chosen to
break naive parsing: NUL, superscript and Arabic-Indic digits, sNaN and
Infinity, numbers past bigint, far-away dates, LIKE wildcards. CSRF is off in this app (every state-changing
route is checked for it elsewhere), so the forms really get parsed. The run
is bounded to about a minute.
"""
from __future__ import annotations

import time
from urllib.parse import quote

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from config import TestConfig
from tests.support import buy, reserve_general, sign_in
from webapp import create_app
from webapp.extensions import db

EXAMPLES = 3000

NASTY = [
    "", " ", "\x00", "a\x00b", "¹", "²³", "٣", "１２", "sNaN", "NaN", "-nan", "Infinity", "-Infinity", "1e999999",
    "9" * 30, "-1", "0", "1", "2", "+1", "1.5", "1,5", " 7 ", "1_000", "2147483647", "2147483648",
    "9223372036854775808", "-9223372036854775809", "99999999999999999999999", "9999-12-31", "0001-01-01",
    "2027-02-30", "9999-12-31T23:59", "0001-01-01T00:00", "2027-05-01T19:30", "%", "_", "%_%", "\\", "\\%",
    "' OR 1=1 --", "\"; DROP TABLE users; --", "<script>alert(1)</script>", "{{7*7}}", "#1", "#²",
    "1:+1", "1:-1", "²:+1", "1:+²", "x" * 300, "\u202e", "\ud7ff", "é", "any", "general", "seated",
    "on_sale", "closed", "draft", "#3b82f6", "4242424242424242", "4242 4242 4242 424²", "12/99", "1²/29",
    "buyer@example.com", "a@b", "@", "a" * 80 + "@example.com", "/orders", "//evil.example", "https://evil.example",
]
PARAMS = [
    "q", "date", "page", "event", "action", "step", "seat", "seat", "tier", "quantity", "email", "password", "name",
    "next", "title", "venue", "description", "starts_at", "sales_end_at", "image_url", "hold_minutes",
    "per_order_limit", "offer_hours", "waitlist_enabled", "price", "capacity", "colour", "kind", "sections", "rows",
    "seats_per_row", "first_row_label", "tier_1", "from_1", "to_1", "reason", "code", "refund", "status", "section",
    "block", "unblock", "number", "expiry", "cvc", "idempotency_key", "back",
    "percent_off", "amount_off", "tiers", "max_uses", "valid_from", "valid_until", "bulk-count", "bulk-batch", "active",
    "\x00", "qty-\x00", "qty-²",
]
_CARD = {"idempotency_key": "k" * 24, "name": "Ann Buyer", "number": "4242424242424242", "expiry": "12/30",
         "cvc": "123"}
_EVENT = {"title": "Gig", "venue": "Hall", "starts_at": "2030-01-01T19:00", "hold_minutes": "8",
          "per_order_limit": "8", "offer_hours": "12", "description": "Loud", "sales_end_at": "2030-01-01T18:00"}
_LAYOUT = {"sections": "Stalls", "rows": "2", "seats_per_row": "3", "first_row_label": "A", "tier_1": "{tier}",
           "from_1": "1", "to_1": "2"}
_CODE = {"kind": "discount", "code": "SAVE5", "percent_off": "5", "tiers": "{tier}", "max_uses": "10",
         "per_buyer_max": "1", "min_quantity": "1", "valid_from": "2030-01-01T10:00", "valid_until": "2030-02-01T10:00"}
# A request each route would accept; the fuzzer spoils some of its values.
VALID = {
    "shop.index": {"q": "gig", "date": "2030-01-01"},
    "shop.event_page": {"seat": "{seat}", "qty-{tier}": "1", "step": "{tier}:+1"},
    "shop.tier_picker": {"qty-{tier}": "1", "step": "{tier}:+1"},
    "shop.seat_map": {"seat": "{seat}"}, "shop.selection": {"seat": "{seat}"}, "shop.seat_status": {"seat": "{seat}"},
    "shop.reserve": {"qty-{tier}": "1", "seat": "{seat}"},
    "auth.login_get": {"next": "/orders"}, "auth.register_get": {"next": "/orders"},
    "auth.login_post": {"email": "buyer@example.com", "password": "wrong-password-1"},
    "auth.register_post": {"name": "Ann", "email": "new@example.com", "password": "a-long-passphrase-9"},
    "auth.register_validate": {"name": "Ann", "email": "new@example.com", "password": "a-long-passphrase-9"},
    "checkout.pay": _CARD, "checkout.validate_card_field": _CARD,
    "waitlist.join": {"tier": "any", "quantity": "1"}, "waitlist.leave": {"back": "event"},
    "admin.event_create": _EVENT, "admin.event_update": _EVENT, "admin.event_validate": _EVENT,
    "admin.event_status": {"status": "closed"}, "admin.event_cancel": {"reason": "Storm"},
    "admin.tier_create": {"kind": "general", "name": "Floor", "price": "10", "colour": "#3b82f6", "capacity": "5"},
    "admin.tier_update": {"t{tid}-name": "Floor", "t{tid}-price": "12.50", "t{tid}-colour": "#3b82f6",
                          "t{tid}-capacity": "5", "t{tid}-kind": "general"},
    "admin.layout_generate": _LAYOUT, "admin.layout_preview": _LAYOUT,
    "admin.section_delete": {"section": "Stalls"}, "admin.seat_toggle": {"block": "{seat}"},
    "admin.orders": {"q": "buyer", "event": "{event}"}, "admin.order_cancel": {"reason": "Asked", "refund": "1"},
    "admin.checkin_post": {"code": "abc"},
    "admin.code_create": _CODE, "admin.code_update": _CODE, "admin.code_set_active": {"active": "0"},
    "admin.codes_generate": {"bulk-" + k: v for k, v in _CODE.items()} | {"bulk-count": "3", "bulk-batch": "fz"},
    "admin.codes_csv": {"batch": "fz"}, "admin.audit_log": {"event": "{event}", "page": "1", "action": "event"},
    "account.cancel_post": {"confirm": "1"}, "account.token_create": {"name": "script", "scope": "buyer"},
}
FIELDS = ["email", "password", "name", "title", "starts_at", "hold_minutes", "price", "number", "expiry", "cvc",
          "csrf_token", "nope", "\x00", "²"]
ABSURD_IDS = ["0", "2147483648", "9223372036854775808", "1" * 40]
LEAKS = ("Traceback (most recent call last)", "psycopg2", "sqlalchemy", "SELECT ", "INSERT INTO", "UPDATE units",
         "File \"/")


@pytest.fixture(scope="module")
def fuzz_app(app) -> Flask:
    fuzz = create_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"], "WTF_CSRF_ENABLED": False,
                       "LOG_LEVEL": "CRITICAL"}, config_class=TestConfig)
    yield fuzz
    with fuzz.app_context():
        db.engine.dispose()


@pytest.fixture
def world(fuzz_app, factory, session):
    """Something behind every id a route takes: events, tiers, a hold, an order, a ticket, a line entry."""
    from webapp.services.waiting import waitlist

    buyer, admin, other = factory.user(), factory.user(is_admin=True), factory.user()
    seated = factory.seated_event(rows=3, seats_per_row=6)
    ga = factory.ga_event(capacity=30, tiers=2)
    small = factory.ga_event(capacity=1)
    order = buy(session, seated, buyer, seats=factory.seat_ids(seated)[:2])
    hold = reserve_general(session, user_id=buyer.id, event_id=ga.id,
                                     quantities={factory.tier(ga).id: 2})
    buy(session, small, other, quantities={factory.tier(small).id: 1})
    from webapp.services.people import api_tokens

    api_token = api_tokens.create(session, user_id=buyer.id, is_admin=False, name="fuzz", scope="buyer").token
    from webapp.models import WebhookDelivery, WebhookEndpoint

    hook = WebhookEndpoint(url="https://hooks.example.com/x", event_types=["order.confirmed"], secret="whsec_t")
    session.add(hook)
    session.flush()
    delivery = WebhookDelivery(endpoint_id=hook.id, event_type="order.confirmed", body="{}")
    session.add(delivery)
    entry = waitlist.join(session, user_id=buyer.id, event_id=small.id, tier_id=None, quantity=1)
    from webapp.services.admin import codes

    code = codes.create_code(session, event_id=ga.id, raw_code="FUZZ10", actor_id=admin.id,
                             spec=codes.CodeSpec(kind="discount", percent_off=10))
    session.commit()
    tiers = [t.id for e in (seated, ga, small) for t in e.tiers]
    world = {
        "users": {"anonymous": None, "buyer": buyer.id, "admin": admin.id},
        "event_id": [str(e.id) for e in (seated, ga, small)],
        "tier_id": [str(t) for t in tiers],
        "hold_id": [str(hold.id)],
        "order_id": [str(order.id)],
        "ticket_id": [str(t.id) for t in order.tickets],
        "entry_id": [str(entry.id)],
        "token_id": [str(api_token.id)],
        "endpoint_id": [str(hook.id)],
        "delivery_id": [str(delivery.id)],
        "code_id": [str(code.id)],
        "user_id": [str(other.id), "999999"],
        "tiers": tiers,
        "seats": factory.seat_ids(seated)[2:8],
        # The mail routes' arguments: links out of messages, the dev mail catcher's files.
        "token": ["not-a-token", "eyJ1IjoxfQ.forged.signature"],
        "message_id": ["1", "999999"],
        "name": ["missing.eml", "..%2F..%2Fetc%2Fpasswd"],
        "index": ["0", "7"],
        "filename": ["tickets.pdf", "event.ics"],
    }
    # Nothing left open: the fuzzing outlasts idle_in_transaction_session_timeout.
    session.commit()
    return world


def _routes(app: Flask) -> list[tuple[str, str, str, list[str]]]:
    routes = []
    for rule in app.url_map.iter_rules():
        # The JSON API answers only bearer tokens (401 to these clients); its
        # contract tests feed it generated input instead (test_api_contract.py).
        if rule.endpoint == "static" or rule.rule.startswith("/api/v1/"):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((method, rule.rule, rule.endpoint, sorted(rule.arguments)))
    return sorted(routes)


def test_no_route_answers_5xx_or_leaks_internals_to_malformed_input(fuzz_app, world):
    routes = _routes(fuzz_app)
    clients = {role: fuzz_app.test_client() for role in world["users"]}
    value = st.one_of(st.sampled_from(NASTY), st.text(max_size=12),
                      st.sampled_from(world["tier_id"] + world["event_id"]),
                      st.integers(min_value=-2**70, max_value=2**70).map(str))
    name = st.one_of(st.sampled_from(PARAMS), st.sampled_from([f"qty-{t}" for t in world["tiers"]]),
                     st.text(min_size=1, max_size=8))
    seen: dict[int, int] = {}
    started = time.monotonic()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(route=st.sampled_from(routes), role=st.sampled_from(sorted(world["users"])), data=st.data(),
           stray=st.lists(st.tuples(name, value), max_size=3), htmx=st.booleans(), start_valid=st.integers(0, 9))
    def one_request(route, role, data, stray, htmx, start_valid):
        method, rule, endpoint, arguments = route
        url, picked = rule, {}
        for argument in arguments:
            if argument == "field":
                raw = data.draw(st.sampled_from(FIELDS), label="field")
            else:
                raw = data.draw(st.sampled_from(world[argument] * 4 + ABSURD_IDS), label=argument)
            picked[argument] = raw
            url = url.replace(f"<int:{argument}>", quote(raw, safe="")).replace(f"<{argument}>", quote(raw, safe=""))
        fill = {"tier": data.draw(st.sampled_from(world["tier_id"]), label="tier"),
                "seat": str(data.draw(st.sampled_from(world["seats"]), label="seat")),
                "event": world["event_id"][0], "tid": picked.get("tier_id", "1")}
        valid = {k.format(**fill): v.format(**fill) for k, v in VALID.get(endpoint, {}).items()} \
            if start_valid else {}
        for key in data.draw(st.lists(st.sampled_from(sorted(valid)), max_size=3), label="spoil") if valid else []:
            valid[key] = data.draw(value, label=key)
        params = list(valid.items()) + stray
        client = clients[role]
        if world["users"][role] is None:
            client.delete_cookie("session")
        else:
            with fuzz_app.app_context():
                sign_in(client, world["users"][role])  # again: a fuzzed logout may have ended it
        headers = {"HX-Request": "true"} if htmx else {}
        params = MultiDict(params)
        if method == "GET":
            response = client.get(url, query_string=params, headers=headers)
        else:
            response = client.open(url, method=method, data=params, headers=headers)
        body = response.get_data().decode("utf-8", "replace")
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (method, url, role, params, body[:500])
        leaked = [marker for marker in LEAKS if marker in body]
        assert not leaked, (method, url, role, params, leaked, body[:500])

    one_request()
    print(f"\nfuzz: {sum(seen.values())} requests over {len(routes)} routes in {time.monotonic() - started:.0f} s; "
          f"statuses {dict(sorted(seen.items()))}")
