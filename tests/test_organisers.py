"""Organisers are walled off: every admin page and API route, walked as one organiser's people against the
other's ids; every role against every route it must not reach; and the scope below the views."""
from __future__ import annotations

import re

import pytest
from flask import g
from sqlalchemy import func, select, text, update

from tests.organiser_world import Side, make_side
from tests.support import login
from webapp import organiser_guard
from webapp.extensions import db
from webapp.models import AuditLog, Event, Order, OrganiserMember, OutboxMessage, User
from webapp.services import organiser_scope
from webapp.services.people import organisers

ADMIN_PREFIXES = ("/admin", "/api/v1/admin")
# Arguments that name no organiser's row: given a harmless value.
FREE_ARGUMENTS = {"field": "title", "name": "nothing.eml", "index": 0}


@pytest.fixture
def world(factory) -> tuple[Side, Side]:
    return make_side(factory, "alpha", "Alpha"), make_side(factory, "bravo", "Bravo")


def admin_rules(app):
    return sorted((rule for rule in app.url_map.iter_rules() if rule.rule.startswith(ADMIN_PREFIXES)),
                  key=lambda r: r.rule)


def url_for_rule(rule, ids: dict[str, int]) -> str:
    values = {name: ids.get(name, FREE_ARGUMENTS.get(name)) for name in rule.arguments}
    return rule.build(values, append_unknown=False)[1]


def methods(rule) -> list[str]:
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def call(client, method: str, url: str, *, token: str | None = None, csrf: str | None = None):
    if url.startswith("/api/"):
        return client.open(url, method=method, headers={"Authorization": f"Bearer {token}"}, json={})
    data = {"csrf_token": csrf} if method != "GET" else None
    return client.open(url, method=method, data=data)


def test_every_route_with_an_id_answers_404_for_the_other_organisers_rows(app, client, world):
    alpha, bravo = world
    csrf = login(client, alpha.members["owner"].email)
    walked, answers = 0, {}
    for rule in admin_rules(app):
        if not set(rule.arguments) & organisers.OWNED_ARGUMENTS:
            continue
        url = url_for_rule(rule, bravo.ids)
        for method in methods(rule):
            response = call(client, method, url, token=alpha.tokens["owner"], csrf=csrf)
            answers[f"{method} {rule.rule}"] = response.status_code
            walked += 1
    assert walked >= 45
    assert {route: status for route, status in answers.items() if status != 404} == {}


def test_the_lists_show_none_of_the_other_organisers_rows(app, client, world):
    alpha, bravo = world
    login(client, alpha.members["owner"].email)
    shown = {}
    for rule in admin_rules(app):
        if rule.arguments or "GET" not in rule.methods:
            continue
        response = call(client, "GET", rule.rule, token=alpha.tokens["owner"])
        assert response.status_code < 500, rule.rule
        body = response.get_data(as_text=True)
        shown[rule.rule] = [mark for mark in bravo.marks if mark in body]
        if rule.rule in ("/admin/", "/api/v1/admin/events", "/admin/webhooks", "/api/v1/admin/webhooks"):
            # Alpha's own rows are there: the page is not merely empty.
            assert any(mark in body for mark in alpha.marks), rule.rule
    assert len(shown) >= 8
    assert {rule: marks for rule, marks in shown.items() if marks} == {}


def test_the_order_search_finds_only_the_organisers_orders(client, world):
    alpha, bravo = world
    login(client, alpha.members["box_office"].email)
    found = client.get("/admin/orders?q=example.com").get_data(as_text=True)
    assert "buyer-alpha@example.com" in found and "buyer-bravo@example.com" not in found


ROLES = ("manager", "box_office", "door", "viewer")


@pytest.mark.parametrize("role", ROLES)
def test_every_role_is_refused_every_route_it_must_not_reach(app, client, world, role):
    alpha, _ = world
    csrf = login(client, alpha.members[role].email)
    reach = organisers.CAPABILITIES[role]
    refused, walked = {}, 0
    for rule in admin_rules(app):
        need = organiser_guard.need_of(rule.endpoint)
        if need in reach or need == "enter":
            continue
        url = url_for_rule(rule, alpha.ids)
        for method in methods(rule):
            status = call(client, method, url, token=alpha.tokens[role], csrf=csrf).status_code
            walked += 1
            if status not in (403, 404):
                refused[f"{method} {rule.rule}"] = status
    assert walked >= 10
    assert refused == {}


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reaches_the_pages_it_may_read(app, client, world, role):
    alpha, _ = world
    login(client, alpha.members[role].email)
    reach = organisers.CAPABILITIES[role]
    answers = {}
    for rule in admin_rules(app):
        if "GET" not in rule.methods or organiser_guard.need_of(rule.endpoint) not in reach | {"enter"}:
            continue
        url = url_for_rule(rule, alpha.ids)
        answers[rule.rule] = call(client, "GET", url, token=alpha.tokens[role]).status_code
    # Reached: the page answers (a 400 asks for a missing parameter, as codes.csv does for its batch).
    assert answers and {rule: status for rule, status in answers.items() if status not in (200, 400)} == {}
    assert list(answers.values()).count(200) >= 2


def test_a_door_member_sees_only_check_in(client, world):
    alpha, _ = world
    login(client, alpha.members["door"].email)
    landing = client.get("/admin/").get_data(as_text=True)
    assert f"/admin/events/{alpha.ids['event_id']}/check-in" in landing
    assert "/admin/orders" not in landing and "/admin/webhooks" not in landing and "New event" not in landing
    assert client.get(f"/admin/events/{alpha.ids['event_id']}/check-in").status_code == 200
    assert client.get(f"/admin/events/{alpha.ids['event_id']}").status_code == 403


def test_a_member_limited_to_some_events_reaches_no_other(client, factory, world, session):
    alpha, _ = world
    other = factory.ga_event(capacity=2, title="Alpha Matinee", organiser_id=alpha.organiser.id)
    member = session.get(OrganiserMember, (alpha.organiser.id, alpha.members["manager"].id))
    member.event_ids = [alpha.ids["event_id"]]
    session.commit()
    login(client, alpha.members["manager"].email)
    assert client.get(f"/admin/events/{alpha.ids['event_id']}").status_code == 200
    assert client.get(f"/admin/events/{other.id}").status_code == 404
    assert "Alpha Matinee" not in client.get("/admin/").get_data(as_text=True)


def test_no_team_no_admin_area(client, factory, world):
    outsider = factory.user("outsider@example.com")
    login(client, outsider.email)
    assert client.get("/admin/").status_code == 404


def test_removing_a_member_ends_their_sessions_at_once(app, client, world, session):
    alpha, _ = world
    login(client, alpha.members["viewer"].email)
    assert client.get(f"/admin/events/{alpha.ids['event_id']}").status_code == 200
    organisers.remove_member(session, organiser_id=alpha.organiser.id, user_id=alpha.members["viewer"].id,
                             actor_id=alpha.members["owner"].id)
    session.commit()
    # The next request is a new one (the test's app context would keep the user loaded for the last).
    g.pop("_login_user", None)
    # Not merely refused the area: signed out everywhere (the session version moved).
    assert client.get(f"/admin/events/{alpha.ids['event_id']}").status_code == 404
    assert client.get("/account/tokens").status_code in (302, 303)


def test_a_platform_administrator_makes_organisers_and_switches_into_them_audited(client, factory, world, session):
    alpha, bravo = world
    admin = factory.user("platform@example.com", is_admin=True)
    csrf = login(client, admin.email)
    made = client.post("/admin/organisers", data={"slug": "charlie", "name": "Charlie", "csrf_token": csrf})
    assert made.status_code == 303
    bad = client.post("/admin/organisers", data={"slug": "No Spaces!", "name": "x", "csrf_token": csrf})
    assert bad.status_code == 400 and "lower-case" in bad.get_data(as_text=True)
    switched = client.post("/admin/organisers/switch", data={"organiser": bravo.organiser.id, "csrf_token": csrf})
    assert switched.status_code == 303
    landing = client.get("/admin/").get_data(as_text=True)
    assert "Bravo Night" in landing and "Alpha Night" not in landing
    assert session.scalar(select(func.count()).select_from(AuditLog)
                          .where(AuditLog.action == "organiser.switch",
                                 AuditLog.entity_id == bravo.organiser.id)) == 1
    # An owner of Alpha cannot switch into Bravo.
    client.post("/logout", data={"csrf_token": csrf})
    csrf = login(client, alpha.members["owner"].email)
    assert client.post("/admin/organisers/switch",
                       data={"organiser": bravo.organiser.id, "csrf_token": csrf}).status_code == 404
    assert client.get("/admin/organisers").status_code == 404


def test_the_public_organiser_page_lists_only_its_events(client, world):
    alpha, bravo = world
    page = client.get("/o/alpha").get_data(as_text=True)
    assert "Alpha Night" in page and "Bravo Night" not in page
    assert client.get("/o/nobody").status_code == 404


# Below the views: the session scope.

def test_every_table_is_scoped_or_known_to_hold_no_organisers_data():
    tables = set(db.Model.metadata.tables)
    assert tables - set(organiser_scope.scoped_tables()) - organiser_scope.UNSCOPED == set()
    # And the list of exceptions names only real tables.
    assert organiser_scope.UNSCOPED <= tables


def test_a_query_that_forgets_the_organiser_still_sees_only_its_rows(world, session):
    alpha, bravo = world
    everyone = {}
    for mapper in db.Model.registry.mappers:
        if mapper.local_table.name in organiser_scope.scoped_tables():
            everyone[mapper.class_] = session.scalar(select(func.count()).select_from(mapper.class_))
    organiser_scope.enter(session, alpha.organiser.id)
    try:
        scoped = {cls: len(session.scalars(select(cls)).all()) for cls in everyone}
        assert session.get(Event, bravo.ids["event_id"]) is None
        assert session.get(Order, bravo.ids["order_id"]) is None
        # A bulk write that forgets is narrowed too.
        touched = session.execute(update(Event).where(Event.id == bravo.ids["event_id"]).values(title="x"))
        assert touched.rowcount == 0
    finally:
        organiser_scope.leave(session)
        session.rollback()
    # Every table with rows of both organisers shows fewer rows in the scope, and never none of Alpha's.
    both = [cls for cls in everyone if everyone[cls] >= 2 and cls.__tablename__ not in ("organiser_members",)]
    assert len(both) >= 8
    assert {cls.__tablename__: (scoped[cls], everyone[cls]) for cls in both
            if not 0 < scoped[cls] < everyone[cls]} == {}


def test_the_webhook_for_all_events_hears_only_its_own_organisers(world, session):
    alpha, bravo = world
    # The endpoints are for all events; each organiser's order made one delivery, to its own endpoint only.
    rows = session.execute(text(
        "SELECT w.organiser_id AS hook, e.organiser_id AS event FROM webhook_deliveries d "
        "JOIN webhook_endpoints w ON w.id = d.endpoint_id JOIN events e ON e.id = d.event_id "
        "WHERE d.body <> '{}'")).all()
    assert sorted((row.hook, row.event) for row in rows) == [(alpha.organiser.id, alpha.organiser.id),
                                                             (bravo.organiser.id, bravo.organiser.id)]


def test_an_api_token_carries_its_makers_organiser_and_role(client, world):
    alpha, bravo = world
    headers = {"Authorization": f"Bearer {alpha.tokens['viewer']}"}
    listed = client.get("/api/v1/admin/events", headers=headers)
    assert listed.status_code == 200 and [e["title"] for e in listed.get_json()["events"]] == ["Alpha Night"]
    assert client.post(f"/api/v1/admin/events/{alpha.ids['event_id']}/status", headers=headers,
                       json={"status": "closed"}).status_code == 403
    assert re.match(r"application/problem\+json", client.get(
        f"/api/v1/admin/events/{bravo.ids['event_id']}", headers=headers).content_type)


def test_a_token_stops_when_its_maker_leaves_the_team(client, world, session):
    alpha, _ = world
    headers = {"Authorization": f"Bearer {alpha.tokens['manager']}"}
    assert client.get("/api/v1/admin/events", headers=headers).status_code == 200
    organisers.remove_member(session, organiser_id=alpha.organiser.id, user_id=alpha.members["manager"].id,
                             actor_id=None)
    session.commit()
    assert client.get("/api/v1/admin/events", headers=headers).status_code == 404
    assert session.get(User, alpha.members["manager"].id) is not None


def test_an_invitation_is_mailed_and_accepted_by_its_address_only_until_it_expires(app, client, factory, world,
                                                                                   session, monkeypatch):
    alpha, _ = world
    csrf = login(client, alpha.members["owner"].email)
    sent = client.post("/admin/team/invite", data={"email": "New.Hand@example.com", "role": "box_office",
                                                   "csrf_token": csrf})
    assert sent.status_code == 303
    assert client.post("/admin/team/invite", data={"email": "nobody", "role": "door",
                                                   "csrf_token": csrf}).status_code == 400
    message = session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "new.hand@example.com")).one()
    assert "Alpha" in message.subject and "box office" in message.body
    link = re.search(r"http\S+/account/invitations/\S+", message.body).group(0)
    path = link[link.index("/account/"):]
    client.post("/logout", data={"csrf_token": csrf})

    # Another account cannot take it.
    other = factory.user("someone-else@example.com")
    g.pop("_login_user", None)
    csrf = login(client, other.email)
    assert client.post(path, data={"csrf_token": csrf}).status_code == 400
    client.post("/logout", data={"csrf_token": csrf})

    invited = factory.user("new.hand@example.com")
    g.pop("_login_user", None)
    csrf = login(client, invited.email)
    assert "Join Alpha" in client.get(path).get_data(as_text=True)
    # Expired: the same link, read with a shorter life than its age.
    monkeypatch.setitem(app.config, "INVITATION_MAX_AGE_SECONDS", -1)
    expired = client.post(path, data={"csrf_token": csrf})
    assert expired.status_code == 410 and "expired" in expired.get_data(as_text=True)
    assert session.get(OrganiserMember, (alpha.organiser.id, invited.id)) is None
    monkeypatch.setitem(app.config, "INVITATION_MAX_AGE_SECONDS", 3600)
    assert client.post(path, data={"csrf_token": csrf}).status_code == 303
    session.expire_all()
    assert session.get(OrganiserMember, (alpha.organiser.id, invited.id)).role == "box_office"
    assert client.get("/admin/orders").status_code == 200
    assert client.get("/admin/webhooks").status_code == 403


def test_rows_of_no_organiser_are_the_platform_administrators_only(world, session):
    alpha, _ = world
    session.add(OutboxMessage(recipient="someone@example.com", subject="Reset your password", body="x"))
    session.commit()
    mine = select(OutboxMessage).where(OutboxMessage.event_id.is_(None))
    try:
        organiser_scope.enter(session, alpha.organiser.id)
        assert session.scalars(mine).all() == []
        organiser_scope.enter(session, alpha.organiser.id, platform=True)
        # The account's mail, and the invitations the world mailed (of no event either).
        assert "Reset your password" in [m.subject for m in session.scalars(mine)]
        # Still none of the other organiser's.
        assert {m.event_id for m in session.scalars(select(OutboxMessage))} == {alpha.ids["event_id"], None}
    finally:
        organiser_scope.leave(session)


def test_the_door_phone_page_serves_the_organisers_door_members_for_its_events_only(client, world):
    alpha, bravo = world
    login(client, alpha.members["door"].email)
    listing = client.get("/door").get_data(as_text=True)
    assert "Alpha Night" in listing and "Bravo Night" not in listing
    assert client.get(f"/door/events/{alpha.ids['event_id']}").status_code == 200
    assert client.get(f"/door/events/{bravo.ids['event_id']}").status_code == 404


def test_an_owner_limits_a_member_to_some_events_and_not_to_anothers(client, factory, world, session):
    alpha, bravo = world
    matinee = factory.ga_event(capacity=2, title="Alpha Matinee", organiser_id=alpha.organiser.id)
    csrf = login(client, alpha.members["owner"].email)
    viewer = alpha.members["viewer"].email
    foreign = client.post("/admin/team", data={"email": viewer, "role": "viewer", "csrf_token": csrf,
                                               "events": [str(bravo.ids["event_id"])]})
    assert foreign.status_code == 400 and "Pick the events" in foreign.get_data(as_text=True)
    saved = client.post("/admin/team", data={"email": viewer, "role": "viewer", "csrf_token": csrf,
                                             "events": [str(matinee.id)]})
    assert saved.status_code == 303
    session.expire_all()
    assert session.get(OrganiserMember, (alpha.organiser.id, alpha.members["viewer"].id)).event_ids == [matinee.id]
