"""The admin area over HTTP: every route is guarded, CSRF-checked, and does its job."""
from __future__ import annotations

import re

import pytest
from flask import g, url_for
from sqlalchemy import func, select

from config import TestConfig
from tests.support import admin_client, buy, csrf_token, login
from webapp import create_app
from webapp.models import (
    AuditLog,
    Event,
    EventStatus,
    Invoice,
    OutboxMessage,
    Unit,
    UnitStatus,
    WaitlistEntry,
    WebhookDelivery,
    WebhookEndpoint,
)
from webapp.services.admin import codes
from webapp.services.admin import questions as admin_questions
from webapp.services.people import organisers


def _admin_routes() -> list[tuple[str, str]]:
    # Built from the real URL map, so a new admin route is guarded-tested automatically.
    app = create_app({"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg2://unused@/unused"}, config_class=TestConfig)
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("admin."):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                routes.append((method, rule.endpoint))
    return routes


ADMIN_ROUTES = _admin_routes()
POST_ROUTES = [r for r in ADMIN_ROUTES if r[0] == "POST"]


def _caught_mail(folder) -> str:
    """One message in the dev catcher's folder, as the catcher writes it; returns its file name."""
    from email.message import EmailMessage

    message = EmailMessage()
    message["To"], message["Subject"] = "someone@example.com", "Caught"
    message.set_content("Hello")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="t.pdf")
    (folder / "20261202T010101-000000001-1.eml").write_bytes(message.as_bytes())
    return "20261202T010101-000000001-1.eml"


@pytest.fixture
def world(app, session, factory, tmp_path, monkeypatch):
    """An on-sale seated event with one sale and one person waiting; one caught dev mail."""
    monkeypatch.setitem(app.config, "DEV_MAIL_DIR", str(tmp_path))
    mail_name = _caught_mail(tmp_path)
    event = factory.seated_event(rows=2, seats_per_row=5, title="Guarded Gig")
    tier = factory.tier(event)
    buyer = factory.user()
    order = factory.order(event, buyer, seats=factory.seat_ids(event)[:1], billing_name="Guard Ltd",
                          billing_address="1 Gate Road")  # with an invoice, for the documents' route
    waiter = factory.user()
    entry = WaitlistEntry(event_id=event.id, tier_id=tier.id, user_id=waiter.id, quantity=1)
    session.add(entry)
    hook = WebhookEndpoint(url="https://hooks.example.com/x", event_types=["order.confirmed"], secret="whsec_t",
                           organiser_id=1)
    session.add(hook)
    session.flush()
    delivery = WebhookDelivery(endpoint_id=hook.id, event_type="order.confirmed", body="{}")
    session.add(delivery)
    code = codes.create_code(session, event_id=event.id, raw_code="GUARD10", actor_id=None,
                             spec=codes.CodeSpec(kind="discount", percent_off=10))
    codes.generate_codes(session, event_id=event.id, prefix="G-", count=2, batch="guarded", actor_id=None,
                         spec=codes.CodeSpec(kind="discount", percent_off=10))
    question = admin_questions.add_question(session, actor_id=None, event_id=event.id, label="Size", kind="text",
                                            options=[], required=False, per_ticket=True, tier_id=None)
    invitation_id = organisers.invite(session, organiser_id=event.organiser_id, email="guard@example.com",
                                      role="door", actor_id=None)
    session.commit()
    return dict(event_id=event.id, code_id=code.id, question_id=question.id, invitation_id=invitation_id,
                tier_id=tier.id, order_id=order.id, entry_id=entry.id, field="title",
                endpoint_id=hook.id, delivery_id=delivery.id,
                buyer=buyer, ticket_code=order.tickets[0].code, unit_id=order.tickets[0].unit_id,
                message_id=session.scalar(select(func.min(OutboxMessage.id))), name=mail_name, index=0,
                user_id=waiter.id, document_id=session.scalar(select(func.min(Invoice.id))))


# Query arguments some GET pages need to answer 200 (the CSV of one batch).
QUERIES = {"admin.codes_csv": {"batch": "guarded"}}


def build(app, endpoint: str, world: dict) -> str:
    with app.test_request_context():
        rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
        return url_for(endpoint, **{arg: world[arg] for arg in rule.arguments}, **QUERIES.get(endpoint, {}))


def test_there_are_admin_routes_to_check():
    assert len(ADMIN_ROUTES) >= 25
    assert len(POST_ROUTES) >= 14


@pytest.mark.parametrize("method,endpoint", ADMIN_ROUTES)
def test_anonymous_gets_404(app, client, world, method, endpoint):
    # With a valid CSRF token, so the 404 comes from the admin guard itself.
    token = csrf_token(client)
    response = client.open(build(app, endpoint, world), method=method, headers={"X-CSRFToken": token})
    assert response.status_code == 404


@pytest.mark.parametrize("method,endpoint", ADMIN_ROUTES)
def test_buyer_gets_404(app, client, world, method, endpoint):
    login(client, world["buyer"].email)
    token = csrf_token(client)
    response = client.open(build(app, endpoint, world), method=method, headers={"X-CSRFToken": token})
    assert response.status_code == 404


@pytest.mark.parametrize("method,endpoint", POST_ROUTES)
def test_admin_post_without_csrf_token_is_refused(app, client, factory, world, session, method, endpoint):
    client, admin, _ = admin_client(client, factory)
    before = session.scalar(select(func.count()).select_from(AuditLog))
    response = client.post(build(app, endpoint, world), data={"status": "closed", "reason": "x", "code": "x"})
    assert response.status_code == 400
    assert "session has expired" in response.get_data(as_text=True)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(AuditLog)) == before


@pytest.mark.parametrize("method,endpoint", [r for r in ADMIN_ROUTES if r[0] == "GET"])
def test_admin_can_open_every_page(app, client, factory, world, method, endpoint):
    client, _, _ = admin_client(client, factory)
    response = client.get(build(app, endpoint, world))
    assert response.status_code == 200, response.get_data(as_text=True)[:800]


def test_create_event_validates_inline_and_on_submit(client, factory, session):
    client, admin, token = admin_client(client, factory)
    headers = {"X-CSRFToken": token, "HX-Request": "true"}
    inline = client.post("/admin/events/validate/hold_minutes?creating=1", headers=headers,
                         data={"hold_minutes": "90"})
    assert inline.status_code == 200
    assert "Holds last between 1 and 60 minutes." in inline.get_data(as_text=True)

    bad = client.post("/admin/events/new", data={"csrf_token": token, "title": "", "venue": "Hall",
                                                 "starts_at": "2020-01-01T19:00", "hold_minutes": "8",
                                                 "per_order_limit": "4", "offer_hours": "12"})
    assert bad.status_code == 400
    page = bad.get_data(as_text=True)
    assert "Give the event a title." in page and "A new event must start in the future." in page

    good = client.post("/admin/events/new", data={"csrf_token": token, "title": "Opening Night", "venue": "Hall",
                                                  "starts_at": "2031-05-01T19:30", "hold_minutes": "8",
                                                  "per_order_limit": "4", "offer_hours": "12",
                                                  "waitlist_enabled": "y"})
    assert good.status_code == 303
    event = session.scalars(select(Event).where(Event.title == "Opening Night")).one()
    assert event.status == EventStatus.DRAFT and event.per_order_limit == 4 and event.waitlist_enabled
    entry = session.scalars(select(AuditLog).where(AuditLog.action == "event.create")).one()
    assert entry.actor_id == admin.id and entry.after["title"] == "Opening Night"


def test_refused_capacity_change_is_explained_next_to_the_field(client, factory, session):
    event = factory.ga_event(capacity=10)
    tier = factory.tier(event)
    buy(session, event, factory.user(), quantities={tier.id: 4})
    client, _, token = admin_client(client, factory)
    prefix = f"t{tier.id}-"
    response = client.post(f"/admin/events/{event.id}/tiers/{tier.id}",
                           headers={"X-CSRFToken": token, "HX-Request": "true"},
                           data={prefix + "name": tier.name, prefix + "price": "50.00", prefix + "capacity": "3",
                                 prefix + "colour": "#3b82f6"})
    assert response.status_code == 409
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith(f'<form id="tier-{tier.id}"')
    assert "4 sold" in body and "The smallest capacity possible now is 4." in body
    session.expire_all()
    assert session.get(type(tier), tier.id).capacity == 10

    ok = client.post(f"/admin/events/{event.id}/tiers/{tier.id}", headers={"X-CSRFToken": token, "HX-Request": "true"},
                     data={prefix + "name": "Floor", prefix + "price": "55.00", prefix + "capacity": "6",
                           prefix + "colour": "#3b82f6"})
    assert ok.status_code == 200 and "Saved." in ok.get_data(as_text=True)
    session.expire_all()
    assert session.get(type(tier), tier.id).capacity == 6
    assert session.scalar(select(func.count()).where(Unit.tier_id == tier.id)) == 6


def test_layout_preview_writes_nothing_and_generate_creates_the_seats(client, factory, session):
    event = factory.event(status=EventStatus.DRAFT)
    session.commit()
    client, _, token = admin_client(client, factory)
    headers = {"X-CSRFToken": token, "HX-Request": "true"}
    for name, price in (("Premium", "90"), ("Standard", "50")):
        r = client.post(f"/admin/events/{event.id}/tiers", headers=headers,
                        data={"kind": "seated", "name": name, "price": price, "colour": "#b45309"})
        assert r.status_code == 204, r.get_data(as_text=True)[:500]
    premium, standard = session.scalars(select(Event).where(Event.id == event.id)).one().tiers
    form = {"sections": "Left, Right", "rows": "4", "seats_per_row": "6", "first_row_label": "A",
            "tier_1": str(premium.id), "from_1": "1", "to_1": "2",
            "tier_2": str(standard.id), "from_2": "3", "to_2": "4"}

    preview = client.post(f"/admin/events/{event.id}/layout/preview", headers=headers, data=form)
    assert preview.status_code == 200
    body = preview.get_data(as_text=True)
    assert "48 seats" in body and body.count('class="aseat new"') == 48
    assert session.scalar(select(func.count()).where(Unit.event_id == event.id)) == 0

    gap = client.post(f"/admin/events/{event.id}/layout/preview", headers=headers,
                      data={**form, "to_2": "3"})
    assert gap.status_code == 400 and "Every row needs a tier; these have none: D." in gap.get_data(as_text=True)

    made = client.post(f"/admin/events/{event.id}/layout", headers=headers, data=form)
    assert made.status_code == 204 and made.headers["HX-Redirect"].endswith(f"/admin/events/{event.id}/layout")
    session.expire_all()
    assert session.get(type(premium), premium.id).capacity == 24
    assert session.get(type(standard), standard.id).capacity == 24

    again = client.post(f"/admin/events/{event.id}/layout", headers=headers, data=form)
    assert again.status_code == 400 and "already has a section called “Left”" in again.get_data(as_text=True)


def test_blocking_a_seat_from_the_map(client, factory, session):
    event = factory.seated_event(rows=1, seats_per_row=4)
    seat = factory.seat_ids(event)[0]
    client, _, token = admin_client(client, factory)
    headers = {"X-CSRFToken": token, "HX-Request": "true"}
    r = client.post(f"/admin/events/{event.id}/seats", headers=headers, data={"block": str(seat)})
    assert r.status_code == 200
    body = r.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="layout-map"')
    assert 'aria-label="Unblock Stalls, row A, seat 1 (Stalls, blocked)"' in body
    assert session.get(Unit, seat).status == UnitStatus.BLOCKED
    again = client.post(f"/admin/events/{event.id}/seats", headers=headers, data={"block": str(seat)})
    assert again.status_code == 409 and "Only an available seat can be blocked" in again.get_data(as_text=True)


def test_check_in_answers(client, factory, session, world):
    client, _, token = admin_client(client, factory)
    url = f"/admin/events/{world['event_id']}/check-in"
    headers = {"X-CSRFToken": token, "HX-Request": "true"}
    first = client.post(url, headers=headers, data={"code": world["ticket_code"] + "\n"})
    assert first.status_code == 200 and "Valid — admit" in first.get_data(as_text=True)
    second = client.post(url, headers=headers, data={"code": world["ticket_code"]})
    assert second.status_code == 409 and "Already checked in at" in second.get_data(as_text=True)
    unknown = client.post(url, headers=headers, data={"code": "no-such-code"})
    assert unknown.status_code == 404 and "Unknown code" in unknown.get_data(as_text=True)
    other = factory.seated_event(rows=1, seats_per_row=2, title="Other Night")
    wrong = client.post(f"/admin/events/{other.id}/check-in", headers=headers, data={"code": world["ticket_code"]})
    assert wrong.status_code == 409 and "Guarded Gig" in wrong.get_data(as_text=True)


def test_admin_refund_is_visible_to_the_buyer(app, client, factory, session, world):
    client, _, token = admin_client(client, factory)
    r = client.post(f"/admin/orders/{world['order_id']}/cancel",
                    data={"csrf_token": token, "reason": "Duplicate purchase", "refund": "1"})
    assert r.status_code == 303
    session.expire_all()
    assert session.get(Unit, world["unit_id"]).status in (UnitStatus.AVAILABLE, UnitStatus.HELD)
    checked = client.post(f"/admin/events/{world['event_id']}/check-in", headers={"X-CSRFToken": token},
                          data={"code": world["ticket_code"]})
    assert checked.status_code == 409 and "Cancelled ticket" in checked.get_data(as_text=True)
    buyer_client = app.test_client()
    # The test's app context outlives requests, and Flask-WTF caches the
    # token (and Flask-Login the user) in `g`: drop the admin's, so the
    # buyer's client gets its own. The admin client is not used after this.
    g.pop("csrf_token", None)
    g.pop("_login_user", None)
    login(buyer_client, world["buyer"].email)
    page = buyer_client.get(f"/orders/{world['order_id']}").get_data(as_text=True)
    assert "Refunded" in page and "no longer valid" in page


def test_order_search_by_email_and_ticket_code(client, factory, world):
    client, _, _ = admin_client(client, factory)
    by_mail = client.get("/admin/orders", query_string={"q": world["buyer"].email[:8]},
                         headers={"HX-Request": "true"})
    assert by_mail.status_code == 200 and "HX-Request" in by_mail.headers["Vary"]
    assert f"#{world['order_id']}" in by_mail.get_data(as_text=True)
    by_code = client.get("/admin/orders", query_string={"q": world["ticket_code"]}).get_data(as_text=True)
    assert f"#{world['order_id']}" in by_code
    nothing = client.get("/admin/orders", query_string={"q": "nobody@nowhere"}).get_data(as_text=True)
    assert "No orders match" in nothing


def test_export_streams_the_attendee_csv(client, factory, session, world):
    client, _, _ = admin_client(client, factory)
    response = client.get(f"/admin/events/{world['event_id']}/attendees.csv")
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv"
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0] == ("order,buyer_name,buyer_email,tier,section,row,seat,ticket_code,checked_in,checked_in_at,"
                        "attendee_name,Size")  # then one column per question
    assert lines[1].startswith(f"{world['order_id']},Test Buyer,{world['buyer'].email},Stalls,Stalls,A,1,")
    assert len(lines) == 2
    assert session.scalars(select(AuditLog.action).where(AuditLog.action == "event.export")).one()


def test_dashboard_partial_polls_itself(client, factory, world):
    client, _, _ = admin_client(client, factory)
    full = client.get(f"/admin/events/{world['event_id']}").get_data(as_text=True)
    assert "<html" in full and 'hx-trigger="every 5s"' in full
    part = client.get(f"/admin/events/{world['event_id']}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert part.lstrip().startswith('<section id="stats"')
    assert re.search(r'data-stat="sold">1<', part) and re.search(r'data-stat="waiting">1<', part)
    assert "<svg" in part and "1 in total" in part


def test_audit_log_page_lists_actions(client, factory, session, world):
    client, admin, token = admin_client(client, factory)
    client.post(f"/admin/events/{world['event_id']}/status", data={"csrf_token": token, "status": "closed"})
    page = client.get("/admin/audit").get_data(as_text=True)
    assert "event.status" in page and admin.email in page and "on_sale" in page and "closed" in page


def test_edit_duplicate_and_delete_through_the_pages(client, factory, session):
    event = factory.seated_event(rows=1, seats_per_row=3, title="Quiet Recital")
    client, _, token = admin_client(client, factory)
    form = client.get(f"/admin/events/{event.id}/edit").get_data(as_text=True)
    starts = re.search(r'id="starts_at"[^>]* value="([^"]+)"', form).group(1)
    saved = client.post(f"/admin/events/{event.id}/edit", data={
        "csrf_token": token, "title": "Loud Recital", "venue": "Test Hall", "starts_at": starts,
        "hold_minutes": "90", "per_order_limit": "4", "offer_hours": "12"})
    assert saved.status_code == 400 and "Holds last between 1 and 60 minutes." in saved.get_data(as_text=True)
    saved = client.post(f"/admin/events/{event.id}/edit", data={
        "csrf_token": token, "title": "Loud Recital", "venue": "Test Hall", "starts_at": starts,
        "hold_minutes": "6", "per_order_limit": "4", "offer_hours": "12"})
    assert saved.status_code == 303
    session.expire_all()
    assert session.get(Event, event.id).title == "Loud Recital"
    assert session.get(Event, event.id).starts_at.strftime("%Y-%m-%dT%H:%M") == starts  # UTC round trip

    refused = client.post(f"/admin/events/{event.id}/delete", data={"csrf_token": token})
    assert refused.status_code == 409 and "Only draft events can be deleted" in refused.get_data(as_text=True)

    copied = client.post(f"/admin/events/{event.id}/duplicate", data={"csrf_token": token})
    assert copied.status_code == 303
    copy = session.scalars(select(Event).where(Event.title == "Copy of Loud Recital")).one()
    assert session.scalar(select(func.count()).where(Unit.event_id == copy.id)) == 3
    gone = client.post(f"/admin/events/{copy.id}/delete", data={"csrf_token": token})
    assert gone.status_code == 303
    session.expire_all()
    assert session.get(Event, copy.id) is None
    assert [a for (a,) in session.execute(select(AuditLog.action).order_by(AuditLog.id))] == [
        "event.update", "event.duplicate", "event.delete"]


def test_generator_suggests_a_section_name_not_in_use(client, factory):
    event = factory.seated_event(rows=1, seats_per_row=2)  # its section is "Stalls"
    client, _, _ = admin_client(client, factory)
    page = client.get(f"/admin/events/{event.id}/layout").get_data(as_text=True)
    assert re.search(r'id="sections"[^>]* value="Balcony"', page)
