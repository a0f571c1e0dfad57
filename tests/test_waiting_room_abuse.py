"""The waiting room against a client that cheats: many places, the lottery, the proof of work, the limits,
the silent endless wait, and the API's reserve with a pass."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select, text

from tests.support import sign_in
from tests.test_waiting_room import admit, buyer, call, forget_user, join_over_http, room, start_sale, take_turn
from webapp.models import Event, Hold, WaitingRoomEntry
from webapp.services.people import api_tokens
from webapp.services.waiting import waiting_room

HX = {"HX-Request": "true"}


@pytest.fixture
def guarded(session, factory):
    """An event on sale behind its waiting room."""
    event = factory.ga_event(capacity=20)
    room(session, event, cap=5)
    start_sale(session, event.id)
    return session.get(Event, event.id)


def api_reserve(client, event, secret: str, **headers: str):
    return client.post(f"/api/v1/events/{event.id}/holds", json={"quantities": [{"tier_id": event.tiers[0].id,
                                                                                  "quantity": 1}]},
                       headers={"Authorization": f"Bearer {secret}", **headers})


def test_the_api_reserves_for_an_admitted_buyer_with_their_pass(client, app, session, factory, guarded):
    user = buyer(client, factory)
    join_over_http(client, guarded.id)
    admit(session, guarded.id)
    room_pass = take_turn(client, guarded.id)
    secret = api_tokens.create(session, user_id=user.id, is_admin=False, name="script", scope="buyer").secret
    session.commit()
    script = app.test_client()

    refused = api_reserve(script, guarded, secret)
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    assert "waiting room" in refused.get_json()["detail"]
    forged = api_reserve(script, guarded, secret, **{"Waiting-Room-Pass": room_pass[:-3] + "xyz"})
    assert forged.status_code == 403 and "not valid" in forged.get_json()["detail"]
    assert session.scalar(text("SELECT count(*) FROM holds")) == 0

    made = api_reserve(script, guarded, secret, **{"Waiting-Room-Pass": room_pass})
    assert made.status_code == 201, made.get_json()
    assert session.scalars(select(Hold).where(Hold.user_id == user.id)).one().id == made.get_json()["id"]
    # The pass's cookie works as the header does (a client that keeps the page's cookies).
    script.set_cookie(waiting_room.pass_cookie_name(guarded.id), room_pass)
    assert api_reserve(script, guarded, secret).status_code == 201


def test_another_accounts_pass_buys_nothing_through_the_api(client, app, session, factory, guarded):
    buyer(client, factory)
    join_over_http(client, guarded.id)
    admit(session, guarded.id)
    room_pass = take_turn(client, guarded.id)
    thief = factory.user()
    secret = api_tokens.create(session, user_id=thief.id, is_admin=False, name="script", scope="buyer").secret
    session.commit()
    refused = api_reserve(app.test_client(), guarded, secret, **{"Waiting-Room-Pass": room_pass})
    assert refused.status_code == 403 and "another account" in refused.get_json()["detail"]
    assert session.scalar(text("SELECT count(*) FROM holds")) == 0


def test_the_api_document_names_the_pass_header(client):
    document = client.get("/api/openapi.json").get_json()
    reserve = document["paths"]["/api/v1/events/{event_id}/holds"]["post"]
    header = next(p for p in reserve["parameters"] if p["in"] == "header")
    assert header["name"] == "Waiting-Room-Pass" and "403" in reserve["responses"]


# --- one ticket in the draw per person, not per cookie ----------------------

def position_on_page(client, event_id: int) -> int:
    """The position the waiting room page shows this client (1 is next)."""
    body = call(client, "get", f"/events/{event_id}/waiting-room").get_data(as_text=True)
    if "You are next" in body:
        return 1
    return int(re.search(r'id="waiting-room-position-number">(\d+)<', body).group(1))


def anonymous_places(client, event_id: int, n: int) -> list[str]:
    """`n` anonymous places taken one after the other by one client, forgetting each cookie: their cookies."""
    name = waiting_room.place_cookie_name(event_id)
    cookies = []
    for _ in range(n):
        client.delete_cookie(name)
        join_over_http(client, event_id)
        cookies.append(client.get_cookie(name).value)
    client.delete_cookie(name)
    return cookies


def key_of(session, entry_id: int) -> int:
    session.expire_all()
    return session.get(WaitingRoomEntry, entry_id).line_key


def test_150_anonymous_places_then_the_best_cookie_buy_no_better_place_than_joining_once(app, session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event, cap=1)
    honest = factory.users(20)
    for u in honest:
        waiting_room.join(session, event.id, user_id=u.id)
    session.commit()
    attacker = app.test_client()
    cookies = anonymous_places(attacker, event.id, 150)
    assert session.scalar(text("SELECT count(*) FROM waiting_room_entries WHERE user_id IS NULL")) == 150
    # The whole draw is the accounts': the anonymous places are in arrival order behind it.
    waiting_room.control(session, session.get(Event, event.id), paused=True)
    session.commit()
    start_sale(session, event.id)
    admit(session, event.id)  # the pass numbers the places: the draw first, then the arrivals
    spots = []
    for cookie in cookies:
        attacker.set_cookie(waiting_room.place_cookie_name(event.id), cookie)
        spots.append(position_on_page(attacker, event.id))
    assert spots == list(range(21, 171))
    best = cookies[spots.index(min(spots))]
    assert best == cookies[0]  # the luckiest of 150 is simply the first: what joining once then gives

    # The attacker's account logs in holding the best cookie: place 21, behind every account of the draw,
    # where one anonymous join at that moment would stand; one join with the account before the start
    # would have been a draw among 21 (place 11 in expectation).
    account = factory.user()
    attacker.set_cookie(waiting_room.place_cookie_name(event.id), best)
    forget_user()
    sign_in(attacker, account.id)
    assert position_on_page(attacker, event.id) == 21
    mine = session.scalars(select(WaitingRoomEntry).where(WaitingRoomEntry.user_id == account.id)).one()
    # ...and a second cookie, logged in with later, changes nothing: the account keeps its place.
    attacker.set_cookie(waiting_room.place_cookie_name(event.id), cookies[1])
    assert position_on_page(attacker, event.id) == 21
    assert session.scalars(select(WaitingRoomEntry.id).where(WaitingRoomEntry.user_id == account.id)).all() == [
        mine.id]


def test_logging_in_before_the_start_draws_once_for_the_account_whatever_the_cookie(app, session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event, cap=1)
    attacker = app.test_client()
    cookies = anonymous_places(attacker, event.id, 5)
    anonymous = dict(session.execute(select(WaitingRoomEntry.anon_token, WaitingRoomEntry.line_key)).all())
    assert all(key > 0 for key in anonymous.values())  # arrival times: no draw without an account
    account = factory.user()
    attacker.set_cookie(waiting_room.place_cookie_name(event.id), cookies[3])
    forget_user()
    sign_in(attacker, account.id)
    call(attacker, "get", f"/events/{event.id}/waiting-room")
    mine = session.scalars(select(WaitingRoomEntry).where(WaitingRoomEntry.user_id == account.id)).one()
    drawn = mine.line_key
    assert drawn < 0 and drawn not in anonymous.values()  # a key drawn at binding, not the cookie's
    for cookie in (cookies[0], cookies[4]):
        attacker.set_cookie(waiting_room.place_cookie_name(event.id), cookie)
        call(attacker, "get", f"/events/{event.id}/waiting-room")
        assert key_of(session, mine.id) == drawn
    # The places of the cookies it logged in with are given up: one place per person.
    statuses = dict(session.execute(select(WaitingRoomEntry.id, WaitingRoomEntry.status)).all())
    assert statuses[mine.id] == "waiting"
    assert sorted(statuses.values()).count("left") == 2


def test_an_account_with_a_place_keeps_it_over_an_earlier_anonymous_one(app, session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event, starts_in=-1, cap=1)
    waiting_room.control(session, session.get(Event, event.id), paused=True)
    session.commit()
    visitor = app.test_client()
    early = anonymous_places(visitor, event.id, 1)[0]
    account = factory.user()
    own = waiting_room.join(session, event.id, user_id=account.id)
    session.commit()
    admit(session, event.id)
    visitor.set_cookie(waiting_room.place_cookie_name(event.id), early)
    forget_user()
    sign_in(visitor, account.id)
    assert position_on_page(visitor, event.id) == 1  # the anonymous place ahead was given up
    session.expire_all()
    assert session.scalars(select(WaitingRoomEntry.id).where(WaitingRoomEntry.status != "left")).all() == [own]
