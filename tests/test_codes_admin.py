"""The admin side of discount and access codes: the codes page, batches as CSV, dashboard totals, hidden tiers."""
from __future__ import annotations

import csv
import io
import secrets
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from tests.support import GOOD, admin_client, login, make_gateway
from webapp.models import AuditLog, Code, Event, Tier
from webapp.services.admin import codes as code_admin
from webapp.services.admin import reports as admin_reports
from webapp.services.errors import InvalidRequest
from webapp.services.money import checkout
from webapp.services.selling import codes, events


@pytest.fixture
def gig(factory, session):
    """A GA event in Vienna with a public tier and a hidden one."""
    event = factory.ga_event(capacity=50, tiers=1, price_minor=4000, title="Code Gig", timezone="Europe/Vienna")
    hidden = events.add_general_tier(session, event, name="Friends", price_minor=2500, capacity=20, sort_order=5,
                                     hidden=True)
    session.commit()
    return dict(event=event, public=factory.tier(event), hidden=hidden)


def _post(client, url, token, data, **kw):
    return client.post(url, data={"csrf_token": token, **data}, **kw)


def _new(event_id):
    return f"/admin/events/{event_id}/codes"


def _code(session, event_id, text):
    session.expire_all()
    return session.scalars(select(Code).where(Code.event_id == event_id, Code.code == text)).one()


def test_create_edit_deactivate_and_reactivate(client, factory, session, gig):
    event = gig["event"]
    client, admin, token = admin_client(client, factory)
    page = client.get(_new(event.id))
    assert page.status_code == 200 and "No codes yet" in page.get_data(as_text=True)

    made = _post(client, _new(event.id), token, {
        "kind": "discount", "code": "earlybird", "amount_off": "5.00", "tiers": str(gig["public"].id),
        "max_uses": "100", "per_buyer_max": "2", "min_quantity": "1",
        "valid_from": "2030-06-01T10:00", "valid_until": "2030-06-30T23:30"})
    assert made.status_code == 303, made.get_data(as_text=True)[:2000]
    code = _code(session, event.id, "EARLYBIRD")
    assert code.amount_off_minor == 500 and code.percent_off is None and code.tier_ids == [gig["public"].id]
    assert (code.max_uses, code.per_buyer_max, code.min_quantity) == (100, 2, 1)
    # Vienna in June is UTC+2: the admin's wall clock, stored as the instant.
    assert code.valid_from == datetime(2030, 6, 1, 8, 0, tzinfo=timezone.utc)
    assert code.valid_until == datetime(2030, 6, 30, 21, 30, tzinfo=timezone.utc)
    listing = client.get(_new(event.id)).get_data(as_text=True)
    assert "EARLYBIRD" in listing and "€5.00 off each ticket" in listing and "Tier 1" in listing
    assert "from Sat 01 Jun 2030, 10:00 CEST" in listing and "0 / 100" in listing and "2 per buyer" in listing

    edit_url = f"/admin/events/{event.id}/codes/{code.id}"
    form = client.get(edit_url).get_data(as_text=True)
    assert 'value="5.00"' in form and 'value="2030-06-01T10:00"' in form
    saved = _post(client, edit_url, token, {"kind": "access", "percent_off": "15", "max_uses": "50",
                                             "valid_from": "2030-06-01T10:00"})
    assert saved.status_code == 303
    code = _code(session, event.id, "EARLYBIRD")
    # The kind stays (the posted one is ignored); every tier now, 15 % off, no end.
    assert code.kind == "discount" and code.percent_off == 15 and code.amount_off_minor is None
    assert code.tier_ids is None and code.max_uses == 50 and code.valid_until is None
    assert "all tiers" in client.get(_new(event.id)).get_data(as_text=True)

    toggle = f"/admin/events/{event.id}/codes/{code.id}/active"
    off = _post(client, toggle, token, {"active": "0"}, headers={"HX-Request": "true"})
    assert off.status_code == 200
    row = off.get_data(as_text=True)
    assert row.lstrip().startswith(f'<tr id="code-{code.id}"') and "inactive" in row and "Reactivate" in row
    assert _code(session, event.id, "EARLYBIRD").active is False
    on = _post(client, toggle, token, {"active": "1"})  # without JS: back to the list
    assert on.status_code == 303 and _code(session, event.id, "EARLYBIRD").active is True
    actions = session.scalars(select(AuditLog.action).where(AuditLog.entity == "code").order_by(AuditLog.id)).all()
    assert actions == ["code.create", "code.update", "code.deactivate", "code.activate"]


@pytest.mark.parametrize("data,message", [
    ({"percent_off": "10", "amount_off": "5.00"}, "Give either a percentage or an amount off, not both."),
    ({}, "Give a percentage off, or an amount off each ticket."),
    ({"percent_off": "0"}, "A percentage off is between 1 and 100."),
    ({"percent_off": "101"}, "A percentage off is between 1 and 100."),
    ({"amount_off": "0"}, "An amount off runs from 0.01 to 100,000."),
    ({"amount_off": "sNaN"}, "Enter a number"),
    ({"percent_off": "10", "max_uses": "0"}, "Total uses must be at least 1"),
    ({"percent_off": "10", "valid_from": "2030-06-02T10:00", "valid_until": "2030-06-01T10:00"},
     "The code&#39;s validity must end after it starts."),
    ({"percent_off": "10", "valid_from": "9999-12-31T23:59"}, "Enter a date between"),
    # Vienna skips 02:00-03:00 on the last Sunday of March.
    ({"percent_off": "10", "valid_from": "2030-03-31T02:30"}, "does not exist"),
    ({"percent_off": "10", "code": "x"}, "A code is 3 to 40 letters"),
    ({"percent_off": "10", "tiers": "²"}, "is not a valid choice"),
])
def test_form_refusals_are_shown_beside_the_fields(client, factory, session, gig, data, message):
    event = gig["event"]
    client, _, token = admin_client(client, factory)
    response = _post(client, _new(event.id), token, {"kind": "discount", "code": "SAVE", **data})
    assert response.status_code in (400, 422)
    assert message in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Code)) == 0


def test_service_refusals_are_shown_too(client, factory, session, gig):
    event = gig["event"]
    client, _, token = admin_client(client, factory)
    assert _post(client, _new(event.id), token, {"kind": "discount", "code": "TWICE", "percent_off": "10"}
                 ).status_code == 303
    again = _post(client, _new(event.id), token, {"kind": "discount", "code": "twice", "percent_off": "20"})
    assert again.status_code == 400 and "This event already has a code TWICE." in again.get_data(as_text=True)

    shown = _post(client, _new(event.id), token, {"kind": "access", "code": "OPENUP", "tiers": str(gig["public"].id)})
    assert shown.status_code == 400
    assert "Tier 1 is not hidden: an access code only unlocks hidden tiers." in shown.get_data(as_text=True)
    nothing = _post(client, _new(event.id), token, {"kind": "access", "code": "OPENUP"})
    assert nothing.status_code == 400 and "Tick the hidden tiers" in nothing.get_data(as_text=True)

    access = _post(client, _new(event.id), token, {"kind": "access", "code": "FRIENDS", "tiers": str(gig["hidden"].id),
                                                   "percent_off": "10", "max_uses": "5"})
    assert access.status_code == 303
    code = _code(session, event.id, "FRIENDS")
    # An access code takes nothing off, and the reserve gate checks its window only.
    assert code.kind == "access" and code.percent_off is None and code.max_uses is None
    assert "unlocks hidden tiers" in client.get(_new(event.id)).get_data(as_text=True)


def test_bulk_200_codes_download_as_csv_now_and_later(client, factory, session, gig):
    event = gig["event"]
    client, _, token = admin_client(client, factory)
    data = {"bulk-count": "200", "bulk-prefix": "nl-", "bulk-batch": "newsletter", "bulk-kind": "discount",
            "bulk-percent_off": "20", "bulk-max_uses": "1"}
    response = _post(client, _new(event.id) + "/generate", token, data)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == f'attachment; filename="codes-{event.id}-newsletter.csv"'
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 200 and len({r["code"] for r in rows}) == 200
    assert all(r["code"].startswith("NL-") and r["percent_off"] == "20" and r["max_uses"] == "1" for r in rows)
    stored = session.scalars(select(Code.code).where(Code.event_id == event.id, Code.batch == "newsletter")).all()
    assert sorted(stored) == sorted(r["code"] for r in rows)

    again = client.get(f"/admin/events/{event.id}/codes.csv?batch=newsletter")
    assert again.status_code == 200 and again.mimetype == "text/csv"
    assert sorted(r["code"] for r in csv.DictReader(io.StringIO(again.get_data(as_text=True)))) == sorted(stored)
    page = client.get(_new(event.id) + "?batch=newsletter").get_data(as_text=True)
    assert "newsletter (200)" in page and "Download “newsletter” (CSV)" in page

    missing = client.get(f"/admin/events/{event.id}/codes.csv?batch=nope")
    assert missing.status_code == 404 and "no batch of codes called “nope”" in missing.get_data(as_text=True)
    assert client.get(f"/admin/events/{event.id}/codes.csv").status_code == 400
    same_name = _post(client, _new(event.id) + "/generate", token, data)
    assert same_name.status_code == 400 and "already has a batch called" in same_name.get_data(as_text=True)
    too_many = _post(client, _new(event.id) + "/generate", token, {**data, "bulk-count": "2001", "bulk-batch": "b"})
    assert too_many.status_code == 400 and "Generate between 1 and 2,000 codes" in too_many.get_data(as_text=True)
    no_name = _post(client, _new(event.id) + "/generate", token, {**data, "bulk-batch": ""})
    assert no_name.status_code == 400 and "Name the batch" in no_name.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Code)) == 200


def _paid_with(session, factory, event, tier, text, quantity=2):
    buyer = factory.user()
    hold = factory.hold(event, buyer, quantities={tier.id: quantity})
    codes.apply_discount(session, hold_id=hold.id, user_id=buyer.id, raw_code=text)
    session.commit()
    return checkout.pay(session, make_gateway(), hold_id=hold.id, user_id=buyer.id,
                        idempotency_key=secrets.token_urlsafe(24), card=GOOD)


def test_stats_and_dashboard_show_uses_revenue_and_discount(client, factory, session, gig):
    event, tier = gig["event"], gig["public"]
    code = code_admin.create_code(session, event_id=event.id, raw_code="TENOFF", actor_id=None,
                                  spec=code_admin.CodeSpec(kind="discount", percent_off=10, max_uses=5))
    session.commit()
    paid = _paid_with(session, factory, event, tier, "TENOFF")  # 2 × €40 less 10 %: €72 paid, €8 off
    live = factory.hold(event, factory.user(), quantities={tier.id: 1})
    codes.apply_discount(session, hold_id=live.id, user_id=live.user_id, raw_code="tenoff")
    session.commit()

    line = next(s for s in code_admin.code_stats(session, event.id) if s.code.id == code.id)
    assert (line.uses, line.holding, line.revenue_minor, line.discount_minor) == (1, 1, 7200, 800)
    client, _, token = admin_client(client, factory)
    page = client.get(_new(event.id)).get_data(as_text=True)
    assert "1 / 5" in page and 'data-holding="1"' in page and "€72.00" in page and "€8.00" in page
    assert 'data-total="revenue">€72.00' in page

    dashboard = client.get(f"/admin/events/{event.id}").get_data(as_text=True)
    assert "Discount codes: 1 order, €8.00 off" in dashboard
    order_page = client.get(f"/admin/orders/{paid.order_id}").get_data(as_text=True)
    assert "<dt>Discount code</dt><dd><code>TENOFF</code> · −€8.00" in order_page
    figures = admin_reports.dashboard(session, session.get(Event, event.id))
    assert (figures.code_orders, figures.code_discount_minor) == (1, 800)

    # Total uses cannot go below what is taken: the paid order and the live hold.
    lowered = _post(client, f"/admin/events/{event.id}/codes/{code.id}", token, {"percent_off": "10", "max_uses": "1"})
    assert lowered.status_code == 400
    assert "TENOFF has 2 uses taken already" in lowered.get_data(as_text=True)
    assert _code(session, event.id, "TENOFF").max_uses == 5
    assert _post(client, f"/admin/events/{event.id}/codes/{code.id}", token,
                 {"percent_off": "10", "max_uses": "2"}).status_code == 303


def test_update_code_refuses_lowering_below_the_uses_taken(session, factory, gig):
    event, tier = gig["event"], gig["public"]
    code = code_admin.create_code(session, event_id=event.id, raw_code="ONCE2", actor_id=None,
                                  spec=code_admin.CodeSpec(kind="discount", amount_off_minor=500, max_uses=3))
    session.commit()
    _paid_with(session, factory, event, tier, "ONCE2", quantity=1)
    lower = code_admin.CodeSpec(kind="discount", amount_off_minor=500, max_uses=1)
    code_admin.update_code(session, event_id=event.id, code_id=code.id, actor_id=None, spec=lower)  # 1 taken: fine
    session.commit()
    live = factory.hold(event, factory.user(), quantities={tier.id: 1})
    code_admin.update_code(session, event_id=event.id, code_id=code.id, actor_id=None,
                           spec=code_admin.CodeSpec(kind="discount", amount_off_minor=500, max_uses=2))
    session.commit()
    codes.apply_discount(session, hold_id=live.id, user_id=live.user_id, raw_code="ONCE2")
    session.commit()
    with pytest.raises(InvalidRequest, match="cannot go below 2"):
        code_admin.update_code(session, event_id=event.id, code_id=code.id, actor_id=None, spec=lower)
    session.rollback()


def test_hidden_checkbox_round_trip_for_both_kinds_of_tier(client, factory, session):
    event = factory.ga_event(capacity=10, title="Hide Gig")
    tier = factory.tier(event)
    client, _, token = admin_client(client, factory)
    prefix = f"t{tier.id}-"
    fields = {prefix + "name": tier.name, prefix + "price": "50.00", prefix + "capacity": "10",
              prefix + "colour": "#3b82f6"}
    htmx = {"X-CSRFToken": token, "HX-Request": "true"}
    hide = client.post(f"/admin/events/{event.id}/tiers/{tier.id}", headers=htmx,
                       data={**fields, prefix + "hidden": "y"})
    assert hide.status_code == 200
    body = hide.get_data(as_text=True)
    assert ">hidden</span>" in body and "Create an access code" in body and "checked" in body
    session.expire_all()
    assert session.get(Tier, tier.id).hidden is True
    entry = session.scalars(select(AuditLog).where(AuditLog.action == "tier.update")).one()
    assert entry.before == {"hidden": False} and entry.after == {"hidden": True}
    assert "Create an access code" in client.get(f"/admin/events/{event.id}/tiers").get_data(as_text=True)

    show = client.post(f"/admin/events/{event.id}/tiers/{tier.id}", headers={"X-CSRFToken": token,
                                                                             "HX-Request": "true"}, data=fields)
    assert show.status_code == 200 and ">hidden</span>" not in show.get_data(as_text=True)
    session.expire_all()
    assert session.get(Tier, tier.id).hidden is False

    added = _post(client, f"/admin/events/{event.id}/tiers", token, {
        "kind": "general", "name": "Crew", "price": "0", "capacity": "4", "colour": "#3b82f6", "hidden": "y"})
    assert added.status_code == 303
    assert session.scalars(select(Tier).where(Tier.name == "Crew")).one().hidden is True

    # Seated tiers can be hidden too: their seats show as not for sale to buyers without the code.
    seated = factory.seated_event(rows=1, seats_per_row=3, title="Seat Gig")
    stalls = factory.tier(seated)
    sp = f"t{stalls.id}-"
    hidden = client.post(f"/admin/events/{seated.id}/tiers/{stalls.id}",
                         headers={"X-CSRFToken": token, "HX-Request": "true"},
                         data={sp + "name": "Stalls", sp + "price": "45.00", sp + "colour": "#3b82f6",
                               sp + "hidden": "y"})
    assert hidden.status_code == 200
    session.expire_all()
    assert session.get(Tier, stalls.id).hidden is True


def test_non_admins_get_404(client, factory, session, gig):
    event = gig["event"]
    code = code_admin.create_code(session, event_id=event.id, raw_code="SECRET", actor_id=None,
                                  spec=code_admin.CodeSpec(kind="discount", percent_off=50))
    session.commit()
    token = login(client, factory.user().email)
    for url in (_new(event.id), f"/admin/events/{event.id}/codes/{code.id}", f"/admin/events/{event.id}/codes.csv"):
        assert client.get(url, query_string={"batch": "x"}).status_code == 404
    for url in (_new(event.id), f"/admin/events/{event.id}/codes/{code.id}/active", _new(event.id) + "/generate"):
        assert client.post(url, data={"csrf_token": token, "active": "0", "code": "X", "percent_off": "5"}
                           ).status_code == 404
    assert _code(session, event.id, "SECRET").active is True
