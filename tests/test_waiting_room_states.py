"""The waiting page's state changes: its status partial carries every block waiting_room.js reveals.

A page with a number shows the room's state changes (sold out, back from
sold out, open to everyone, switched off) itself, from now.json, without
asking for its status: so the partial it holds must already carry, in the
page's language and hidden, what the server would draw for each of them.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.support import Translations
from flask import g
from sqlalchemy import select

from tests.test_waiting_room import HX, admit, call, join_over_http, room, start_sale
from webapp.i18n import LANGUAGE_COOKIE, TRANSLATIONS
from webapp.models import Event, User
from webapp.services.admin import events as admin_events
from webapp.services.waiting import waiting_room

SCRIPT = Path(__file__).resolve().parents[1] / "webapp" / "static" / "waiting_room.js"
BLOCKS = ("waiting-room-waiting", "waiting-room-sold-out", "waiting-room-open")


class _Blocks(HTMLParser):
    """Each block's `hidden` attribute and its HTML (its words and links), by id."""

    def __init__(self):
        super().__init__()
        self.hidden: dict[str, bool] = {}
        self.html: dict[str, str] = {}
        self._open: list[tuple[str, int]] = []  # (block id, depth of its element)
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        self._depth += 1
        found = dict(attrs)
        if found.get("id") in BLOCKS:
            self.hidden[found["id"]] = "hidden" in found
            self.html[found["id"]] = ""
            self._open.append((found["id"], self._depth))
        for name, _ in self._open:
            self.html[name] += self.get_starttag_text() or ""

    def handle_endtag(self, tag):
        for name, _ in self._open:
            self.html[name] += f"</{tag}>"
        if self._open and self._open[-1][1] == self._depth:
            self._open.pop()
        self._depth -= 1

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_data(self, data):
        for name, _ in self._open:
            self.html[name] += data


def blocks_of(body: str) -> _Blocks:
    reader = _Blocks()
    reader.feed(body)
    return reader


def shown(body: str) -> list[str]:
    """The blocks of the partial a person sees (and hears): present and not hidden."""
    return [name for name, hidden in blocks_of(body).hidden.items() if not hidden]


def words(language: str):
    """The page's words in `language`, from its catalog (English: the words as written)."""
    if language == "en":
        return lambda message: message
    return Translations.load(str(TRANSLATIONS), [language]).gettext


def blocked(session, factory, event: Event, *, blocked: bool) -> None:
    """The admin blocks every seat (nothing left: sold out) or gives them back (tickets come back)."""
    admin = session.scalars(select(User).where(User.is_admin)).one()
    for unit_id in factory.seat_ids(event):
        admin_events.set_seat_blocked(session, actor_id=admin.id, event_id=event.id, unit_id=unit_id,
                                      blocked=blocked)
    session.commit()
    admit(session, event.id)  # the pass notices, as the sweep's does


@pytest.fixture
def waiting(client, session, factory):
    """A visitor waiting with a number in a paused room (so it stays waiting) of two seats."""
    factory.user(is_admin=True)
    event = factory.seated_event(rows=1, seats_per_row=2, title="Rush Night")
    room(session, event)
    waiting_room.control(session, event, paused=True)
    session.commit()
    join_over_http(client, event.id)
    start_sale(session, event.id)
    admit(session, event.id)  # numbers the place; paused, lets nobody in
    return event


def status(client, event: Event, language: str) -> str:
    client.set_cookie(LANGUAGE_COOKIE, language)
    g.pop("_flask_babel", None)  # the tests' requests share one app context: each chooses its language afresh
    answer = call(client, "get", f"/events/{event.id}/waiting-room/status", headers=HX)
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def test_the_script_reveals_only_blocks_the_partial_names():
    # waiting_room.js's BLOCK: the ids it shows for each state of now.json are the partial's.
    script = SCRIPT.read_text()
    named = set(re.findall(r'"(waiting-room-[a-z-]+)"', script.split("var BLOCK = ", 1)[1].split("};", 1)[0]))
    assert named == set(BLOCKS)


@pytest.mark.parametrize("language", ["en", "de", "es"])
def test_a_waiting_page_carries_every_state_the_room_can_change_to(client, session, waiting, language):
    say = words(language)
    event = waiting
    body = status(client, event, language)
    assert 'data-number="1"' in body and 'data-state="paused"' in body
    assert shown(body) == ["waiting-room-waiting"]
    found = blocks_of(body)
    # The sold-out block, hidden: the server's words and the waiting list's link, in the page's language.
    sold = found.html["waiting-room-sold-out"]
    assert f'href="/events/{event.id}/waitlist"' in sold
    assert say("Join the waiting list for returned tickets") in sold
    assert say("<strong>Sold out.</strong> Every ticket is taken or held right now. Tickets that come back go to"
               " the waiting list first, in the order people joined it.") in " ".join(sold.split())
    assert 'role="status"' in sold
    # The open block, hidden: the link to the tickets.
    room_open = found.html["waiting-room-open"]
    assert f'href="/events/{event.id}"' in room_open and say("Choose your tickets") in room_open
    assert say("The waiting room is open to everyone now.") in room_open
    if language != "en":
        assert say("Choose your tickets") != "Choose your tickets"


def test_sold_out_then_tickets_back_the_server_draws_what_the_script_shows(client, session, factory, waiting):
    event = waiting
    blocked(session, factory, event, blocked=True)
    body = status(client, event, "en")
    # Sold out: what a reload shows; the position stays in the page, hidden, for when tickets come back.
    assert shown(body) == ["waiting-room-sold-out"]
    assert 'data-state="sold_out"' in body and 'data-poll-seconds="30"' in body and 'data-number="1"' in body
    assert 'id="waiting-room-position-text"' in blocks_of(body).html["waiting-room-waiting"]
    # Nobody on the waiting list: the seats come back to the room, which admits again (paused here).
    blocked(session, factory, event, blocked=False)
    body = status(client, event, "en")
    assert shown(body) == ["waiting-room-waiting"] and 'data-state="paused"' in body


@pytest.mark.parametrize("change", ["gate opened", "room switched off"])
def test_open_to_everyone_or_switched_off_shows_the_way_to_the_tickets(client, session, waiting, change):
    event = waiting
    if change == "gate opened":
        waiting_room.control(session, session.get(Event, event.id), gate_open=True)
    else:
        live = session.get(Event, event.id)
        current = waiting_room.room_for(session, event.id)
        waiting_room.configure(session, live, enabled=False, sale_starts_at=current.sale_starts_at,
                               admit_per_minute=None, max_shoppers=5)
    session.commit()
    body = status(client, event, "en")
    assert shown(body) == ["waiting-room-open"]
    # Nothing more to wait for: the page stops polling, as it does when it shows this itself.
    assert "data-now-url" not in body and "data-number" not in body and "E-mail me" not in body
    # A reload says the same: the page of a switched-off room sends the buyer to the event.
    page = call(client, "get", f"/events/{event.id}/waiting-room")
    if change == "gate opened":
        assert shown(page.get_data(as_text=True)) == ["waiting-room-open"]
    else:
        assert page.status_code in (302, 303) and page.headers["Location"].endswith(f"/events/{event.id}")
