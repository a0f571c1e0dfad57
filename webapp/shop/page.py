"""What the event page and its partials draw, with the buyer's picks kept.

The page, its map and picker, and every answer to a refused reserve draw
from this one context, so a refusal shows what a fresh page would, from one
read of the event (`catalog.event_page_view`).
"""
from __future__ import annotations

from collections.abc import Collection

from flask import current_app, request
from flask_login import current_user

from webapp.extensions import db
from webapp.htmx import is_partial_request
from webapp.models import Event
from webapp.services.selling import catalog, hall_layout
from webapp.services.waiting import waitlist_read
from webapp.shop import hall

# How often an open map asks "anything changed?"; docs/performance.md gives its cost.
LIVE_POLL_SECONDS = 2


def section_of(event: Event, seat_ids: Collection[int]) -> tuple[int, int] | None:
    """The section (number, part) these seats are in, when the venue is big enough to be shown by section."""
    if not (event.is_seated and seat_ids) or not catalog.is_large(db.session, event, _large_venue_seats()):
        return None
    return hall_layout.for_event(db.session, event).section_of(seat_ids)


def _large_venue_seats() -> int:
    return current_app.config["LARGE_VENUE_SEATS"]


def context(event: Event, *, seats: Collection[int] = (), quantities: dict[int, int] | None = None,
            message: str | None = None, user_id: int | None = None, best: dict | None = None,
            section: int | None = None, part: int | None = None) -> dict:
    """Everything the event page and its partials draw, with the buyer's picks kept.

    `user_id`: the buyer, when the caller already knows them checked (a
    refused reserve: its statement checked the session), so no lookup of its
    own. `best`: the best-available box's choice and message. `section`,
    `part`: the section page of that number and part (checked by the caller).
    A venue over LARGE_VENUE_SEATS shows the section (and part) of the picked
    seats, or with none picked its overview; a smaller one, its whole hall.
    """
    if user_id is None and current_user.is_authenticated:
        user_id = current_user.id
    # The basket banner and the waiting-list panel are on the page body only, not in the map's partials.
    whole_body = not is_partial_request() or request.endpoint in ("shop.event_page", "shop.section_page")
    scope, number = None, 0
    if event.is_seated and (section is not None or catalog.is_large(db.session, event, _large_venue_seats())):
        layout = hall_layout.for_event(db.session, event)
        found = layout.section_of(seats)
        if section is None and found is not None:
            section, part = found
        elif part is None and found is not None and found[0] == section:
            part = found[1]
        number, part = section or 0, part or 1
        scope = layout.sections[number - 1].name if number else catalog.OVERVIEW
    view = catalog.event_page_view(db.session, event, user_id, seats=seats, quantities=quantities,
                                   with_basket=whole_body, section=scope)
    ctx = dict(vars(view), event=event, message=message, poll_seconds=LIVE_POLL_SECONDS, best=best or {})
    states = ctx.pop("seat_states")
    if states is not None:
        ctx["hall"] = hall.hall_markup(db.session, event, states, set(view.selected), number, part or 1)
    if number:
        # The section page: its place among the others (the minimap), its parts and the way back.
        ctx["section_number"], ctx["section_part"] = number, part
        ctx["section_parts"] = hall_layout.parts_of(layout.sections[number - 1])
        ctx["minimap"] = catalog.overview(db.session, event)
    if whole_body:
        ctx["waitlist_panel"] = waitlist_read.buyer_panel(db.session, event, user_id)
    return ctx
