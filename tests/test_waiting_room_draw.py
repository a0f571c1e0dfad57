"""The draw's published numbers: how a page waiting for the start learns its number without asking for it.

At the sale start every place that joined before it gets its number at
once, from the draw. A page asking for its own status then would be the
whole room asking in the same few seconds; instead the numbers are public
files of a thousand places each (by id), answered in front of Flask and by
any cache, and the page finds its place's id in its file (waiting_room.js).
These tests hold the files to the database's numbers, their bounds and
headers, the page to carrying what it needs, and a file's answer to costing
no database work while it is fresh.
"""
from __future__ import annotations

import json
import re

from sqlalchemy import text

from tests.support import sign_in
from tests.test_waiting_room_join_number import _join_with_htmx
from tests.test_waiting_room_scale import HX, admit, fill, room, start_sale, statements_during
from webapp.services.waiting import waiting_room


def _draw(client, event_id: int, file: int, **headers):
    return client.get(f"/events/{event_id}/waiting-room/draw/{file}.json", headers=headers)


def _forget(app) -> None:
    app.extensions["waiting_room_now"].forget()


def _numbers(session, event_id: int) -> dict[str, int]:
    return {str(i): n for i, n in session.execute(text(
        "SELECT id, number FROM waiting_room_entries WHERE event_id = :e AND number IS NOT NULL"), {"e": event_id})}


def test_the_draw_is_empty_until_the_pass_draws_it_then_holds_every_number_of_its_thousand_ids(
        client, app, session, factory):
    event = factory.ga_event(capacity=10)
    room(session, event, cap=2)
    fill(session, event.id, 30)
    ids = list(session.scalars(text("SELECT id FROM waiting_room_entries WHERE event_id = :e ORDER BY id"),
                               {"e": event.id}))
    # A place whose id is in the next file: not in this one.
    session.execute(text("INSERT INTO waiting_room_entries (id, event_id, anon_token, line_key)"
                         " VALUES (:i, :e, 'far', -1)"), {"i": (ids[-1] // 1000 + 1) * 1000, "e": event.id})
    session.commit()
    file = ids[0] // 1000
    assert ids[-1] // 1000 == file, "the test's places share one file"

    before = _draw(client, event.id, file)
    assert before.status_code == 200 and before.get_json() == {"opened": False, "numbers": {}}
    assert before.headers["Cache-Control"] == "public, max-age=2" and before.headers["ETag"]

    start_sale(session, event.id)
    admit(session, event.id)  # the opening pass: the draw becomes numbers
    _forget(app)
    drawn = _draw(client, event.id, file)
    body = drawn.get_json()
    every = _numbers(session, event.id)
    assert body["opened"] is True and len(every) == 31
    assert body["numbers"] == {str(i): every[str(i)] for i in ids}
    assert sorted(body["numbers"].values()) == sorted(every[str(i)] for i in ids)
    further = _draw(client, event.id, file + 1).get_json()["numbers"]
    assert list(further) == [str((ids[-1] // 1000 + 1) * 1000)]
    # The same answer again is a 304 to a page that has it.
    again = _draw(client, event.id, file, **{"If-None-Match": drawn.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""


def test_a_fresh_file_takes_no_database_connection_and_a_stale_one_one_statement(client, app, session, factory):
    event = factory.ga_event(capacity=10)
    room(session, event)
    fill(session, event.id, 3)
    url = f"/events/{event.id}/waiting-room/draw/0.json"
    _forget(app)
    answer, seen, checkouts = statements_during(app, lambda: client.get(url))
    assert answer.status_code == 200 and len(seen) == 1 and checkouts == 1
    answer, seen, checkouts = statements_during(app, lambda: client.get(url))
    assert answer.status_code == 200 and seen == [] and checkouts == 0


def test_no_room_a_draft_or_a_file_out_of_range_is_a_clear_answer(client, session, factory):
    event = factory.ga_event(capacity=10)
    assert _draw(client, event.id, 0).status_code == 404
    room(session, event)
    draft = factory.ga_event(capacity=10, status="draft")
    room(session, draft)
    assert _draw(client, draft.id, 0).status_code == 404
    assert client.get(f"/events/{event.id}/waiting-room/draw/9999999999.json").status_code == 404
    assert client.get(f"/events/{event.id}/waiting-room/draw/-1.json").status_code == 404
    assert client.get(f"/events/{event.id}/waiting-room/draw/x.json").status_code == 404
    assert _draw(client, event.id, 999_999_999).get_json() == {"opened": False, "numbers": {}}


def _status(client, event_id: int) -> str:
    return client.get(f"/events/{event_id}/waiting-room/status", headers=HX).get_data(as_text=True)


def test_a_page_waiting_for_the_start_carries_its_place_and_file_and_the_blocks_it_will_show(
        client, session, factory):
    event = factory.ga_event(capacity=10)
    room(session, event, starts_in=600)
    user = factory.user()
    sign_in(client, user.id)
    body = _join_with_htmx(client, event.id).get_data(as_text=True)
    entry_id = session.scalar(text("SELECT id FROM waiting_room_entries WHERE user_id = :u"), {"u": user.id})
    assert f'data-place="{entry_id}"' in body
    assert f'data-draw-url="/events/{event.id}/waiting-room/draw/{entry_id // waiting_room.DRAW_IDS}.json"' in body
    # The countdown does not ask at zero: the page reads its number instead.
    countdown = re.search(r'<div id="waiting-room-countdown"[^>]*>', body).group(0)
    assert "data-refresh-url" not in countdown
    for block in ("waiting-room-waiting", "waiting-room-sold-out", "waiting-room-open"):
        assert f'<div id="{block}" hidden>' in body
    assert '<div id="waiting-room-before">' in body and body.count('id="waiting-room-leave-form"') == 1
    assert 'id="waiting-room-number-hint"' in body


def test_a_page_without_a_place_or_after_the_start_draws_as_before(client, session, factory):
    event = factory.ga_event(capacity=10)
    room(session, event, starts_in=600, cap=1)
    body = client.get(f"/events/{event.id}/waiting-room").get_data(as_text=True)
    assert "data-draw-url" not in body and "data-refresh-url" in body  # no place: the countdown asks at zero
    assert '<div id="waiting-room-waiting"' not in body
    fill(session, event.id, 2)
    start_sale(session, event.id)
    admit(session, event.id)
    sign_in(client, factory.user().id)
    body = _join_with_htmx(client, event.id).get_data(as_text=True)
    assert "data-draw-url" not in body and 'data-number="3"' in body


def test_the_draw_is_answered_by_the_cache_layer_not_flask(client, app, session, factory):
    """Answered in front of Flask: no session cookie set, no CSRF, the same bytes for every client."""
    event = factory.ga_event(capacity=10)
    room(session, event)
    fill(session, event.id, 2)
    _forget(app)
    one = _draw(client, event.id, 0)
    sign_in(client, factory.user().id)
    two = _draw(client, event.id, 0)
    assert one.get_data() == two.get_data() and "Set-Cookie" not in two.headers
    assert json.loads(one.get_data())["opened"] is False
