"""The waiting room on real PostgreSQL: fairness, one place each, passes and every refusal, scale-out, sold out."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from config import TestConfig
from tests.support import GOOD, assert_consistent, race, sign_in
from webapp import create_app
from webapp.extensions import db
from webapp.models import Event, Hold, WaitingRoom, WaitingRoomEntry
from webapp.services.waiting import waiting_room

HX = {"HX-Request": "true"}


def forget_user():
    """Requests share the test's app context: forget the user and CSRF token `g` cached for the last client."""
    from flask import g

    g.pop("_login_user", None)
    g.pop("csrf_token", None)


def call(client, method: str, url: str, **kw):
    forget_user()
    return getattr(client, method)(url, **kw)


def token_of(client) -> str:
    page = call(client, "get", "/").get_data(as_text=True)
    return re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)


def room(session, event, *, starts_in: float = 3600, rate: int | None = None, cap: int | None = 5,
         pass_minutes: float = 10) -> WaitingRoom:
    made = waiting_room.configure(
        session, event, enabled=True, sale_starts_at=datetime.now(timezone.utc) + timedelta(seconds=starts_in),
        admit_per_minute=rate, max_shoppers=cap, pass_minutes=pass_minutes)
    session.commit()
    return made


def start_sale(session, event_id: int) -> None:
    """The sale start moves to a second ago, by the database clock."""
    session.execute(text("UPDATE waiting_rooms SET sale_starts_at = now() - interval '1 second'"
                         " WHERE event_id = :e"), {"e": event_id})
    session.commit()


def admit(session, event_id: int) -> list[int]:
    result = waiting_room.admit(session, event_id)
    session.commit()
    return result.admitted


def status_of(session, entry_id: int) -> str:
    session.expire_all()
    return session.get(WaitingRoomEntry, entry_id).status


def buyer(client, factory):
    user = factory.user()
    forget_user()
    sign_in(client, user.id)
    return user


def join_over_http(client, event_id: int) -> None:
    response = call(client, "post", f"/events/{event_id}/waiting-room/join", headers={"X-CSRFToken": token_of(client)})
    assert response.status_code == 303


def reserve_one(client, event: Event):
    return call(client, "post", f"/events/{event.id}/reserve", data={f"qty-{event.tiers[0].id}": "1"},
                headers={**HX, "X-CSRFToken": token_of(client)})


def take_turn(client, event_id: int) -> str:
    """The admitted buyer opens the waiting room page and gets their pass; returns the pass cookie."""
    page = call(client, "get", f"/events/{event_id}/waiting-room")
    assert page.status_code == 200
    assert "It is your turn" in page.get_data(as_text=True)
    cookie = client.get_cookie(waiting_room.pass_cookie_name(event_id))
    assert cookie is not None
    return cookie.value



def test_early_joiners_are_admitted_in_a_random_draw_then_latecomers_in_arrival_order(session, factory):
    event = factory.ga_event(capacity=100)
    room(session, event, cap=1)
    early = factory.users(20)
    early_ids = [waiting_room.join(session, event.id, user_id=u.id) for u in early]
    session.commit()
    start_sale(session, event.id)
    late_ids = []
    for u in factory.users(5):
        late_ids.append(waiting_room.join(session, event.id, user_id=u.id))
        session.commit()
    order = []
    for _ in range(25):
        admitted = admit(session, event.id)
        assert len(admitted) == 1  # the cap: one shopper at a time
        order.append(admitted[0])
        waiting_room.leave(session, admitted[0])
        session.commit()
    assert set(order[:20]) == set(early_ids)
    assert order[20:] == late_ids
    keys = dict(session.execute(select(WaitingRoomEntry.id, WaitingRoomEntry.line_key)).all())
    assert order[:20] == sorted(early_ids, key=lambda i: (keys[i], i))
    # The draw, not the order of arrival (20! orders: equal by chance never).
    assert order[:20] != early_ids
    assert all(keys[i] < 0 for i in early_ids) and all(keys[i] > 0 for i in late_ids)


def test_one_place_per_account_even_when_joining_at_once(app, session, factory):
    event = factory.ga_event(capacity=10)
    room(session, event)
    user = factory.user()

    def join(i):
        entry = waiting_room.join(db.session, event.id, user_id=user.id)
        db.session.commit()
        return entry

    ids = race(app, 8, join)
    assert len(set(ids)) == 1
    assert session.scalar(text("SELECT count(*) FROM waiting_room_entries")) == 1
    # A second join later is the same place too.
    assert waiting_room.join(session, event.id, user_id=user.id) == ids[0]


def test_a_rate_lets_in_what_it_earned_and_pause_stops_it(session, factory):
    event = factory.ga_event(capacity=100)
    room(session, event, rate=60, cap=None)  # one a second
    for u in factory.users(30):
        waiting_room.join(session, event.id, user_id=u.id)
    session.commit()
    start_sale(session, event.id)
    session.execute(text("UPDATE waiting_rooms SET credited_at = now() - interval '5 seconds'"))
    session.commit()
    first = admit(session, event.id)
    # About five seconds' worth (the start was a second before the credit time's reference).
    assert 4 <= len(first) <= 7
    waiting_room.control(session, session.get(Event, event.id), paused=True)
    session.commit()
    session.execute(text("UPDATE waiting_rooms SET credited_at = now() - interval '5 seconds'"))
    session.commit()
    assert admit(session, event.id) == []


def test_many_passes_at_once_never_admit_more_than_the_cap(app, session, factory):
    event = factory.ga_event(capacity=100)
    room(session, event, cap=5)
    for u in factory.users(40):
        waiting_room.join(session, event.id, user_id=u.id)
    session.commit()
    start_sale(session, event.id)
    # A first pass starts the sale (it writes the room row); its five give their turn up.
    for entry_id in admit(session, event.id):
        waiting_room.leave(session, entry_id)
    session.commit()

    def one_pass(i):
        admitted = waiting_room.admit(db.session, event.id).admitted
        db.session.commit()
        return len(admitted)

    assert sum(race(app, 8, one_pass)) == 5
    assert session.scalar(text("SELECT count(*) FROM waiting_room_entries WHERE status = 'admitted'")) == 5



@pytest.fixture
def guarded(session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event, cap=5)
    start_sale(session, event.id)
    return session.get(Event, event.id)


def test_an_admitted_buyer_reserves_and_pays_with_their_pass(client, session, factory, guarded, gateway):
    from webapp.services.money import checkout

    user = buyer(client, factory)
    join_over_http(client, guarded.id)
    assert admit(session, guarded.id)
    take_turn(client, guarded.id)
    page = call(client, "get", f"/events/{guarded.id}")
    assert page.status_code == 200 and "tier-picker" in page.get_data(as_text=True)
    response = reserve_one(client, guarded)
    assert response.status_code == 204 and "/holds/" in response.headers["HX-Redirect"]
    hold = session.scalars(select(Hold).where(Hold.user_id == user.id)).one()
    entry = session.scalars(select(WaitingRoomEntry).where(WaitingRoomEntry.user_id == user.id)).one()
    assert entry.pass_until >= hold.expires_at  # the pass lasts as long as the hold
    checkout.pay(session, gateway, hold_id=hold.id, user_id=user.id, idempotency_key="k1", card=GOOD)
    # Bought: the slot is free for the next one at the next pass.
    admit(session, guarded.id)
    assert status_of(session, entry.id) == "done"
    assert_consistent(session, guarded.id)


def test_a_direct_post_without_a_pass_is_refused(client, session, factory, guarded):
    buyer(client, factory)
    response = reserve_one(client, guarded)
    assert response.status_code == 403
    body = response.get_data(as_text=True)
    assert "waiting room" in body and f"/events/{guarded.id}/waiting-room" in body
    assert response.headers["HX-Retarget"] == "#event-body"
    assert session.scalar(text("SELECT count(*) FROM holds")) == 0
    # The page and the picker send them to the waiting room too.
    page = call(client, "get", f"/events/{guarded.id}")
    assert page.headers["Location"].endswith(f"/events/{guarded.id}/waiting-room")
    assert call(client, "get", f"/events/{guarded.id}/tickets", headers=HX).status_code == 403


def test_a_pass_copied_to_another_account_is_refused(client, app, session, factory, guarded):
    buyer(client, factory)
    join_over_http(client, guarded.id)
    admit(session, guarded.id)
    stolen = take_turn(client, guarded.id)
    thief_client = app.test_client()
    buyer(thief_client, factory)
    thief_client.set_cookie(waiting_room.pass_cookie_name(guarded.id), stolen)
    response = reserve_one(thief_client, guarded)
    assert response.status_code == 403
    assert "belongs to another account" in response.get_data(as_text=True)
    assert call(thief_client, "get", f"/events/{guarded.id}/tickets", headers=HX).status_code == 403
    assert session.scalar(text("SELECT count(*) FROM holds")) == 0


def test_a_forged_pass_is_refused(client, session, factory, guarded):
    user = buyer(client, factory)
    entry_id = waiting_room.join(session, guarded.id, user_id=user.id)
    session.commit()
    from itsdangerous import URLSafeSerializer

    forged = URLSafeSerializer("not-the-secret", salt=waiting_room.PASS_SALT).dumps(
        {"a": entry_id, "u": user.id, "e": guarded.id, "x": 4102444800})
    client.set_cookie(waiting_room.pass_cookie_name(guarded.id), forged)
    response = reserve_one(client, guarded)
    assert response.status_code == 403 and "not valid" in response.get_data(as_text=True)
    assert session.scalar(text("SELECT count(*) FROM holds")) == 0


def test_an_expired_pass_is_refused_by_the_view_and_by_the_database(client, session, factory, guarded):
    user = buyer(client, factory)
    join_over_http(client, guarded.id)
    admit(session, guarded.id)
    take_turn(client, guarded.id)
    # The database's word: the admission ran out (the cookie's own end is later).
    session.execute(text("UPDATE waiting_room_entries SET pass_until = now() - interval '1 second'"))
    session.commit()
    assert reserve_one(client, guarded).status_code == 403
    # The cookie's word: a pass signed with an end in the past.
    entry = session.scalars(select(WaitingRoomEntry).where(WaitingRoomEntry.user_id == user.id)).one()
    with client.application.test_request_context():
        old = waiting_room.make_pass(admission_id=entry.id, user_id=user.id, event_id=guarded.id,
                                     until=datetime.now(timezone.utc) - timedelta(seconds=5))
    client.set_cookie(waiting_room.pass_cookie_name(guarded.id), old)
    response = reserve_one(client, guarded)
    assert response.status_code == 403 and "expired" in response.get_data(as_text=True)
    assert session.scalar(text("SELECT count(*) FROM holds")) == 0


def test_leaving_ends_the_pass_and_frees_the_slot(client, session, factory, guarded):
    waiting_room.configure(session, guarded, enabled=True, sale_starts_at=datetime.now(timezone.utc),
                           admit_per_minute=None, max_shoppers=1)
    session.commit()
    buyer(client, factory)
    join_over_http(client, guarded.id)
    nxt = factory.user()
    next_id = waiting_room.join(session, guarded.id, user_id=nxt.id)
    session.commit()
    admit(session, guarded.id)
    take_turn(client, guarded.id)
    assert admit(session, guarded.id) == []  # the cap is full
    response = call(client, "post", f"/events/{guarded.id}/waiting-room/leave",
                    headers={"X-CSRFToken": token_of(client)})
    assert response.status_code == 303
    assert admit(session, guarded.id) == [next_id]
    # Even a copy of the cookie kept from before grants nothing now.
    assert reserve_one(client, guarded).status_code == 403



def test_countdown_then_position_with_conditional_polls(client, session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event, cap=1)
    for other in factory.users(3):
        waiting_room.join(session, event.id, user_id=other.id)
    session.commit()
    buyer(client, factory)
    page = call(client, "get", f"/events/{event.id}")
    assert page.status_code == 303 and page.headers["Location"].endswith(f"/events/{event.id}/waiting-room")
    join_over_http(client, event.id)
    body = call(client, "get", f"/events/{event.id}/waiting-room").get_data(as_text=True)
    assert "Sales start in" in body and "You are in the waiting room" in body
    poll = call(client, "get", f"/events/{event.id}/waiting-room/status", headers=HX)
    assert poll.status_code == 200
    tag = poll.headers["ETag"]
    again = call(client, "get", f"/events/{event.id}/waiting-room/status", headers={**HX, "If-None-Match": tag})
    assert again.status_code == 304
    # Paused, so that the draw alone decides where the buyer stands.
    waiting_room.control(session, session.get(Event, event.id), paused=True)
    session.commit()
    tag = call(client, "get", f"/events/{event.id}/waiting-room/status", headers=HX).headers["ETag"]
    start_sale(session, event.id)
    # No sweep ran: the poll runs the pass itself (the sale started), and the answer changes.
    after = call(client, "get", f"/events/{event.id}/waiting-room/status", headers={**HX, "If-None-Match": tag})
    assert after.status_code == 200
    body = after.get_data(as_text=True)
    entry = session.scalars(select(WaitingRoomEntry).order_by(WaitingRoomEntry.id.desc())).first()
    rank = session.scalar(text("SELECT count(*) FROM waiting_room_entries WHERE line_key < :k"), {"k": entry.line_key})
    if rank == 0:
        assert "You are next" in body
    else:
        assert f'id="waiting-room-position-number">{rank + 1}</strong>' in body and f"<strong>{rank}</strong>" in body
    assert "<progress" in body and "Admission is paused" in body


def test_an_anonymous_visitor_waits_then_is_asked_to_log_in(client, session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event, cap=5)
    join_over_http(client, event.id)
    entry = session.scalars(select(WaitingRoomEntry)).one()
    assert entry.user_id is None and entry.anon_token
    start_sale(session, event.id)
    admit(session, event.id)
    body = call(client, "get", f"/events/{event.id}/waiting-room").get_data(as_text=True)
    assert "Log in to continue" in body
    assert client.get_cookie(waiting_room.pass_cookie_name(event.id)) is None
    user = buyer(client, factory)
    take_turn(client, event.id)
    session.expire_all()
    assert session.get(WaitingRoomEntry, entry.id).user_id == user.id
    assert reserve_one(client, event).status_code == 204


def test_sold_out_while_waiting_tells_everyone_and_offers_the_waiting_list(client, session, factory, gateway):
    event = factory.ga_event(capacity=2)
    room(session, event, cap=2)
    buyers = factory.users(2)
    for u in buyers:
        waiting_room.join(session, event.id, user_id=u.id)
    session.commit()
    start_sale(session, event.id)
    buyer(client, factory)
    join_over_http(client, event.id)  # after the start: behind the two
    admitted = admit(session, event.id)
    assert len(admitted) == 2
    # The two admitted buy everything (through their admissions).
    from webapp.services.money import checkout
    from webapp.services.selling import inventory

    for entry_id in admitted:
        user_id = session.get(WaitingRoomEntry, entry_id).user_id
        hold = inventory.reserve_general(session, user_id=user_id, event_id=event.id,
                                         quantities={event.tiers[0].id: 1}, admission_id=entry_id)
        session.commit()
        checkout.pay(session, gateway, hold_id=hold.id, user_id=user_id, idempotency_key=f"k{user_id}", card=GOOD)
    admit(session, event.id)
    assert session.get(WaitingRoom, event.id).sold_out
    poll = call(client, "get", f"/events/{event.id}/waiting-room/status", headers=HX)
    body = poll.get_data(as_text=True)
    assert "Sold out" in body and f"/events/{event.id}/waitlist" in body
    # Told; asking the room's shared state now and then whether the room moves again.
    assert 'data-poll-seconds="30"' in body and f'data-now-url="/events/{event.id}/waiting-room/now.json"' in body
    assert_consistent(session, event.id)


def test_two_app_instances_share_one_waiting_room(app, database_url, session, factory):
    other = create_app({"SQLALCHEMY_DATABASE_URI": database_url}, config_class=TestConfig)
    event = factory.ga_event(capacity=20)
    room(session, event, cap=3)
    clients = []
    for i, user in enumerate(factory.users(6)):
        instance = app if i % 2 == 0 else other
        clients.append((instance, instance.test_client(), user.id))
    for instance, c, user_id in clients:
        with instance.app_context():
            forget_user()
            sign_in(c, user_id)
            join_over_http(c, event.id)
    assert session.scalar(text("SELECT count(*) FROM waiting_room_entries")) == 6
    start_sale(session, event.id)

    def one_pass(i):
        instance = (app, other)[i % 2]
        with instance.app_context():
            admitted = waiting_room.admit(db.session, event.id).admitted
            db.session.commit()
            db.session.remove()
            return len(admitted)

    assert sum(race(app, 4, one_pass)) == 3
    # Each instance's pages agree on who is in and where the rest stand.
    turns, spots = [], []
    for instance, c, _ in clients:
        with instance.app_context():
            forget_user()
            body = c.get(f"/events/{event.id}/waiting-room").get_data(as_text=True)
            turns.append("It is your turn" in body)
            if not turns[-1]:
                found = re.search(r'id="waiting-room-position-number">(\d+)<', body)
                spots.append(int(found.group(1)) if found else 1 if "You are next" in body else 0)
    assert sum(turns) == 3
    assert sorted(spots) == [1, 2, 3]
    with other.app_context():
        db.engine.dispose()



def test_admin_turns_the_room_on_watches_it_pauses_and_opens_the_gate(client, app, session, factory):
    from tests.support import admin_client

    event = factory.ga_event(capacity=20)
    admin, _, token = admin_client(client, factory)
    page = call(admin, "get", f"/admin/events/{event.id}/waiting-room")
    assert page.status_code == 200 and "Sale starts" in page.get_data(as_text=True)
    bad = call(admin, "post", f"/admin/events/{event.id}/waiting-room",
               data={"enabled": "1", "sale_starts_at": "2030-01-01T10:00"}, headers={"X-CSRFToken": token})
    assert bad.status_code == 400 and "rate, a cap" in bad.get_data(as_text=True)
    saved = call(admin, "post", f"/admin/events/{event.id}/waiting-room",
                 data={"enabled": "1", "sale_starts_at": "2020-01-01T10:00", "max_shoppers": "2",
                       "pass_minutes": "10"}, headers={"X-CSRFToken": token})
    assert saved.status_code == 303
    session.expire_all()
    assert session.get(Event, event.id).waiting_room
    for u in factory.users(3):
        waiting_room.join(session, event.id, user_id=u.id)
    session.commit()
    admit(session, event.id)
    live = call(admin, "get", f"/admin/events/{event.id}/waiting-room/live", headers=HX).get_data(as_text=True)
    assert 'data-stat="waiting">1<' in live and 'data-stat="shopping">2<' in live
    paused = call(admin, "post", f"/admin/events/{event.id}/waiting-room/control", data={"action": "pause"},
                  headers={**HX, "X-CSRFToken": token})
    assert paused.status_code == 200 and "Resume admission" in paused.get_data(as_text=True)
    rate = call(admin, "post", f"/admin/events/{event.id}/waiting-room/control",
                data={"action": "rate", "admit_per_minute": "abc"}, headers={**HX, "X-CSRFToken": token})
    assert rate.status_code == 400
    call(admin, "post", f"/admin/events/{event.id}/waiting-room/control", data={"action": "open_gate"},
         headers={**HX, "X-CSRFToken": token})
    session.expire_all()
    assert not session.get(Event, event.id).waiting_room
    # The gate is open: anyone may reserve, pass or not.
    shopper = app.test_client()
    buyer(shopper, factory)
    assert reserve_one(shopper, session.get(Event, event.id)).status_code == 204
    actions = session.scalars(text("SELECT action FROM audit_log ORDER BY id")).all()
    assert actions == ["waiting_room.configure", "waiting_room.pause", "waiting_room.open_gate"]


def test_the_sweep_runs_the_admission_pass(app, session, factory):
    from webapp.cli import sweep_once

    event = factory.ga_event(capacity=20)
    room(session, event, cap=2)
    ids = [waiting_room.join(session, event.id, user_id=u.id) for u in factory.users(3)]
    session.commit()
    start_sale(session, event.id)
    sweep_once()
    assert sorted(status_of(session, i) for i in ids) == ["admitted", "admitted", "waiting"]


def test_a_second_device_finds_the_place_by_account(client, app, session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event)
    user = buyer(client, factory)
    join_over_http(client, event.id)
    other_device = app.test_client()
    forget_user()
    sign_in(other_device, user.id)
    body = call(other_device, "get", f"/events/{event.id}/waiting-room").get_data(as_text=True)
    assert "You are in the waiting room" in body
    assert session.scalar(text("SELECT count(*) FROM waiting_room_entries")) == 1


def test_an_unchanged_poll_is_one_statement_and_a_changed_one_two(client, session, factory):
    # The crowd's hot path: the room's row for the ETag, then the place and the count ahead only if it changed.
    from sqlalchemy import event as sa_event

    event = factory.ga_event(capacity=20)
    room(session, event, cap=1)
    join_over_http(client, event.id)
    start_sale(session, event.id)
    waiting_room.control(session, session.get(Event, event.id), paused=True)
    session.commit()
    admit(session, event.id)  # a pass just ran: the polls below have none to run
    url = f"/events/{event.id}/waiting-room/status"
    tag = call(client, "get", url, headers=HX).headers["ETag"]
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    with client.application.app_context():
        sa_event.listen(db.engine, "before_cursor_execute", record)
        try:
            unchanged = call(client, "get", url, headers={**HX, "If-None-Match": tag})
            unchanged_statements = len(seen)
            changed = call(client, "get", url, headers={**HX, "If-None-Match": 'W/"stale"'})
        finally:
            sa_event.remove(db.engine, "before_cursor_execute", record)
    assert unchanged.status_code == 304 and unchanged_statements == 1
    assert changed.status_code == 200 and len(seen) - unchanged_statements == 2


@pytest.mark.parametrize("old, new", [
    ("/line", "/waiting-room"),
    ("/line?utm_source=mail", "/waiting-room?utm_source=mail"),
    ("/line/status", "/waiting-room/status"),
])
def test_the_old_line_urls_redirect_for_good_to_the_waiting_room(client, session, factory, old, new):
    event = factory.ga_event(capacity=20)
    room(session, event)
    response = call(client, "get", f"/events/{event.id}{old}")
    assert response.status_code == 308 and response.headers["Location"].endswith(f"/events/{event.id}{new}")


def test_a_join_posted_to_the_old_url_keeps_its_method_through_the_redirect(client, session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event)
    response = call(client, "post", f"/events/{event.id}/line/join", headers={"X-CSRFToken": token_of(client)},
                    follow_redirects=True)
    assert response.request.path == f"/events/{event.id}/waiting-room"
    assert "You are in the waiting room" in response.get_data(as_text=True)
    assert session.scalar(text("SELECT count(*) FROM waiting_room_entries")) == 1


@pytest.mark.parametrize("partial", ["shop/_waiting_room_status.html", "shop/_waiting_room_join_form.html",
                                     "shop/_waiting_room_leave_form.html", "shop/_waiting_room_required.html",
                                     "admin/_waiting_room_live.html"])
def test_each_partial_of_the_room_is_the_element_named_after_it(app, partial):
    # `_x_y.html` renders (and swaps) `#x-y`: the name says what it replaces.
    source = app.jinja_env.loader.get_source(app.jinja_env, partial)[0]
    element_id = partial.rsplit("/", 1)[1].removeprefix("_").removesuffix(".html").replace("_", "-")
    assert f'id="{element_id}"' in source
