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

The JSON API gets the same treatment with its own test: every operation
(bearer tokens of each kind, or none), bodies that mostly fit the operation
with values spoiled (NUL inside strings among them), JSON nested past the
limit and past the interpreter's recursion limit, stray fields, and bodies
that are not JSON at all.
"""
from __future__ import annotations

import re
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
def world(fuzz_app, factory, session, monkeypatch):
    """Something behind every id a route takes: events, tiers, a hold, an order, a ticket, a line entry."""
    import ipaddress

    from webapp.services.messaging import webhooks
    from webapp.services.waiting import waitlist

    def resolve(host, port):
        # A webhook address is resolved when saved: never by real DNS here.
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            return ["93.184.215.14"]

    monkeypatch.setattr(webhooks, "resolve", resolve)

    buyer, admin, other = factory.user(), factory.user(is_admin=True), factory.user()
    seated = factory.seated_event(rows=3, seats_per_row=6)
    ga = factory.ga_event(capacity=30, tiers=2)
    small = factory.ga_event(capacity=1)
    order = buy(session, seated, buyer, seats=factory.seat_ids(seated)[:2])
    hold = reserve_general(session, user_id=buyer.id, event_id=ga.id,
                                     quantities={factory.tier(ga).id: 2})
    buy(session, small, other, quantities={factory.tier(small).id: 1})
    from webapp.services.people import api_tokens

    made = api_tokens.create(session, user_id=buyer.id, is_admin=False, name="fuzz", scope="buyer")
    api_token = made.token
    admin_secret = api_tokens.create(session, user_id=admin.id, is_admin=True, name="fuzz", scope="admin").secret
    from webapp.models import WebhookDelivery, WebhookEndpoint

    hook = WebhookEndpoint(url="https://hooks.example.com/x", event_types=["order.confirmed"], secret="whsec_t",
                           organiser_id=1)
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
        "api_tokens": {"anonymous": None, "buyer": made.secret, "admin": admin_secret, "bogus": "tb_" + "x" * 43},
        "event_id": [str(e.id) for e in (seated, ga, small)],
        "tier_id": [str(t) for t in tiers],
        "hold_id": [str(hold.id)],
        "order_id": [str(order.id)],
        "ticket_id": [str(t.id) for t in order.tickets],
        "entry_id": [str(entry.id)],
        "token_id": [str(api_token.id)],
        "endpoint_id": [str(hook.id)],
        "webhook_id": [str(hook.id)],
        "delivery_id": [str(delivery.id)],
        "code_id": [str(code.id)],
        "user_id": [str(other.id), "999999"],
        "tiers": tiers,
        "seats": factory.seat_ids(seated)[2:8],
        # The mail routes' arguments: links out of messages, the dev mail catcher's files.
        "token": ["not-a-token", "eyJ1IjoxfQ.forged.signature"],
        "message_id": ["1", "999999"],
        # A file of a waiting room's published draw: the first thousand places, and one far past any.
        "file": ["0", "999999"],
        "name": ["missing.eml", "..%2F..%2Fetc%2Fpasswd"],
        "index": ["0", "7"],
        "filename": ["tickets.pdf", "event.ics"],
        # Attendee questions, transfers and wallet passes (absent ones: their 404 is the answer).
        "question_id": ["1", "999999"],
        "document_id": ["1", "999999"],
        # A big venue's section pages (sections are numbered from 1).
        "section": ["1", "0", "999999"],
        "transfer_id": ["1", "999999"],
        "invitation_id": ["1", "999999"],
        "pass_type": ["pass.test", "..%2F..%2Fetc"],
        "serial": ["t1h1", "t99999999999999999999999h1", "h", "t٣h1"],
        # An organiser's public page.
        "slug": ["default", "nobody", "UPPER", "a" * 200],
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


# --------------------------------------------------------------------------- the JSON API

API_EXAMPLES = 2500
# A body each operation would accept (ids filled in from the world); the fuzzer spoils it.
API_BODIES = {
    "reserve": lambda w: {"quantities": [{"tier_id": w["tier"], "quantity": 1}], "access_codes": ["FUZZ10"]},
    "hold_discount": lambda w: {"code": "FUZZ10"},
    "pay": lambda w: {"card": {"number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123", "name": "Ann"}},
    "waitlist_join": lambda w: {"tier_id": None, "quantity": 1},
    "event_create": lambda w: {"title": "Gig", "venue": "Hall", "description": "Loud", "timezone": "Europe/Vienna",
                               "starts_at": "2031-01-01T19:00", "hold_minutes": 8, "per_order_limit": 4},
    "event_update": lambda w: {"title": "Gig", "venue": "Hall", "sales_end_at": None, "waitlist_enabled": True},
    "tier_create": lambda w: {"kind": "general", "name": "Floor", "price_minor": 1000, "colour": "#3b82f6",
                              "capacity": 5},
    "tier_update": lambda w: {"name": "Floor", "price_minor": 1250, "capacity": 6},
    "layout_generate": lambda w: {"sections": ["Stalls"], "rows": 2, "seats_per_row": 3, "first_row_label": "A",
                                  "ranges": [{"tier_id": w["tier"], "from_row": 1, "to_row": 2}]},
    "event_status": lambda w: {"status": "closed"},
    "order_refund": lambda w: {"reason": "Asked"},
    "check_in": lambda w: {"code": "abc"},
    "webhook_create": lambda w: {"url": "https://hooks.example.com/x", "event_id": w["event"],
                                 "event_types": ["order.confirmed"]},
}
API_QUERIES = {"events_list": {"q": "gig", "date": "2030-01-01"}, "event_detail": {"access": "FUZZ10"},
               "orders_search": {"q": "buyer", "event_id": "{event}"}}
JSON_NAMES = ["title", "venue", "description", "name", "code", "reason", "url", "card", "number", "quantities",
              "tier_id", "quantity", "seats", "sections", "ranges", "status", "kind", "event_types", "\x00", "a"]
# Opening brackets for nesting; the closing ones mirror them.
NESTING = {"[": "]", '{"a":': "}", '{"\\u0000":': "}", "[{\"b\":": "}]"}
NOT_JSON = [b"", b"{", b"[1,", b"\x00", b"nul\x00", b'{"a":1}garbage', b"\xff\xfe{}", b'{"title": "\\ud800"}',
            b"NaN", b"1e999999", b'"text"', b"null"]


def _api_operations(app: Flask) -> list[tuple[str, str, str]]:
    from webapp.api.routing import OPERATIONS

    by_view = {op.view: op for op in OPERATIONS}
    found = [(op.method, rule.rule, op.view.__name__) for rule in app.url_map.iter_rules()
             if (op := by_view.get(app.view_functions.get(rule.endpoint))) is not None]
    assert len(found) == len(OPERATIONS)
    return sorted(found)


def _leaves(value, path=()) -> list[tuple]:
    """Every place in a JSON value a fuzzed value can go (containers too)."""
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    places = [path] if path else []
    for key, child in children:
        places += _leaves(child, (*path, key))
    return places


def _put(value, path: tuple, new):
    for key in path[:-1]:
        value = value[key]
    value[path[-1]] = new


def _spoiled(template, path: tuple, value: st.SearchStrategy) -> st.SearchStrategy:
    """Any JSON value; for a string, just as often the same string with a NUL inside (else valid, so it goes far)."""
    original = template
    for key in path:
        original = original[key]
    if not isinstance(original, str):
        return value
    return st.one_of(value, st.integers(0, len(original)).map(lambda i: original[:i] + "\x00" + original[i:]))


def test_no_api_operation_answers_5xx_or_leaks_internals_to_malformed_json(fuzz_app, world):
    """Every API operation, by every kind of caller, fed spoiled bodies (NUL in strings, NaN, huge numbers,
    wrong types, nesting past the limit and far past the interpreter's), stray fields, garbage that is not
    JSON and spoiled queries: never a 5xx, every error as problem details, nothing internal in the answer."""
    import json

    operations = _api_operations(fuzz_app)
    client = fuzz_app.test_client()
    nul_text = st.builds(lambda a, b: a + "\x00" + b, st.text(max_size=5), st.text(max_size=5))
    text = st.one_of(st.sampled_from(NASTY), st.text(max_size=12), nul_text)
    scalar = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70), st.floats(), text,
                       st.sampled_from([int(t) for t in world["tier_id"] + world["event_id"]]))
    value = st.recursive(scalar, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.one_of(st.sampled_from(JSON_NAMES), text), inner, max_size=3)),
        max_leaves=8)
    seen: dict[int, int] = {}
    reached: set[str] = set()
    # Mostly callers who get past the token check.
    roles = ["admin", "admin", "buyer", "buyer", "anonymous", "bogus"]
    started = time.monotonic()

    @settings(max_examples=API_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(operation=st.sampled_from(operations), role=st.sampled_from(roles), data=st.data(),
           kind=st.sampled_from(["spoiled", "spoiled", "spoiled", "nested", "any", "not json"]))
    def one_request(operation, role, data, kind):
        method, rule, name = operation
        url = rule
        for argument in re.findall(r"<int:([a-z_]+)>", rule):
            raw = data.draw(st.sampled_from(world[argument] * 4 + ABSURD_IDS), label=argument)
            url = url.replace(f"<int:{argument}>", raw)
        fill = {"tier": int(data.draw(st.sampled_from(world["tier_id"]), label="tier")),
                "event": int(world["event_id"][1])}
        headers = {"Idempotency-Key": data.draw(st.sampled_from(["k" * 24, "", "short", "k\x00" * 10]),
                                                label="key")}
        if world["api_tokens"][role]:
            headers["Authorization"] = f"Bearer {world['api_tokens'][role]}"
        query = {k: v.format(**fill) for k, v in API_QUERIES.get(name, {}).items()}
        for key in data.draw(st.lists(st.sampled_from(sorted(query) + ["q", "\x00", "date"]), max_size=2),
                             label="spoil query"):
            query[key] = data.draw(st.sampled_from(NASTY), label=key)
        body: bytes | None = None
        content_type = "application/json"
        if name in API_BODIES:
            template = API_BODIES[name](fill)
            places = _leaves(template)
            if kind == "spoiled":
                # Deepest first: an ancestor spoiled later simply replaces what was spoiled inside it.
                for path in sorted(data.draw(st.lists(st.sampled_from(places), max_size=3, unique=True),
                                             label="spoil"), key=len, reverse=True):
                    _put(template, path, data.draw(_spoiled(template, path, value), label=str(path)))
                if data.draw(st.booleans(), label="stray"):
                    template[data.draw(st.sampled_from(JSON_NAMES), label="stray name")] = data.draw(value)
                body = json.dumps(template).encode()
            elif kind == "nested":
                opening = data.draw(st.sampled_from(sorted(NESTING)), label="opening")
                depth = data.draw(st.sampled_from([31, 32, 33, 40, 500, 3000, 6000]), label="depth")
                nested = opening * depth + json.dumps(data.draw(scalar, label="core")) + NESTING[opening] * depth
                path = data.draw(st.sampled_from([(), *places]), label="where")
                if path:
                    _put(template, path, "__NESTED__")
                    body = json.dumps(template).replace('"__NESTED__"', nested, 1).encode()
                else:
                    body = nested.encode()
            elif kind == "any":
                body = json.dumps(data.draw(value, label="body")).encode()
            else:
                body = data.draw(st.sampled_from(NOT_JSON), label="not json")
                content_type = data.draw(st.sampled_from(["application/json", "text/plain"]), label="type")
        response = client.open(url, method=method, data=body, content_type=content_type if body is not None else None,
                               query_string=query, headers=headers)
        answer = response.get_data().decode("utf-8", "replace")
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        reached.add(name)
        assert response.status_code < 500, (method, url, role, body and body[:300], answer[:500])
        if response.status_code >= 400:
            assert response.mimetype == "application/problem+json", (method, url, response.status_code, answer[:300])
        leaked = [marker for marker in LEAKS if marker in answer]
        assert not leaked, (method, url, role, body and body[:300], leaked, answer[:500])

    one_request()
    assert reached == {name for _, _, name in operations}
    print(f"\napi fuzz: {sum(seen.values())} requests over {len(operations)} operations in "
          f"{time.monotonic() - started:.0f} s; statuses {dict(sorted(seen.items()))}")
