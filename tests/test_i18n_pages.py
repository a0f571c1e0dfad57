"""No buyer page has an untranslated string: each is rendered in a pseudo-language and read.

The pseudo-language is German's real catalog with every translation wrapped
in ⟦…⟧ (built here, put in Flask-Babel's cache for "de"). A page's visible
text is then either inside the marks or data: event titles, venues, names,
prices, dates, seat numbers. Any other word is a string nobody marked. The
real catalogs are checked apart: no empty and no fuzzy entry.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest
from babel.dates import get_day_names, get_month_names
from babel.messages.pofile import read_po
from babel.support import Translations
from flask import g
from flask_babel import get_domain

from tests import pseudo_locale
from tests.support import buy, login, reserve_general, reserve_seats
from webapp.i18n import LANGUAGE_COOKIE, TRANSLATIONS
from webapp.services.waiting import waiting_room

OPEN, CLOSE = "⟦", "⟧"
# Words that are data or names in every language (the brand, the languages' own names).
ALWAYS = {"Ticketbooth", "English", "Deutsch", "Español", "Stripe", "CET", "CEST", "UTC", "GMT"}


def _pseudo_german() -> Translations:
    real = Translations.load(str(TRANSLATIONS), ["de"])
    for key, said in list(real._catalog.items()):
        if key and said:
            real._catalog[key] = f"{OPEN}{said}{CLOSE}"
    return real


class _Text(HTMLParser):
    """The visible text in order, without scripts and styles; attributes people hear or see too."""

    SPOKEN = ("aria-label", "title", "placeholder", "alt")

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0
        self._data_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in self.SPOKEN and value:
                self.parts.append(f" {value} ")
        if any(name == "lang" for name, _ in attrs) and tag != "html":
            self._data_depth += 1  # a language's own name in the switcher
            self.parts.append(OPEN)

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1
        if tag == "button" and self._data_depth:
            self._data_depth -= 1
            self.parts.append(CLOSE)

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def untranslated(page: str, data: set[str]) -> list[str]:
    """The words of the page outside ⟦…⟧ that are not data."""
    reader = _Text()
    reader.feed(page)
    text = "".join(reader.parts)
    outside, depth = [], 0
    for ch in text + " ":
        if ch == OPEN:
            depth += 1
        elif ch == CLOSE:
            depth = max(0, depth - 1)
        elif depth == 0:
            outside.append(ch)
        else:
            outside.append(" ")
    left = "".join(outside)
    for known in sorted(data, key=len, reverse=True):
        left = left.replace(known, " ")
    return [w for w in re.findall(r"[A-Za-zÀ-ÿ]{2,}", left) if w not in ALWAYS]


def _data_words() -> set[str]:
    words = set()
    for width in ("abbreviated", "wide"):
        words.update(get_month_names(width, locale="de").values())
        words.update(get_month_names(width, context="stand-alone", locale="de").values())
        words.update(get_day_names(width, locale="de").values())
    return words


def _forget_drawn_words() -> None:
    # The catalogs and the seat map's words are kept per language for the process (webapp/i18n.py,
    # shop/hall.py): the pseudo-language shares German's code, so neither may see the other's.
    pseudo_locale.forget_kept_words()


@pytest.fixture
def pseudo(app_ctx):
    domain = get_domain()
    _forget_drawn_words()
    domain.get_translations_cache(None)[("de", domain.domain[0])] = _pseudo_german()
    yield
    domain.get_translations_cache(None).clear()
    _forget_drawn_words()


def test_the_checker_finds_an_unmarked_string():
    marked = f"<p>{OPEN}Ausverkauft{CLOSE}</p><button aria-label='{OPEN}Zoom{CLOSE}'>+</button>"
    assert untranslated(marked, set()) == []
    assert untranslated("<p>Sold out</p>", set()) == ["Sold", "out"]
    assert untranslated(f"<p>{OPEN}Platz{CLOSE} <span aria-label='Zoom in'>x</span></p>", set()) == ["Zoom", "in"]
    assert untranslated("<h1>Rock Night</h1>", {"Rock Night"}) == []


def _read(client, url: str, data: set[str], **kw) -> list[str]:
    # The tests' requests share one app context: each page chooses its language afresh.
    for kept in ("_flask_babel", "_login_user", "csrf_token"):
        g.pop(kept, None)
    response = client.get(url, **kw)
    assert response.status_code < 500, (url, response.status_code)
    return untranslated(response.get_data(as_text=True), data)


def test_every_buyer_page_is_marked_in_full(client, factory, session, pseudo):
    user = factory.user(name="Ada Buyer")
    seated = factory.seated_event(rows=2, seats_per_row=4, title="Seated Concert")
    ga = factory.ga_event(capacity=10, title="Open Air")
    stadium = factory.stadium(sections=2, rows=4, seats_per_row=5, title="Big Stadium")
    roomed = factory.ga_event(capacity=10, title="Rush Night")
    waiting_room.configure(session, roomed, enabled=True, admit_per_minute=None, max_shoppers=5, pass_minutes=10,
                           sale_starts_at=datetime.now(timezone.utc) + timedelta(hours=1))
    seats = factory.seat_ids(seated)
    hold = reserve_seats(session, user_id=user.id, event_id=seated.id, unit_ids=seats[:2])
    ga_hold = reserve_general(session, user_id=user.id, event_id=ga.id, quantities={factory.tier(ga).id: 2})
    session.commit()
    order = buy(session, stadium, user, seats=factory.seat_ids(stadium)[:1])
    data = {user.name, user.email} | _data_words()
    data |= {e.title for e in (seated, ga, stadium, roomed)} | {e.venue for e in (seated, ga, stadium, roomed)}
    data |= {t.name for e in (seated, ga, stadium, roomed) for t in e.tiers}
    data |= {f"Block {i}" for i in (1, 2)} | {ticket.code for ticket in order.tickets}
    client.set_cookie(LANGUAGE_COOKIE, "de")
    found = {}
    for name, url in {
        "event list": "/",
        "event list, nothing found": "/?q=nothing-like-this",
        "login": "/login",
        "register": "/register",
        "forgot password": "/password/forgot",
        "not found (404)": "/events/999999",
        "waiting room": f"/events/{roomed.id}/waiting-room",
        "map without a waiting-room pass (403)": f"/events/{roomed.id}/seat-map",
    }.items():
        found[name] = _read(client, url, data)
    login(client, user.email)
    client.set_cookie(LANGUAGE_COOKIE, "de")
    for name, url in {
        "seated event": f"/events/{seated.id}",
        "seated event, seats picked": f"/events/{seated.id}?seat={seats[2]}&seat={seats[3]}",
        "ga event": f"/events/{ga.id}",
        "seat list": f"/events/{seated.id}/seat-list",
        "stadium overview": f"/events/{stadium.id}",
        "stadium section": f"/events/{stadium.id}/sections/1",
        "hold, seated": f"/holds/{hold.id}",
        "hold, general admission": f"/holds/{ga_hold.id}",
        "my tickets": "/orders",
        "order": f"/orders/{order.id}",
        "cancel an order": f"/orders/{order.id}/cancel",
        "printable ticket": f"/orders/{order.id}/tickets/{order.tickets[0].id}",
        "api tokens": "/account/tokens",
        "my waiting lists": "/waitlists",
    }.items():
        found[name] = _read(client, url, data)
    assert {name: words for name, words in found.items() if words} == {}


def test_the_error_pages_are_marked_in_full(app, pseudo):
    from webapp import errors

    message = "We could not find that page."

    for status in (403, 404, 429, 503):
        with app.test_request_context("/", headers={"Cookie": f"{LANGUAGE_COOKIE}=de"}):
            page = errors.error_response(status, message).get_data(as_text=True)
        # The message is the caller's (already in the request's language); the page's own words are checked.
        assert untranslated(page, {message}) == [], status


@pytest.mark.parametrize("language", ["de", "es"])
def test_the_catalogs_have_no_empty_and_no_fuzzy_entry_for_the_buyer_pages(language):
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale=language)
    buyer = re.compile(r"templates/(shop|checkout|waitlist|account|auth|errors)/|templates/base\.html|shop/hall\.py"
                       r"|models/events\.py")
    checked = 0
    for message in catalog:
        if not message.id or not any(buyer.search(path) for path, _ in message.locations):
            continue
        checked += 1
        assert "fuzzy" not in message.flags, message.id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), message.id
    assert checked > 200


def test_every_state_of_the_waiting_room_status_is_marked_in_full(client, session, factory, pseudo):
    # A waiting page holds the room's other states drawn hidden (waiting_room.js reveals them from now.json):
    # the partial in each state, hidden blocks and all, is in the page's language.
    from tests.test_waiting_room import HX, admit, join_over_http, room, start_sale
    from tests.test_waiting_room_states import blocked, shown
    from webapp.models import Event

    factory.user(is_admin=True)
    event = factory.seated_event(rows=1, seats_per_row=2, title="Rush Night")
    room(session, event)
    waiting_room.control(session, event, paused=True)
    session.commit()
    client.set_cookie(LANGUAGE_COOKIE, "de")
    url = f"/events/{event.id}/waiting-room/status"
    data = {event.title, event.venue} | _data_words()
    g.pop("csrf_token", None)
    join_over_http(client, event.id)
    found = {"before the start": _read(client, url, data, headers=HX)}
    start_sale(session, event.id)
    found["no number yet"] = _read(client, url, data, headers=HX)
    admit(session, event.id)
    found["waiting, paused"] = _read(client, url, data, headers=HX)
    blocked(session, factory, event, blocked=True)
    found["sold out"] = _read(client, url, data, headers=HX)
    assert shown(client.get(url, headers=HX).get_data(as_text=True)) == ["waiting-room-sold-out"]
    blocked(session, factory, event, blocked=False)
    waiting_room.control(session, session.get(Event, event.id), gate_open=True)
    session.commit()
    found["open to everyone"] = _read(client, url, data, headers=HX)
    assert {state: words for state, words in found.items() if words} == {}
