"""Door members: check tickets in for their own events on the door page, and nothing else.

The race proves that phones at one door admit a ticket once: the check-in is
one conditional UPDATE (`checkin.check_in`), so of many simultaneous scans of
one code exactly one admits.
"""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.factories import Factory, make_gateway
from tests.support import buy, cancel, csrf_token, door_member, login, race
from tests.test_admin_views import ADMIN_ROUTES, build, world  # noqa: F401  (the fixture is used by name)
from webapp.extensions import db
from webapp.models import AuditLog, OrganiserMember, Ticket
from webapp.services.admin import checkin, door


@pytest.fixture
def gig(session, factory):
    event = factory.ga_event(capacity=20, title="Door Gig")
    other = factory.ga_event(capacity=5, title="Other Gig")
    staff = factory.user(name="Dora Door")
    admin = factory.user(name="Ada Admin", is_admin=True)
    door_member(session, event, staff)
    order = buy(session, event, factory.user(name="Bea Buyer"))
    elsewhere = buy(session, other, factory.user())
    return dict(event=event, other=other, staff=staff, admin=admin, code=order.tickets[0].code, order=order,
                elsewhere_code=elsewhere.tickets[0].code)


def _scan(client, event_id: int, code: str):
    token = csrf_token(client, f"/door/events/{event_id}")
    return client.post(f"/door/events/{event_id}/check-in", data={"code": code, "csrf_token": token},
                       headers={"HX-Request": "true"})


def test_door_staff_see_their_events_and_admit_a_ticket_once(client, gig):
    login(client, gig["staff"].email)
    listing = client.get("/door").get_data(as_text=True)
    assert "Door Gig" in listing and "Other Gig" not in listing
    page = client.get(f"/door/events/{gig['event'].id}")
    assert page.status_code == 200 and "0</strong> of 1 checked in" in page.get_data(as_text=True)

    first = _scan(client, gig["event"].id, gig["code"])
    assert first.status_code == 200
    body = first.get_data(as_text=True)
    assert "ADMIT" in body and "Bea Buyer" in body and "1</strong> of 1 checked in" in body

    again = _scan(client, gig["event"].id, gig["code"])
    assert again.status_code == 409
    body = again.get_data(as_text=True)
    assert "ALREADY IN" in body and "by Dora Door" in body and "Checked in at" in body


def test_wrong_event_cancelled_and_unknown_verdicts(client, session, gig):
    login(client, gig["staff"].email)
    wrong = _scan(client, gig["event"].id, gig["elsewhere_code"])
    assert wrong.status_code == 409 and "WRONG EVENT" in wrong.get_data(as_text=True)
    assert "Other Gig" in wrong.get_data(as_text=True)

    cancel(session, make_gateway(), gig["order"])
    cancelled = _scan(client, gig["event"].id, gig["code"])
    assert cancelled.status_code == 409 and "CANCELLED" in cancelled.get_data(as_text=True)

    unknown = _scan(client, gig["event"].id, "no-such-code")
    assert unknown.status_code == 404 and "No ticket has the code" in unknown.get_data(as_text=True)
    empty = _scan(client, gig["event"].id, "")
    assert empty.status_code == 404 and "Type or scan a ticket code." in empty.get_data(as_text=True)


def test_door_page_is_404_for_an_event_not_assigned_and_for_buyers(client, factory, gig):
    login(client, gig["staff"].email)
    assert client.get(f"/door/events/{gig['other'].id}").status_code == 404
    assert _scan(client, gig["other"].id, gig["elsewhere_code"]).status_code == 404
    assert client.get("/door/events/999999").status_code == 404
    stranger = factory.user()
    client.post("/auth/logout", data={"csrf_token": csrf_token(client)})
    login(client, stranger.email)
    assert client.get(f"/door/events/{gig['event'].id}").status_code == 404


def test_anonymous_door_visitor_is_asked_to_log_in(client, gig):
    response = client.get(f"/door/events/{gig['event'].id}")
    assert response.status_code == 303 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("method,endpoint", ADMIN_ROUTES)
def test_door_staff_get_404_everywhere_in_the_admin_area(app, client, session, world, method, endpoint):  # noqa: F811
    from webapp.models import Event

    staff = Factory(session).user(name="Door Only")
    door_member(session, session.get(Event, world["event_id"]), staff)
    login(client, staff.email)
    token = csrf_token(client)
    response = client.open(build(app, endpoint, world), method=method, headers={"X-CSRFToken": token})
    # The admin area's check-in is theirs; everything else is refused (403: they are in the team).
    if endpoint.rsplit(".", 1)[-1] in {"checkin_page", "checkin_post", "check_in", "events", "organiser_switch"}:
        assert response.status_code != 403
    else:
        assert response.status_code in (403, 404)


def test_the_door_is_the_team_the_old_door_staff_panel_is_gone(client, session, factory):
    """Door staff are members with the role door (limited to events): added and removed on the team page, listed
    on the check-in page; the old per-event panel answers nothing."""
    from tests.support import admin_client

    event = factory.ga_event(capacity=5, title="Staffed Gig")
    helper = factory.user(name="Hal Helper")
    client, admin, token = admin_client(client, factory)
    assert client.post(f"/admin/events/{event.id}/door-staff",
                       data={"csrf_token": token, "email": helper.email}).status_code == 404
    added = client.post("/admin/team", data={"csrf_token": token, "email": helper.email.upper(), "role": "door",
                                             "events": [str(event.id)]})
    assert added.status_code == 303
    assert door.may_check_in(session, user_id=helper.id, event_id=event.id)
    page = client.get(f"/admin/events/{event.id}/check-in").get_data(as_text=True)
    assert "Hal Helper" in page and "door-staff" in page and "Add to the door" not in page
    client.post(f"/admin/team/{helper.id}/remove", data={"csrf_token": token})
    session.expire_all()
    assert not door.may_check_in(session, user_id=helper.id, event_id=event.id)
    actions = session.scalars(select(AuditLog.action).where(AuditLog.entity_id == helper.id)).all()
    assert "member.set" in actions and "member.remove" in actions


def test_phones_at_one_door_admit_a_ticket_once(app, session, gig):
    """Twelve phones scan one code at the same instant: one admits, eleven say already in."""
    event_id, code, staff_id = gig["event"].id, gig["code"], gig["staff"].id

    def scan(_):
        result = checkin.check_in(db.session, event_id=event_id, code=code, staff_id=staff_id)
        db.session.commit()
        return result.outcome

    outcomes = race(app, 12, scan)
    assert outcomes.count(checkin.VALID) == 1
    assert outcomes.count(checkin.ALREADY) == 11
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "ticket.check_in")) == 1
    assert session.scalar(select(func.count()).select_from(Ticket).where(Ticket.checked_in_at.is_not(None))) == 1
    assert session.scalar(select(func.count()).select_from(OrganiserMember).where(OrganiserMember.role == "door")) == 1
