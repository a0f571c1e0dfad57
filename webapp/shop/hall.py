"""The seat map's markup: the hall drawn from its template once per layout version, live state per request.

A big venue's section page draws one section the same way, kept per layout
version and section.

The map is the buyer's hot path and a big hall has a thousand seats: drawing
shop/_hall.html for it takes tens of milliseconds, so it is drawn once per
layout version, with every state of every seat ready; a request then only
picks each seat's state and joins the pieces.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from flask import render_template
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy.orm import Session

from webapp.models import Event
from webapp.services.selling import hall_layout
from webapp.services.selling.recently_used import RecentlyUsed
from webapp.templating import current_locale

# What the template writes around each seat, and between a seat's parts: a
# NUL starts each, and PostgreSQL text cannot hold one, so no name or label
# drawn in the hall can look like a mark.
_MARKS = {"seat": "\x00seat", "part": "\x00part"}

# The words after a seat's accessible name, by its state (app.js says the same, given them by _seat_map.html).
SEAT_STATE_WORDS = {"available": _l("available"), "taken": _l("unavailable"), "blocked": _l("not for sale"),
                    "mine": _l("held by you")}


@lru_cache(maxsize=8)
def _states_in(language: str) -> dict[str, tuple[str, str, str]]:
    """Each state of a seat for sale: its class, the words after its accessible name, its checkbox's flags."""
    words = {state: str(said) for state, said in SEAT_STATE_WORDS.items()}
    return {
        "available": ("available", words["available"], ""),
        "checked": ("available", words["available"], " checked"),
        "taken": ("taken", words["taken"], " disabled"),
        "blocked": ("blocked", words["blocked"], " disabled"),
        "mine": ("mine", words["mine"], " disabled"),
    }


def _states() -> dict[str, tuple[str, str, str]]:
    return _states_in(current_locale().language)


@dataclass(frozen=True)
class _DrawnHall:
    layout: hall_layout.HallLayout
    texts: list[str]  # markup between seats; one more than there are seats
    seat_ids: list[int]  # drawing order
    # seat id -> its markup when available (most seats, most of the time), the
    # four pieces around its state's three slots, and its markup when locked.
    # The other states are joined from the pieces when asked: six finished
    # variants per seat made a drawn 1,000-seat section weigh about 3 MB.
    variants: dict[int, tuple[str, str, str, str, str, str]]


# Whole halls as before; a big venue's sections (and parts) apart and fewer,
# so that a stadium's sections cannot push the halls out, nor fill a worker.
_HALLS: RecentlyUsed[tuple[hall_layout.LayoutKey, int, int, str], _DrawnHall] = RecentlyUsed(kept=64)
_SECTIONS: RecentlyUsed[tuple[hall_layout.LayoutKey, int, int, str], _DrawnHall] = RecentlyUsed(kept=32)


def _draw(layout: hall_layout.HallLayout, number: int, part: int) -> _DrawnHall:
    """The whole hall (`number` 0), or the section of that number alone (its part `part`, if it has parts)."""
    drawn = layout.part(number, part) if number else None
    sections = layout.sections if drawn is None else [drawn]
    rendered = render_template("shop/_hall.html", sections=sections, first_number=max(number, 1),
                               tiers={t.id: t for t in layout.tiers}, marks=_MARKS)
    pieces = rendered.split(_MARKS["seat"])
    ids, variants = [], {}
    for slot in pieces[1::2]:
        seat_id, before_status, before_words, before_flags, rest, locked = slot.split(_MARKS["part"])
        ids.append(int(seat_id))
        status, words, flags = _states()["available"]
        available = f"{before_status}{status}{before_words}{words}{before_flags}{flags}{rest}"
        variants[int(seat_id)] = (available, before_status, before_words, before_flags, rest, locked)
    return _DrawnHall(layout, pieces[0::2], ids, variants)


def hall_markup(session: Session, event: Event, states: dict[str, list[int]], selected: set[int],
                section: int = 0, part: int = 1) -> Markup:
    """The hall's seats (or section number `section`'s, part `part`) with their live state and picks."""
    # Drawn once per language too: the seats' accessible names are words.
    key = (hall_layout.layout_key(event), section, part, current_locale().language)
    kept = _SECTIONS if section else _HALLS
    hall = kept.get(key)
    if hall is None:
        hall = _draw(hall_layout.for_event(session, event), section, part)
        kept.put(key, hall)
    state = dict.fromkeys(states.get("taken", ()), "taken")
    state.update(dict.fromkeys(states.get("blocked", ()), "blocked"))
    state.update(dict.fromkeys(states.get("mine", ()), "mine"))
    state.update((i, "checked") for i in selected if i not in state)
    if event.locked_tier_ids:
        state.update((i, "locked") for i in hall.layout.seats_of(event.locked_tier_ids) if i in hall.variants)
    states_now = _states()
    out = [hall.texts[0]]
    variants, texts = hall.variants, hall.texts
    for n, seat_id in enumerate(hall.seat_ids, 1):
        seat = variants[seat_id]
        now = state.get(seat_id)
        if now is None:
            out.append(seat[0])
        elif now == "locked":
            out.append(seat[5])
        else:
            status, words, flags = states_now[now]
            out.append(f"{seat[1]}{status}{seat[2]}{words}{seat[3]}{flags}{seat[4]}")
        out.append(texts[n])
    return Markup("".join(out))
