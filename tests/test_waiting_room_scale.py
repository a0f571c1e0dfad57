"""The waiting room at scale: numbers and marks instead of counts, the bound on a position, the shared now.json.

A position is arithmetic on a place's number and the room's marks; these
tests hold the engine to the marks (exact, whatever leaves), the estimate
to its stated bound (never more than the leavers ahead too far back, nor
the leavers behind too near; exact for the first number waiting), admission
to number order with 100,000 places, and now.json to being answered from
memory, with no database and nothing personal, cacheable by anyone.
"""
from __future__ import annotations

import random
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select, text

from config import TestConfig
from tests.support import GOOD, reserve_general, sign_in
from webapp import create_app
from webapp.extensions import db
from webapp.models import WaitingRoom, WaitingRoomEntry
from webapp.services.waiting import waiting_room

HX = {"HX-Request": "true"}


def room(session, event, *, starts_in: float = 3600, rate: int | None = None, cap: int | None = 5) -> None:
    waiting_room.configure(session, event, enabled=True,
                           sale_starts_at=datetime.now(timezone.utc) + timedelta(seconds=starts_in),
                           admit_per_minute=rate, max_shoppers=cap)
    session.commit()


def start_sale(session, event_id: int) -> None:
    session.execute(text("UPDATE waiting_rooms SET sale_starts_at = now() - interval '1 second'"
                         " WHERE event_id = :e"), {"e": event_id})
    session.commit()


def admit(session, event_id: int) -> waiting_room.PassResult:
    result = waiting_room.admit(session, event_id)
    session.commit()
    return result


def fill(session, event_id: int, n: int) -> None:
    """N anonymous places in one statement, each with a draw as a join before the start makes it."""
    session.execute(text("""
        INSERT INTO waiting_room_entries (event_id, anon_token, line_key)
        SELECT :e, 'fill-' || g, -1 - ('x' || substr(md5(gen_random_uuid()::text), 1, 15))::bit(60)::bigint
        FROM generate_series(1, :n) AS g"""), {"e": event_id, "n": n})
    session.commit()


def marks(session, event_id: int) -> WaitingRoom:
    session.expire_all()
    return session.get(WaitingRoom, event_id)


def waiting_numbers(session, event_id: int) -> list[int]:
    return list(session.scalars(text("SELECT number FROM waiting_room_entries WHERE event_id = :e"
                                     " AND status = 'waiting' AND number IS NOT NULL ORDER BY number"),
                                {"e": event_id}))


def check_marks_and_bound(session, event_id: int) -> None:
    """The marks are exact, and every waiting number's estimate is within its bound (exact for the first)."""
    r = marks(session, event_id)
    waiting = waiting_numbers(session, event_id)
    assert r.issued - r.served - r.left_count == len(waiting)
    assert all(n > r.served for n in waiting)
    if waiting:
        assert waiting[0] == r.served + 1 or r.left_count > 0
    waiting_set = set(waiting)
    for position, number in enumerate(waiting, start=1):
        leavers_ahead = sum(1 for k in range(r.served + 1, number) if k not in waiting_set)
        leavers_behind = r.left_count - leavers_ahead
        estimate = waiting_room.estimate_position(number, served=r.served, issued=r.issued, left=r.left_count)
        assert position - leavers_behind <= estimate <= position + leavers_ahead
        if number == r.served + 1 or r.left_count == 0:
            assert estimate == position


def test_a_hundred_thousand_places_are_numbered_by_the_draw_and_admitted_in_number_order(session, factory):
    event = factory.ga_event(capacity=10)
    room(session, event, cap=1000)
    fill(session, event.id, 100_000)
    start_sale(session, event.id)

    first = admit(session, event.id)  # the opening: the draw becomes numbers, a batch at a time
    assert first.numbered == waiting_room.NUMBER_BATCH
    assert first.admitted and len(first.admitted) == 1000
    second = admit(session, event.id)
    assert second.numbered == 100_000 - waiting_room.NUMBER_BATCH and second.admitted == []
    # The numbers are the draw's order, dense from 1; the first thousand were let in.
    ordered = session.execute(text("SELECT number, status FROM waiting_room_entries WHERE event_id = :e"
                                   " ORDER BY line_key, id"), {"e": event.id}).all()
    assert [n for n, _ in ordered] == list(range(1, 100_001))
    assert {n for n, s in ordered if s == "admitted"} == set(range(1, 1001))
    r = marks(session, event.id)
    assert (r.served, r.issued, r.left_count) == (1000, 100_000, 0)

    # Some of those waiting leave, the thousand let in are done; the next
    # pass lets in the next thousand still waiting, in number order.
    rng = random.Random(7)
    leavers = rng.sample(range(1001, 3001), 300)
    ids = dict(session.execute(text("SELECT number, id FROM waiting_room_entries WHERE event_id = :e"
                                    " AND number = ANY(:n)"), {"e": event.id, "n": leavers}).all())
    for number in leavers:
        waiting_room.leave(session, ids[number])
        session.commit()
    assert marks(session, event.id).left_count == 300
    session.execute(text("UPDATE waiting_room_entries SET pass_until = now() - interval '1 second'"
                         " WHERE event_id = :e AND status = 'admitted'"), {"e": event.id})
    session.commit()
    third = admit(session, event.id)
    assert len(third.admitted) == 1000
    let_in = sorted(session.scalars(text("SELECT number FROM waiting_room_entries WHERE id = ANY(:ids)"),
                                    {"ids": third.admitted}))
    assert let_in == [n for n in range(1001, 100_001) if n not in set(leavers)][:1000]
    r = marks(session, event.id)
    # The mark moved over the leavers among them, up to the first number
    # still waiting; those it has not reached are still counted.
    waiting = waiting_numbers(session, event.id)
    assert r.served == waiting[0] - 1
    assert r.left_count == sum(1 for n in leavers if n > r.served)
    assert r.issued - r.served - r.left_count == len(waiting)


def test_the_marks_stay_exact_and_every_estimate_within_its_bound_whatever_leaves(session, factory):
    event = factory.ga_event(capacity=1000)
    room(session, event, cap=10)
    for u in factory.users(40):
        waiting_room.join(session, event.id, user_id=u.id)
    session.commit()
    start_sale(session, event.id)
    rng = random.Random(11)
    users = iter(factory.users(60))
    for step in range(25):
        if step % 2:
            waiting_room.join(session, event.id, user_id=next(users).id)
            session.commit()
        result = admit(session, event.id)
        for entry_id in rng.sample(result.admitted, len(result.admitted) // 2):
            waiting_room.leave(session, entry_id)  # half of those let in give their turn back
            session.commit()
        waiting = session.scalars(text("SELECT id FROM waiting_room_entries WHERE event_id = :e"
                                       " AND status = 'waiting'"), {"e": event.id}).all()
        for entry_id in rng.sample(waiting, min(len(waiting), rng.randint(0, 3))):
            waiting_room.leave(session, entry_id)
            session.commit()
        check_marks_and_bound(session, event.id)
    # Leaving and coming back after the start is a new number at the back.
    gone = session.scalars(text("SELECT user_id FROM waiting_room_entries WHERE event_id = :e AND status = 'left'"
                                " AND user_id IS NOT NULL LIMIT 1"), {"e": event.id}).first()
    entry_id = waiting_room.join(session, event.id, user_id=gone)
    session.commit()
    admit(session, event.id)
    number = session.scalar(text("SELECT number FROM waiting_room_entries WHERE id = :i"), {"i": entry_id})
    assert number == marks(session, event.id).issued
    check_marks_and_bound(session, event.id)


def test_a_visitor_who_logs_in_keeps_the_accounts_place_and_the_other_counts_as_left(client, app, session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event, cap=1)
    user = factory.user()
    mine = waiting_room.join(session, event.id, user_id=user.id)
    anon = waiting_room.join(session, event.id, anon_token="visitor-token")
    others = [waiting_room.join(session, event.id, user_id=u.id) for u in factory.users(3)]
    session.commit()
    start_sale(session, event.id)
    session.execute(text("UPDATE waiting_rooms SET paused = true WHERE event_id = :e"), {"e": event.id})
    session.commit()
    admit(session, event.id)
    numbers = dict(session.execute(text("SELECT id, number FROM waiting_room_entries")).all())
    kept = waiting_room.claim(session, event.id, anon_token="visitor-token", user_id=user.id)
    session.commit()
    # The account's own place, whichever number is better (one ticket in the draw per person).
    assert kept == mine and numbers[mine] < numbers[anon]
    assert marks(session, event.id).left_count == 1
    assert len(others) == 3
    check_marks_and_bound(session, event.id)


def test_the_measured_rate_and_conversion_are_kept_on_the_room_row(session, factory, gateway):
    event = factory.ga_event(capacity=50)
    room(session, event, rate=600, cap=None)  # ten a second
    for u in factory.users(80):
        waiting_room.join(session, event.id, user_id=u.id)
    session.commit()
    start_sale(session, event.id)
    admit(session, event.id)  # the opening: its burst is not a measurement
    assert marks(session, event.id).admit_rate is None
    session.execute(text("UPDATE waiting_rooms SET credited_at = now() - interval '3 seconds',"
                         " rated_at = now() - interval '3 seconds' WHERE event_id = :e"), {"e": event.id})
    session.commit()
    admit(session, event.id)
    r = marks(session, event.id)
    # Started from the rules' 600/min, moved toward the 30 let in over 3 s (600/min too).
    assert r.admit_rate == pytest.approx(600, rel=0.05)
    # Of those let in, one buys and the rest run out of time: the conversion says so.
    from webapp.services.money import checkout

    entry = session.execute(text("SELECT id, user_id FROM waiting_room_entries WHERE status = 'admitted'"
                                 " ORDER BY number LIMIT 1")).one()
    hold = reserve_general(session, user_id=entry.user_id, event_id=event.id,
                                     quantities={event.tiers[0].id: 1}, admission_id=entry.id)
    session.commit()
    checkout.pay(session, gateway, hold_id=hold.id, user_id=entry.user_id, idempotency_key="k1", card=GOOD)
    session.execute(text("UPDATE waiting_room_entries SET pass_until = now() - interval '1 second'"
                         " WHERE status = 'admitted' AND id <> :i"), {"i": entry.id})
    session.commit()
    # Everyone let in so far finishes now; the same pass may let in more (time
    # has passed at ten a second), and those have not finished.
    admitted_so_far = marks(session, event.id).admitted_total
    finished = admit(session, event.id).retired
    assert finished == admitted_so_far
    assert marks(session, event.id).conversion == pytest.approx(1 / finished)


# ---------------------------------------------------------------------- now.json


def now_json(client, event_id: int, **headers):
    return client.get(f"/events/{event_id}/waiting-room/now.json", headers=headers)


def statements_during(app, work) -> tuple[object, list[str], int]:
    """What `work()` returns, the statements it ran and the connections it took from the pool."""
    seen: list[str] = []
    checkouts = [0]

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    def checked_out(*args):
        checkouts[0] += 1

    with app.app_context():
        sa_event.listen(db.engine, "before_cursor_execute", record)
        sa_event.listen(db.engine.pool, "checkout", checked_out)
        try:
            result = work()
        finally:
            sa_event.remove(db.engine, "before_cursor_execute", record)
            sa_event.remove(db.engine.pool, "checkout", checked_out)
    return result, seen, checkouts[0]


def test_now_json_is_public_cacheable_and_the_same_for_everyone(client, app, session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event, cap=2)
    for u in factory.users(5):
        waiting_room.join(session, event.id, user_id=u.id)
    session.commit()
    start_sale(session, event.id)
    admit(session, event.id)
    first = now_json(client, event.id)
    assert first.status_code == 200 and first.mimetype == "application/json"
    assert first.headers["Cache-Control"] == "public, max-age=1"
    assert first.json["state"] == "admitting"
    assert (first.json["served"], first.json["issued"], first.json["left"], first.json["waiting"]) == (2, 5, 0, 3)
    assert "Set-Cookie" not in first.headers and "Vary" not in first.headers
    assert first.headers["X-Content-Type-Options"] == "nosniff"
    # A signed-in buyer with a session and place cookies gets the same bytes, and sets nothing.
    buyer_client = app.test_client()
    sign_in(buyer_client, factory.user().id)
    other = now_json(buyer_client, event.id)
    assert other.data == first.data and other.headers["ETag"] == first.headers["ETag"]
    assert "Set-Cookie" not in other.headers and "Vary" not in other.headers
    assert now_json(client, event.id, **{"If-None-Match": first.headers["ETag"]}).status_code == 304


def test_a_fresh_now_json_takes_no_database_connection_and_a_stale_one_one_statement(client, app, session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event, cap=2)
    start_sale(session, event.id)
    admit(session, event.id)  # a pass just ran: the refresh below has none to run
    now_json(client, event.id)
    answer, seen, checkouts = statements_during(app, lambda: now_json(client, event.id))
    assert answer.status_code == 200 and seen == [] and checkouts == 0
    app.extensions["waiting_room_now"].forget()
    answer, seen, checkouts = statements_during(app, lambda: now_json(client, event.id))
    assert answer.status_code == 200 and len(seen) == 1 and checkouts == 1


def test_now_json_runs_the_admission_pass_when_none_ran_for_a_while(client, app, session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event, cap=2)
    ids = [waiting_room.join(session, event.id, user_id=u.id) for u in factory.users(3)]
    session.commit()
    start_sale(session, event.id)
    # No sweep: the shared state's refresh runs the pass that opens the room.
    answer = now_json(client, event.id)
    assert answer.json["served"] == 2 and answer.json["issued"] == 3
    statuses = session.scalars(text("SELECT status FROM waiting_room_entries WHERE id = ANY(:i) ORDER BY number"),
                               {"i": ids}).all()
    assert statuses == ["admitted", "admitted", "waiting"]


@pytest.mark.parametrize("draft", [False, True])
def test_now_json_of_no_room_is_a_404(client, session, factory, draft):
    event = factory.ga_event(capacity=20)
    if draft:
        room(session, event)
        session.execute(text("UPDATE events SET status = 'draft' WHERE id = :e"), {"e": event.id})
        session.commit()
    assert now_json(client, event.id).status_code == 404
    assert client.get("/events/99999999999/waiting-room/now.json").status_code == 404


def test_now_json_before_the_start_says_when_the_order_is_drawn(client, session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event, starts_in=600)
    answer = now_json(client, event.id).json
    starts = session.get(WaitingRoom, event.id).sale_starts_at
    assert answer["state"] == "before" and answer["starts_at"] == starts.isoformat(timespec="seconds")


def test_now_json_without_a_database_is_a_503_with_retry_after(database_url):
    nowhere = "postgresql+psycopg2://tickets@127.0.0.1:9/none"
    down = create_app({"SQLALCHEMY_DATABASE_URI": nowhere}, config_class=TestConfig)
    answer = down.test_client().get("/events/1/waiting-room/now.json")
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "2"
    assert answer.headers["Cache-Control"] == "no-store"
    with down.app_context():
        db.engine.dispose()


def test_the_page_draws_the_number_and_the_place_cookie_carries_it(client, session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event, cap=1)
    for u in factory.users(3):
        waiting_room.join(session, event.id, user_id=u.id)
    session.commit()
    user = factory.user()
    sign_in(client, user.id)
    entry_id = waiting_room.join(session, event.id, user_id=user.id)
    session.commit()
    start_sale(session, event.id)
    session.execute(text("UPDATE waiting_rooms SET paused = true WHERE event_id = :e"), {"e": event.id})
    session.commit()
    admit(session, event.id)
    number = session.scalar(text("SELECT number FROM waiting_room_entries WHERE id = :i"), {"i": entry_id})
    body = client.get(f"/events/{event.id}/waiting-room").get_data(as_text=True)
    assert f'data-number="{number}"' in body and f"/events/{event.id}/waiting-room/now.json" in body
    with client.application.test_request_context():
        place = waiting_room.read_place(client.get_cookie(waiting_room.place_cookie_name(event.id)).value)
    assert place == waiting_room.Place(entry_id, "", number)


def test_the_admin_panel_shows_the_size_pace_conversion_and_wait_at_the_back(client, session, factory):
    from tests.support import admin_client

    event = factory.ga_event(capacity=20)
    room(session, event, rate=60, cap=None)
    for u in factory.users(4):
        waiting_room.join(session, event.id, user_id=u.id)
    session.commit()
    start_sale(session, event.id)
    admit(session, event.id)
    session.execute(text("UPDATE waiting_rooms SET admit_rate = 120, conversion = 0.25 WHERE event_id = :e"),
                    {"e": event.id})
    session.commit()
    fill(session, event.id, 1000)  # arrived, not yet numbered: counted all the same
    admin, _, _ = admin_client(client, factory)
    live = admin.get(f"/admin/events/{event.id}/waiting-room/live", headers=HX).get_data(as_text=True)
    waiting = 4 - marks(session, event.id).served + 1000
    assert f'data-stat="waiting">{waiting:,}<' in live
    assert 'data-stat="rate">120<' in live and 'data-stat="conversion">25%<' in live
    assert f'data-stat="wait">{-(-waiting // 120)} min<' in live


def test_a_page_asking_for_its_turn_never_runs_the_crowds_admission_pass(client, session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event, cap=5)
    for u in factory.users(3):
        waiting_room.join(session, event.id, user_id=u.id)
    session.commit()
    start_sale(session, event.id)  # no pass has run since: one is due
    status_url = f"/events/{event.id}/waiting-room/status"
    # Sent to the shop's processes, the ask of a page whose number came up answers without running it...
    assert client.get(status_url + "?turn=1", headers=HX).status_code == 200
    assert marks(session, event.id).last_pass_at is None and marks(session, event.id).issued == 0
    # ...which the crowd's own ask (the room's processes) runs, as without a sweep it must.
    assert client.get(status_url, headers=HX).status_code == 200
    assert marks(session, event.id).last_pass_at is not None and marks(session, event.id).issued == 3


def test_a_pass_whose_transaction_began_first_stamps_its_admissions_after_the_pass_before_it(session, factory):
    import time

    from sqlalchemy.orm import Session

    event = factory.ga_event(capacity=20)
    room(session, event, cap=1)
    for u in factory.users(2):
        waiting_room.join(session, event.id, user_id=u.id)
    session.commit()
    start_sale(session, event.id)
    late = Session(bind=db.engine)
    try:
        late.execute(text("SELECT 1"))  # its transaction begins (a busy host, a request that read first)...
        time.sleep(0.05)
        assert admit(session, event.id).admitted  # ...another pass takes the lock, lets number 1 in, commits...
        session.execute(text("UPDATE waiting_rooms SET max_shoppers = 2 WHERE event_id = :e"), {"e": event.id})
        session.commit()
        assert waiting_room.admit(late, event.id).admitted  # ...then it takes the lock and lets number 2 in
        late.commit()
    finally:
        late.close()
    stamps = session.execute(text("SELECT admitted_at FROM waiting_room_entries WHERE event_id = :e"
                                  " ORDER BY number"), {"e": event.id}).scalars().all()
    assert len(stamps) == 2 and stamps[0] < stamps[1]


def test_the_admin_panel_before_the_start_counts_every_place_and_waits_by_the_rule(client, session, factory):
    from tests.support import admin_client

    event = factory.ga_event(capacity=20)
    room(session, event, rate=60, cap=None)  # starts in an hour: nobody has a number
    entries = [waiting_room.join(session, event.id, user_id=u.id) for u in factory.users(3)]
    session.commit()
    waiting_room.leave(session, entries[0])  # gone before the draw: not in line
    session.commit()
    fill(session, event.id, 1000)  # visitors' places, no number either
    admin, _, _ = admin_client(client, factory)
    live = admin.get(f"/admin/events/{event.id}/waiting-room/live", headers=HX).get_data(as_text=True)
    assert marks(session, event.id).issued == 0
    assert 'data-stat="waiting">1,002<' in live and 'data-stat="admitted">0<' in live
    # The pace is the rule's until a pass measures one; nobody bought yet; the back waits 1,002 / 60 per minute.
    assert 'data-stat="rate">60<' in live and "rule: 60/min, not yet measured" in live
    assert 'data-stat="conversion">–<' in live and 'data-stat="wait">17 min<' in live


def test_a_join_posted_with_htmx_answers_with_the_status_in_place(client, session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event, cap=1)
    start_sale(session, event.id)
    user = factory.user()
    sign_in(client, user.id)
    page = client.get(f"/events/{event.id}/waiting-room").get_data(as_text=True)
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    joined = client.post(f"/events/{event.id}/waiting-room/join", headers={**HX, "X-CSRFToken": token})
    body = joined.get_data(as_text=True)
    assert joined.status_code == 200 and body.startswith('<section id="waiting-room-status"')
    assert "Your number is on its way" in body  # the next pass gives it
    with client.application.test_request_context():
        place = waiting_room.read_place(client.get_cookie(waiting_room.place_cookie_name(event.id)).value)
    assert place is not None and place.anon_token == "" and place.number is None


def test_a_join_posted_by_the_page_is_two_statements_and_its_insert_returns_the_standing(client, session, factory):
    from tests.test_hot_path import statements

    event = factory.ga_event(capacity=20)
    room(session, event, cap=1)
    start_sale(session, event.id)
    user = factory.user()
    sign_in(client, user.id)
    page = client.get(f"/events/{event.id}/waiting-room").get_data(as_text=True)
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    join_url = f"/events/{event.id}/waiting-room/join"  # read before: the test's own objects load nothing inside
    with statements(client.application) as seen:
        joined = client.post(join_url, headers={**HX, "X-CSRFToken": token})
    assert joined.status_code == 200 and "Your number is on its way" in joined.get_data(as_text=True)
    # The room's rules (the screening), then the place made and read back with the room in one statement.
    assert len(seen) == 2 and seen[1].startswith("WITH w AS ( INSERT INTO waiting_room_entries"), seen
    entry = session.scalars(select(WaitingRoomEntry).where(WaitingRoomEntry.event_id == event.id)).one()
    assert entry.user_id == user.id and entry.status == "waiting"
    assert f'data-status-url="/events/{event.id}/waiting-room/status"' in joined.get_data(as_text=True)
    # Joining again takes the ordinary road (the place exists) and answers with the same place.
    again = client.post(f"/events/{event.id}/waiting-room/join", headers={**HX, "X-CSRFToken": token})
    assert again.status_code == 200 and "Your number is on its way" in again.get_data(as_text=True)
    assert session.scalar(text("SELECT count(*) FROM waiting_room_entries WHERE event_id = :e"),
                          {"e": event.id}) == 1
