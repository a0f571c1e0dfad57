"""A place that joins after the sale start gets its number from its own join.

The page then never asks the room for it: an arriving crowd costs one
request each. The draw comes first: until the admission pass has opened the
room (numbering every place drawn before the start), a join leaves its
number to the pass. Joins number under the room row's lock, waited for 20 ms
at most, so racing joins never share a number; one that finds the row held
longer (by a pass) is numbered by the next pass, in line order.
"""
from __future__ import annotations

import re

from sqlalchemy import text

from tests.support import race, sign_in
from tests.test_waiting_room_scale import HX, admit, fill, marks, room, start_sale, waiting_numbers
from webapp.services.waiting import waiting_room


def _join_with_htmx(client, event_id: int):
    page = client.get(f"/events/{event_id}/waiting-room").get_data(as_text=True)
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    return client.post(f"/events/{event_id}/waiting-room/join", headers={**HX, "X-CSRFToken": token})


def _cookie_number(client, event_id: int) -> int | None:
    with client.application.test_request_context():
        place = waiting_room.read_place(client.get_cookie(waiting_room.place_cookie_name(event_id)).value)
    assert place is not None
    return place.number


def _numbers_by_line(session, event_id: int) -> list[int | None]:
    return list(session.scalars(text("SELECT number FROM waiting_room_entries WHERE event_id = :e"
                                     " ORDER BY line_key, id"), {"e": event_id}))


def test_a_join_after_the_room_opened_answers_with_its_number_and_the_marks_follow(client, session, factory):
    from tests.test_hot_path import statements

    event = factory.ga_event(capacity=20)
    room(session, event, cap=1)
    fill(session, event.id, 3)  # drawn before the start
    start_sale(session, event.id)
    admit(session, event.id)  # opens the room: the draw numbered 1-3, number 1 let in
    version = marks(session, event.id).version
    sign_in(client, factory.user().id)
    page = client.get(f"/events/{event.id}/waiting-room").get_data(as_text=True)
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    join_url = f"/events/{event.id}/waiting-room/join"
    with statements(client.application) as seen:
        joined = client.post(join_url, headers={**HX, "X-CSRFToken": token})
    body = joined.get_data(as_text=True)
    assert joined.status_code == 200 and "Your number is on its way" not in body
    assert 'data-number="4"' in body and "Your number is <strong>4</strong>" in body
    # Two places ahead (2 and 3 wait; 1 was let in).
    assert re.search(r'id="waiting-room-position-number">3<', body), body
    # The rules, the place with its standing, its number: no ask of the page's own follows.
    assert len(seen) == 3 and seen[2].startswith("SELECT tb_number_arrival("), seen
    assert _cookie_number(client, event.id) == 4
    r = marks(session, event.id)
    assert (r.issued, r.served, r.left_count) == (4, 1, 0) and r.version == version + 1
    assert waiting_numbers(session, event.id) == [2, 3, 4]


def test_a_join_after_the_start_but_before_the_opening_pass_leaves_its_number_to_the_draw(
        client, session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event, cap=1)
    fill(session, event.id, 5)
    start_sale(session, event.id)
    sign_in(client, factory.user().id)
    joined = _join_with_htmx(client, event.id)
    assert joined.status_code == 200 and "Your number is on its way" in joined.get_data(as_text=True)
    assert marks(session, event.id).issued == 0
    admit(session, event.id)
    # The draw first (the five early places), then the arrival.
    assert _numbers_by_line(session, event.id) == [1, 2, 3, 4, 5, 6]


def test_a_join_without_javascript_is_numbered_too(client, session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event, cap=1)
    start_sale(session, event.id)
    admit(session, event.id)
    sign_in(client, factory.user().id)
    page = client.get(f"/events/{event.id}/waiting-room").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    joined = client.post(f"/events/{event.id}/waiting-room/join", data={"csrf_token": token})
    assert joined.status_code in (302, 303)
    assert _numbers_by_line(session, event.id) == [1]
    shown = client.get(f"/events/{event.id}/waiting-room").get_data(as_text=True)
    assert "Your number is on its way" not in shown


def test_racing_joins_never_share_a_number_and_the_pass_numbers_whoever_found_the_room_busy(
        app, session, factory):
    event = factory.ga_event(capacity=20)
    room(session, event, cap=1)
    start_sale(session, event.id)
    admit(session, event.id)
    users = [factory.user().id for _ in range(24)]
    event_id = event.id

    # The join checks the account's session version: read it as the cookie would carry it.
    versions = dict(session.execute(text("SELECT id, session_version FROM users WHERE id = ANY(:u)"),
                                    {"u": users}).all())

    def join_as(i: int):
        stand = waiting_room.join_now_standing(event_id=event_id, user_id=users[i],
                                               session_version=versions[users[i]], anon_token=None)
        return stand.number if stand is not None else "refused"

    numbers = race(app, len(users), join_as)
    assert "refused" not in numbers
    given = [n for n in numbers if n is not None]
    assert given, "every join found the room busy"
    # Whatever the joins gave is dense from 1 and held by one place each; the marks say so.
    assert sorted(waiting_numbers(session, event.id)) == list(range(1, marks(session, event.id).issued + 1))
    assert set(given) <= set(waiting_numbers(session, event.id))
    admit(session, event.id)
    numbers_now = _numbers_by_line(session, event.id)
    assert sorted(numbers_now) == list(range(1, len(users) + 1)) and marks(session, event.id).issued == len(users)


def test_a_join_while_a_pass_holds_the_room_does_not_wait_for_it_and_the_next_pass_numbers_it(
        client, app, session, factory):
    from webapp.extensions import db

    event = factory.ga_event(capacity=20)
    room(session, event, cap=1)
    start_sale(session, event.id)
    admit(session, event.id)
    sign_in(client, factory.user().id)
    with app.app_context(), db.engine.connect() as other:
        # A pass on another host, holding the room row for as long as it runs.
        other.execute(text("SELECT 1 FROM waiting_rooms WHERE event_id = :e FOR UPDATE"), {"e": event.id})
        # Held by this very thread: a join that waited for it would never come back (or time out as a 503).
        joined = _join_with_htmx(client, event.id)
        other.rollback()
    assert joined.status_code == 200 and "Your number is on its way" in joined.get_data(as_text=True)
    assert _numbers_by_line(session, event.id) == [None]
    admit(session, event.id)
    assert _numbers_by_line(session, event.id) == [1]
