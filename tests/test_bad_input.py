"""The inputs that gave 500s under fuzzing, one by one: each is now a clear 4xx
(or simply no match), never a 500. Also LIKE wildcards and the body size limit."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from tests.support import admin_client, buy, csrf_token, login, reserve_general
from webapp.parsing import parse_date, parse_decimal, parse_id, parse_int

HX = {"HX-Request": "true"}


def test_the_parsers_accept_only_what_postgres_and_python_can_carry():
    assert parse_int("42") == 42 and parse_int(" -7 ") == -7
    for bad in ("²", "١٢", "1_000", "9" * 30, "2147483648", "", "4.0", None):
        assert parse_int(bad) is None, bad
    assert parse_id("0") is None and parse_id("12") == 12
    assert parse_date("2027-05-01").year == 2027
    assert parse_date("9999-12-31") is None and parse_date("0001-01-01") is None and parse_date("2027-02-30") is None
    assert str(parse_decimal("12.50")) == "12.50"
    for bad in ("sNaN", "NaN", "Infinity", "-Infinity", "1e", "abc"):
        assert parse_decimal(bad) is None, bad


@pytest.mark.parametrize("url", ["/?q=a%00b", "/login?next=%2F%00", "/events/1?seat=1%00"])
def test_a_nul_in_a_query_is_a_clear_400(client, factory, url):
    factory.ga_event()
    response = client.get(url)
    assert response.status_code == 400
    assert "not allowed" in response.get_data(as_text=True)


def test_a_nul_in_forms_is_a_400_everywhere_it_reaches_postgres(client, factory, session):
    # Login e-mail, an admin's event title and cancel reason, a check-in code.
    token = csrf_token(client, "/login")
    answer = client.post("/login", data={"email": "a\x00@example.com", "password": "x", "csrf_token": token})
    assert answer.status_code == 400 and "not allowed" in answer.get_data(as_text=True)
    client, admin, token = admin_client(client, factory)
    event = factory.ga_event()
    for url, data in ((f"/admin/events/{event.id}/edit", {"title": "Gig\x00", "venue": "Hall"}),
                      (f"/admin/events/{event.id}/cancel", {"reason": "storm\x00"}),
                      (f"/admin/events/{event.id}/check-in", {"code": "\x00abc"})):
        response = client.post(url, data=data, headers={**HX, "X-CSRFToken": token})
        assert response.status_code == 400, url
        assert "not allowed" in response.get_data(as_text=True)


def test_superscript_digits_are_refused_not_crashed_on(client, factory, session):
    event = factory.ga_event(capacity=5)
    tier = factory.tier(event)
    # The stepper: "¹" passes isdigit() but not int().
    assert client.get(f"/events/{event.id}/tickets?step=%C2%B9:%2B1", headers=HX).status_code == 200
    buyer = factory.user()
    order = buy(session, event, buyer, quantities={tier.id: 1})
    client, admin, token = admin_client(client, factory)
    assert client.get("/admin/orders?q=%23%C2%B2").status_code == 200  # "#²"
    assert client.get(f"/admin/orders?q=%23{order.id}").get_data(as_text=True).count(f"#{order.id}") >= 1


def test_superscript_digits_in_a_card_number_are_a_form_error(client, factory, session):

    event = factory.ga_event(capacity=5)
    buyer = factory.user()
    hold = reserve_general(session, user_id=buyer.id, event_id=event.id,
                                     quantities={factory.tier(event).id: 1})
    session.commit()
    token = login(client, buyer.email)
    response = client.post(f"/holds/{hold.id}/pay", headers={**HX, "X-CSRFToken": token},
                           data={"idempotency_key": "k" * 24, "name": "Ann", "number": "424242424242424²",
                                 "expiry": "12/30", "cvc": "123"})
    assert response.status_code == 400
    assert "12 to 19 digits" in response.get_data(as_text=True)


@pytest.mark.parametrize("value", ["sNaN", "NaN", "Infinity", "-Infinity"])
def test_non_finite_decimals_in_admin_fields_are_form_errors(client, factory, value):
    client, admin, token = admin_client(client, factory)
    event = factory.ga_event()
    price = client.post(f"/admin/events/{event.id}/tiers", headers={"X-CSRFToken": token},
                        data={"kind": "general", "name": "Floor", "price": value, "colour": "#3b82f6",
                              "capacity": "5"})
    assert price.status_code == 400 and "Enter a number" in price.get_data(as_text=True)
    start = (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    hold = client.post(f"/admin/events/{event.id}/edit", headers={"X-CSRFToken": token},
                       data={"title": "Gig", "venue": "Hall", "starts_at": start, "hold_minutes": value,
                             "per_order_limit": "8", "offer_hours": "12"})
    assert hold.status_code == 400 and "Enter a number" in hold.get_data(as_text=True)


def test_far_future_dates_and_huge_numbers_find_nothing(client, factory):
    factory.ga_event()
    assert client.get("/?date=9999-12-31").status_code == 200
    assert client.get("/events/99999999999999999999").status_code == 404
    assert client.get("/events/2147483648/seat-map").status_code == 404
    client, admin, token = admin_client(client, factory)
    assert client.get("/admin/audit?page=99999999999999999999").status_code == 200
    assert client.get("/admin/audit?page=9223372036854775807&event=9223372036854775807").status_code == 200


def test_search_takes_percent_and_underscore_literally(client, factory):
    factory.ga_event(title="Jazz night")
    factory.ga_event(title="100% Rock")
    assert "Jazz night" in client.get("/?q=jazz").get_data(as_text=True)
    everything = client.get("/?q=%25").get_data(as_text=True)  # "%"
    assert "100% Rock" in everything and "Jazz night" not in everything
    assert "Jazz night" not in client.get("/?q=J_zz").get_data(as_text=True)


def test_a_form_body_over_the_limit_is_a_clear_413(client, factory, app):
    big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    token = csrf_token(client, "/login")
    page = client.post("/login", data={"email": big, "password": "x", "csrf_token": token})
    assert page.status_code == 413
    assert "<html" in page.get_data(as_text=True) and "too large" in page.get_data(as_text=True).lower()
    partial = client.post("/register/validate/email", data={"email": big}, headers={**HX, "X-CSRFToken": token})
    assert partial.status_code == 413
    assert "<html" not in partial.get_data(as_text=True) and partial.headers["HX-Retarget"] == "#flash"


@pytest.fixture
def api_world(factory, session):
    """A token of each kind and something real behind every id an API operation with a body takes."""
    from webapp.services.people import api_tokens

    admin, buyer = factory.user(is_admin=True), factory.user()
    event = factory.ga_event(capacity=10)
    order = factory.order(event, factory.user())
    hold = factory.hold(event, buyer)
    ids = {"event_id": event.id, "tier_id": factory.tier(event).id, "hold_id": hold.id, "order_id": order.id}
    tokens = {role: api_tokens.create(session, user_id=user.id, is_admin=user.is_admin, name="t", scope=role).secret
              for role, user in (("admin", admin), ("buyer", buyer))}
    session.commit()
    return ids, tokens, order.tickets[0].code


def _body_operations() -> list:
    from webapp.api.routing import OPERATIONS

    return [op for op in OPERATIONS if op.body is not None]


def _url(op, ids: dict[str, int]) -> str:
    import re

    from flask import current_app

    [rule] = [r.rule for r in current_app.url_map.iter_rules()
              if current_app.view_functions[r.endpoint] is op.view]
    return re.sub(r"<int:([a-z_]+)>", lambda m: str(ids[m.group(1)]), rule)


def _state(session) -> list:
    """Every row a refused request could have touched, as text."""
    from sqlalchemy import text

    tables = ("events", "tiers", "units", "holds", "orders", "tickets", "audit_log", "webhook_endpoints",
              "waitlist_entries", "payment_attempts")
    session.rollback()
    return [session.execute(text(f"SELECT coalesce(string_agg(t::text, ';' ORDER BY t::text), '') FROM {name} t")
                            ).scalar_one() for name in tables]


def _api_problem(response, status: int = 400) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/problem+json"
    return response.get_json(force=True)


def test_the_api_has_thirteen_operations_with_a_body(app_ctx):
    assert len(_body_operations()) == 13


@pytest.mark.parametrize("opening, closing", [("[", "]"), ('{"a":', "}")])
def test_deeply_nested_json_is_a_clear_400_on_every_operation_with_a_body(client, session, api_world, opening,
                                                                           closing):
    ids, tokens, _ = api_world
    before = _state(session)
    depth = 10_000 // len(opening)
    body = opening * depth + "1" + closing * depth
    for op in _body_operations():
        url = _url(op, ids)
        response = client.open(url, method=op.method, data=body, content_type="application/json",
                               headers={"Authorization": f"Bearer {tokens['admin' if op.admin else 'buyer']}",
                                        "Idempotency-Key": "k" * 24})
        problem = _api_problem(response)
        assert "nested too deeply" in problem["detail"], (op.method, url)
    assert _state(session) == before


def test_json_nested_a_little_past_the_limit_is_refused_before_the_schema(client, session, api_world):
    from webapp.api.routing import MAX_JSON_DEPTH

    ids, tokens, _ = api_world
    url = f"/api/v1/events/{ids['event_id']}/holds"
    headers = {"Authorization": f"Bearer {tokens['buyer']}"}
    deep = {"seats": [1]}
    for _ in range(MAX_JSON_DEPTH):
        deep = {"seats": [deep]}
    assert "nested too deeply" in _api_problem(client.post(url, json=deep, headers=headers))["detail"]
    # At the limit it is the schema that answers.
    fits = {"quantities": [{"tier_id": ids["tier_id"], "quantity": [[1]]}]}
    assert "errors" in _api_problem(client.post(url, json=fits, headers=headers))


def _nul_cases(ids: dict[str, int], code: str) -> list[tuple[str, str, str, dict, str]]:
    e, t, o, h = ids["event_id"], ids["tier_id"], ids["order_id"], ids["hold_id"]
    event = {"title": "Gig", "venue": "Hall", "starts_at": "2031-01-01T19:00"}
    return [
        ("admin", "POST", "/api/v1/admin/events", {**event, "title": "Gig\x00"}, "title"),
        ("admin", "POST", "/api/v1/admin/events", {**event, "venue": "\x00Hall"}, "venue"),
        ("admin", "POST", "/api/v1/admin/events", {**event, "description": "a\x00b"}, "description"),
        ("admin", "PATCH", f"/api/v1/admin/events/{e}", {"title": "Gig\x00"}, "title"),
        ("admin", "PATCH", f"/api/v1/admin/events/{e}", {"venue": "Hall\x00"}, "venue"),
        ("admin", "PATCH", f"/api/v1/admin/events/{e}", {"description": "\x00"}, "description"),
        ("admin", "POST", f"/api/v1/admin/events/{e}/tiers", {"name": "Floor\x00", "price_minor": 100,
                                                              "capacity": 2}, "name"),
        ("admin", "PATCH", f"/api/v1/admin/events/{e}/tiers/{t}", {"name": "Floor\x00"}, "name"),
        ("admin", "POST", f"/api/v1/admin/events/{e}/check-in", {"code": code + "\x00"}, "code"),
        ("admin", "POST", f"/api/v1/admin/orders/{o}/refund", {"reason": "asked\x00"}, "reason"),
        ("admin", "POST", "/api/v1/admin/webhooks", {"url": "https://hooks.example.com/\x00",
                                                     "event_types": ["order.confirmed"]}, "url"),
        ("buyer", "PUT", f"/api/v1/holds/{h}/discount-code", {"code": "SAVE\x00"}, "code"),
        ("buyer", "POST", f"/api/v1/holds/{h}/payment", {"card": {"number": "4242 4242 4242 4242",
                                                                  "expiry": "12/39", "cvc": "123",
                                                                  "name": "Ada\x00"}}, "card"),
    ]


def test_a_nul_in_any_json_string_is_a_clear_400_and_changes_nothing(client, session, api_world):
    ids, tokens, code = api_world
    before = _state(session)
    for role, method, url, body, field in _nul_cases(ids, code):
        response = client.open(url, method=method, json=body, headers={"Authorization": f"Bearer {tokens[role]}",
                                                                       "Idempotency-Key": "k" * 24})
        problem = _api_problem(response)
        assert field in problem["errors"], (url, problem)
        assert "NUL" in json.dumps(problem["errors"][field]), (url, problem)
    assert _state(session) == before


def test_every_string_the_api_takes_in_is_checked_for_nul(app_ctx):
    from marshmallow import fields

    from webapp.api.routing import OPERATIONS
    from webapp.api.schemas import Text

    def unchecked(schema, path: str) -> list[str]:
        found = []
        for name, field in schema().fields.items():
            while isinstance(field, fields.List):
                field = field.inner
            if isinstance(field, fields.Nested):
                found += unchecked(field.nested, f"{path}.{name}")
            elif isinstance(field, fields.String) and not isinstance(field, Text):
                found.append(f"{path}.{name}")
        return found

    schemas = {s for op in OPERATIONS for s in (op.body, op.query) if s is not None}
    assert schemas and [name for s in schemas for name in unchecked(s, s.__name__)] == []


def test_an_address_or_header_too_large_is_refused_by_the_app_in_the_clients_terms(client):
    from webapp.parsing import MAX_HEADER_BYTES, MAX_HEADER_FIELDS, MAX_TARGET_BYTES

    long_query = "q=" + "x" * MAX_TARGET_BYTES
    assert "too long" in _api_problem(client.get(f"/api/v1/events?{long_query}"), 414)["detail"]
    page = client.get(f"/?{long_query}")
    assert page.status_code == 414 and "<html" in page.get_data(as_text=True)
    big = {"X-Big": "x" * MAX_HEADER_BYTES}
    assert "X-Big is too large" in _api_problem(client.get("/api/v1/events", headers=big), 431)["detail"]
    many = {f"X-Header-{i}": "1" for i in range(MAX_HEADER_FIELDS)}
    assert "Too many headers" in _api_problem(client.get("/api/v1/events", headers=many), 431)["detail"]
    # Just under every limit: the request goes on (to the token check).
    fits = {"X-Big": "x" * (MAX_HEADER_BYTES - 100)}
    assert client.get("/api/v1/events?q=" + "x" * 4000, headers=fits).status_code == 401


def test_a_lone_surrogate_in_any_json_string_is_a_clear_400_and_changes_nothing(client, session, api_world):
    """JSON's \\u escapes can spell half of a UTF-16 pair, which no UTF-8 text (nor PostgreSQL) can hold."""
    ids, tokens, code = api_world
    before = _state(session)
    for role, method, url, body, field in _nul_cases(ids, code):
        raw = json.dumps(body).replace("\\u0000", "\\ud800")
        response = client.open(url, method=method, data=raw, content_type="application/json",
                               headers={"Authorization": f"Bearer {tokens[role]}", "Idempotency-Key": "k" * 24})
        problem = _api_problem(response)
        assert field in problem["errors"], (url, problem)
        assert "surrogate" in json.dumps(problem["errors"][field]), (url, problem)
    assert _state(session) == before
