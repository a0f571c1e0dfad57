"""The waiting room against a client that cheats: many places, the lottery, the proof of work, the limits,
the silent endless wait, and the API's reserve with a pass."""
from __future__ import annotations

import base64
import json
import re
import time

import altcha
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select, text

from config import TestConfig
from tests.support import rate_limited_client, sign_in
from tests.test_rush import redis_url  # noqa: F401 (a fixture)
from tests.test_waiting_room import (
    admit,
    buyer,
    call,
    forget_user,
    join_over_http,
    room,
    start_sale,
    take_turn,
    token_of,
)
from webapp import create_app
from webapp.extensions import db
from webapp.models import Event, Hold, WaitingRoom, WaitingRoomEntry
from webapp.services.people import api_tokens
from webapp.services.waiting import waiting_room
from webapp.services.waiting.waiting_room import screening

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
    assert refused.get_json()["type"] == "/api/docs#problem-pass-required"
    assert 'id="problem-pass-required"' in script.get("/api/docs").get_data(as_text=True)
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
    if "<strong>You are next.</strong>" in body:  # shown; the words are also in the script's data-say
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


# --- the proof of work, the limit per address, flagged clients --------------

def rules(session, event_id: int, **changes) -> None:
    """Set a room's rules against abuse directly (the admin's form is tested on its own)."""
    sets = ", ".join(f"{name} = :{name}" for name in changes)
    session.execute(text(f"UPDATE waiting_rooms SET {sets} WHERE event_id = :e"), {"e": event_id, **changes})
    session.commit()


def solved(client, event_id: int) -> str:
    """What the widget sends: the room's challenge, fetched as the browser does, solved."""
    challenge = client.get(f"/events/{event_id}/waiting-room/challenge")
    assert challenge.status_code == 200 and challenge.headers["Cache-Control"] == "no-store"
    issued = altcha.Challenge.from_dict(challenge.get_json())
    return altcha.Payload(issued, altcha.solve_challenge(issued, timeout=30)).to_base64()


def join_with(client, event_id: int, payload: str | None = None, **kw):
    forget_user()
    data = {"csrf_token": token_of(client)}
    if payload is not None:
        data["altcha"] = payload
    return client.post(f"/events/{event_id}/waiting-room/join", data=data, **kw)


def places(session) -> int:
    return session.scalar(text("SELECT count(*) FROM waiting_room_entries"))


def flags(session, event_id: int) -> dict[str, int]:
    return dict(session.execute(text("SELECT reason, sum(count)::int FROM waiting_room_flags WHERE event_id = :e"
                                     " GROUP BY reason"), {"e": event_id}).all())


@pytest.fixture
def hard_room(session, factory):
    """A room before its start whose join needs a proof of work (a low difficulty: the tests solve it in Python)."""
    event = factory.ga_event(capacity=20)
    room(session, event, cap=5)
    rules(session, event.id, challenge_difficulty=20)
    return session.get(Event, event.id)


def test_the_challenge_is_the_rooms_signed_and_short_lived(app, hard_room):
    body = app.test_client().get(f"/events/{hard_room.id}/waiting-room/challenge").get_json()
    parameters = body["parameters"]
    assert parameters["algorithm"] == "PBKDF2/SHA-256" and parameters["cost"] == screening.ROUNDS
    assert parameters["data"] == {"event": hard_room.id} and body["signature"]
    assert 0 < parameters["expiresAt"] - time.time() <= screening.CHALLENGE_SECONDS
    assert app.test_client().get("/events/999999/waiting-room/challenge").status_code == 404


def test_a_join_needs_its_rooms_proof_of_work_solved_once(app, session, hard_room):
    visitor = app.test_client()
    missing = join_with(visitor, hard_room.id)
    assert missing.status_code == 400 and "allow JavaScript" in missing.get_data(as_text=True)
    assert places(session) == 0
    payload = solved(visitor, hard_room.id)
    assert join_with(visitor, hard_room.id, payload).status_code == 303
    assert places(session) == 1
    # The same solution again, from another client: one solution, one place.
    replayed = join_with(app.test_client(), hard_room.id, payload)
    assert replayed.status_code == 400 and "did not pass" in replayed.get_data(as_text=True)
    assert places(session) == 1
    assert flags(session, hard_room.id) == {"failed_challenge": 1}
    assert not session.scalar(text("SELECT count(*) FROM waiting_room_spent_challenges WHERE expires_at < now()"))


def test_a_tampered_or_foreign_solution_is_a_failed_challenge(app, session, factory, hard_room):
    other = factory.ga_event(capacity=5)
    room(session, other, cap=1)
    visitor = app.test_client()
    foreign = solved(visitor, other.id)
    assert join_with(visitor, hard_room.id, foreign).status_code == 400
    genuine = json.loads(base64.b64decode(solved(visitor, hard_room.id)))
    genuine["solution"]["derivedKey"] = "00" * 32
    tampered = base64.b64encode(json.dumps(genuine).encode()).decode()
    assert join_with(visitor, hard_room.id, tampered).status_code == 400
    lifted = json.loads(base64.b64decode(solved(visitor, hard_room.id)))
    lifted["challenge"]["parameters"]["cost"] = 1  # an easier challenge than the one signed
    assert join_with(visitor, hard_room.id, base64.b64encode(json.dumps(lifted).encode()).decode()).status_code == 400
    for garbage in ("not base64 at all!", base64.b64encode(b"[1, 2]").decode(), "x" * 5000):
        assert join_with(visitor, hard_room.id, garbage).status_code == 400
    assert places(session) == 0
    assert flags(session, hard_room.id) == {"failed_challenge": 6}


def test_a_challenge_that_ran_out_is_refused_but_not_flagged(app, session, hard_room):
    with app.test_request_context():
        stale = altcha.create_challenge(screening.ALGORITHM, screening.ROUNDS, counter=3,
                                        expires_at=int(time.time()) - 1, data={"event": hard_room.id},
                                        hmac_secret=screening._key("challenge"),
                                        hmac_key_secret=screening._key("challenge key"))
    payload = altcha.Payload(stale, altcha.solve_challenge(stale)).to_base64()
    answer = join_with(app.test_client(), hard_room.id, payload)
    assert answer.status_code == 400 and "ran out" in answer.get_data(as_text=True)
    assert places(session) == 0 and flags(session, hard_room.id) == {}


def test_a_solution_is_checked_without_the_database(app, hard_room):
    payload = solved(app.test_client(), hard_room.id)
    # Read before listening: the request above committed, so the fixture's row would reload on access.
    event_id = hard_room.id
    seen: list[str] = []

    def record(conn, cursor, statement, *rest):
        seen.append(statement)

    with app.test_request_context():
        sa_event.listen(db.engine, "before_cursor_execute", record)
        try:
            assert screening._solution(payload, event_id).salt
            assert screening._solution(payload[:-8] + "AAAAAAA=", event_id) is None
        finally:
            sa_event.remove(db.engine, "before_cursor_execute", record)
    assert seen == []


def test_spent_solutions_go_to_redis_when_it_is_configured(database_url, redis_url):  # noqa: F811
    import redis

    instance = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "RATELIMIT_STORAGE_URI": redis_url},
                          config_class=TestConfig)
    with instance.app_context():
        solved_once = screening._Solved("c0ffee" * 5, int(time.time()) + 120)
        assert screening._spend(solved_once) is True
        assert screening._spend(solved_once) is False
        db.engine.dispose()
    ttl = redis.Redis.from_url(redis_url).ttl(f"waiting-room:spent:{solved_once.salt}")
    assert 100 <= ttl <= 120


def test_the_sweep_forgets_spent_solutions_once_their_challenge_ended(app, session):
    from webapp.cli import sweep_once

    session.execute(text("INSERT INTO waiting_room_spent_challenges VALUES ('old', now() - interval '1 second'),"
                         " ('live', now() + interval '1 minute')"))
    session.commit()
    with app.app_context():
        sweep_once()
    assert session.scalars(text("SELECT salt FROM waiting_room_spent_challenges")).all() == ["live"]


def test_places_per_address_per_minute(database_url, session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event, cap=5)
    rules(session, event.id, places_per_address=3)
    with rate_limited_client(database_url) as first:
        name = f"tb_place_{event.id}"
        for _ in range(3):
            first.delete_cookie(name)
            assert join_with(first, event.id).status_code == 303
        first.delete_cookie(name)
        refused = join_with(first, event.id)
        assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
        assert "from your network" in refused.get_data(as_text=True)
        elsewhere = first.application.test_client()
        assert join_with(elsewhere, event.id, environ_base={"REMOTE_ADDR": "127.0.0.9"}).status_code == 303
    assert places(session) == 4
    assert flags(session, event.id) == {"over_limit": 1}


def test_a_forged_place_cookie_is_refused_and_cleared(app, session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event, cap=5)
    visitor = app.test_client()
    visitor.set_cookie(f"tb_place_{event.id}", "eyJuIjoxLCJ0IjoieCJ9.forged-signature")
    refused = join_with(visitor, event.id)
    assert refused.status_code == 400 and "was not valid" in refused.get_data(as_text=True)
    assert visitor.get_cookie(f"tb_place_{event.id}") is None
    assert join_with(visitor, event.id).status_code == 303  # cleared: the next try starts clean
    assert flags(session, event.id) == {"forged_cookie": 1}


def test_a_flagged_client_waits_without_end_when_the_organiser_chooses(database_url, session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event, starts_in=-1, cap=2)
    rules(session, event.id, places_per_address=1, flagged_wait_forever=True)
    with rate_limited_client(database_url) as bot:
        name = f"tb_place_{event.id}"
        assert join_with(bot, event.id).status_code == 303
        real_cookie = bot.get_cookie(name).value
        bot.delete_cookie(name)
        flagged = join_with(bot, event.id)
        # Answered as a join: the same redirect, a place cookie of the same shape.
        assert flagged.status_code == 303 and flagged.headers["Location"].endswith(f"/events/{event.id}/waiting-room")
        endless_cookie = bot.get_cookie(name).value
        shape = json.loads(base64.urlsafe_b64decode(endless_cookie.split(".")[0] + "=="))
        real_shape = json.loads(base64.urlsafe_b64decode(real_cookie.split(".")[0] + "=="))
        assert shape.keys() == real_shape.keys() and len(shape["t"]) == len(real_shape["t"]) == 32
        assert shape["n"] > real_shape["n"]
        assert places(session) == 1  # the endless wait has no row: the pass cannot admit it

        others = factory.users(5)
        for u in others:
            waiting_room.join(session, event.id, user_id=u.id)
        session.commit()
        seen = []
        for _ in range(8):
            admit(session, event.id)
            session.execute(text("UPDATE waiting_room_entries SET status = 'done' WHERE status = 'admitted'"))
            session.commit()
            body = bot.get(f"/events/{event.id}/waiting-room").get_data(as_text=True)
            poll = bot.get(f"/events/{event.id}/waiting-room/status", headers=HX).get_data(as_text=True)
            for page in (body, poll):
                assert "It is your turn" not in page and "<strong>You are next.</strong>" not in page \
                    and "Log in to continue" not in page
                seen.append(int(re.search(r'id="waiting-room-position-number">(\d+)<', page).group(1)))
                assert "data-number" not in page and 'hx-get="/events/' in page
            assert bot.get_cookie(waiting_room.pass_cookie_name(event.id)) is None
        # Everyone real was let in; the flagged client still waits, a few places back.
        assert session.scalar(text("SELECT count(*) FROM waiting_room_entries WHERE status = 'waiting'")) == 0
        assert all(spot >= 2 for spot in seen)
        # Leaving forgets it; a new join is screened again (and is still over the limit).
        bot.post(f"/events/{event.id}/waiting-room/leave", data={"csrf_token": token_of(bot)})
        assert bot.get_cookie(name) is None
    assert flags(session, event.id) == {"over_limit": 1, "endless": 1}


def test_a_forged_cookie_or_failed_challenge_waits_without_end_too(app, session, hard_room):
    rules(session, hard_room.id, flagged_wait_forever=True)
    visitor = app.test_client()
    visitor.set_cookie(f"tb_place_{hard_room.id}", "forged")
    assert join_with(visitor, hard_room.id).status_code == 303
    with app.test_request_context():
        assert screening.is_endless(waiting_room.read_place(visitor.get_cookie(f"tb_place_{hard_room.id}").value))
    other = app.test_client()
    assert join_with(other, hard_room.id, "bm90IGEgc29sdXRpb24=").status_code == 303
    assert places(session) == 0
    # Pressing join again from the endless wait changes nothing and counts nothing more.
    assert join_with(other, hard_room.id, "bm90IGEgc29sdXRpb24=").status_code == 303
    assert flags(session, hard_room.id) == {"forged_cookie": 1, "failed_challenge": 1, "endless": 2}
    page = call(other, "get", f"/events/{hard_room.id}/waiting-room").get_data(as_text=True)
    assert "You are in the waiting room" in page


def test_the_admin_sets_the_rules_per_room_and_reads_the_figures(client, session, factory):
    from tests.support import admin_client

    event = factory.ga_event(capacity=20)
    admin, _, token = admin_client(client, factory)
    page = call(admin, "get", f"/admin/events/{event.id}/waiting-room").get_data(as_text=True)
    # A room set up for the first time is proposed a proof of work and a limit per address.
    proposed = re.sub(r"\s+", " ", page)
    assert (f'name="challenge_difficulty" aria-describedby="waiting-room-challenge-hint"'
            f' value="{waiting_room.PROPOSED_CHALLENGE_DIFFICULTY}"') in proposed
    assert f'name="places_per_address" value="{waiting_room.PROPOSED_PLACES_PER_ADDRESS}"' in proposed
    form = {"enabled": "1", "sale_starts_at": "2030-01-01T10:00", "max_shoppers": "2", "pass_minutes": "10"}
    for bad, words in (({"challenge_difficulty": "-1"}, "from 0 (none) to 1,000,000"),
                       ({"challenge_difficulty": "2000000"}, "from 0 (none) to 1,000,000"),
                       ({"places_per_address": "0"}, "between 1 and 10,000"),
                       ({"places_per_address": "20000"}, "between 1 and 10,000")):
        refused = call(admin, "post", f"/admin/events/{event.id}/waiting-room", data={**form, **bad},
                       headers={"X-CSRFToken": token})
        assert refused.status_code == 400 and words in refused.get_data(as_text=True)
    saved = call(admin, "post", f"/admin/events/{event.id}/waiting-room",
                 data={**form, "challenge_difficulty": "5000", "places_per_address": "4", "flagged_wait_forever": "1"},
                 headers={"X-CSRFToken": token})
    assert saved.status_code == 303
    session.expire_all()
    made = session.get(WaitingRoom, event.id)
    assert (made.challenge_difficulty, made.places_per_address, made.flagged_wait_forever) == (5000, 4, True)
    audit = session.scalars(text("SELECT after FROM audit_log WHERE action = 'waiting_room.configure'")).one()
    assert audit["challenge_difficulty"] == 5000 and audit["flagged_wait_forever"] is True

    session.execute(text("INSERT INTO waiting_room_flags VALUES (:e, 'over_limit', 0, 7), (:e, 'over_limit', 3, 5),"
                         " (:e, 'failed_challenge', 1, 2), (:e, 'forged_cookie', 2, 1), (:e, 'endless', 5, 15)"),
                    {"e": event.id})
    session.commit()
    live = call(admin, "get", f"/admin/events/{event.id}/waiting-room/live", headers=HX).get_data(as_text=True)
    assert 'data-stat="over-limit">12<' in live and 'data-stat="failed-challenge">2<' in live
    assert 'data-stat="flagged">15<' in live and "15 in the endless wait" in live
    assert "4 per address per minute" in live and "5,000 tries at most" in live
    # Turned off again: empty fields are no proof of work and no limit.
    call(admin, "post", f"/admin/events/{event.id}/waiting-room",
         data={**form, "challenge_difficulty": "", "places_per_address": ""}, headers={"X-CSRFToken": token})
    session.expire_all()
    made = session.get(WaitingRoom, event.id)
    assert (made.challenge_difficulty, made.places_per_address, made.flagged_wait_forever) == (0, None, False)


def test_a_join_posted_with_htmx_answers_in_place_for_a_place_and_for_the_endless_wait_alike(app, session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event, starts_in=-1, cap=1)
    waiting_room.control(session, session.get(Event, event.id), paused=True)
    session.commit()
    for u in factory.users(3):
        waiting_room.join(session, event.id, user_id=u.id)
    session.commit()
    admit(session, event.id)
    real = join_with(app.test_client(), event.id, headers=HX)
    rules(session, event.id, flagged_wait_forever=True)
    flagged = app.test_client()
    flagged.set_cookie(f"tb_place_{event.id}", "forged")
    endless = join_with(flagged, event.id, headers=HX)
    for answer in (real, endless):
        body = answer.get_data(as_text=True)
        assert answer.status_code == 200 and body.startswith("<section id=\"waiting-room-status\"")
        assert "tb_place_" in answer.headers["Set-Cookie"] and "Take a place" not in body
    assert places(session) == 4  # the three accounts and the real visitor: none for the endless wait
    assert "You are number" in endless.get_data(as_text=True)
