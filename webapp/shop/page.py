"""What the event page and its partials draw, with the buyer's picks kept.

The page, its map and picker, and every answer to a refused reserve draw
from this one context, so a refusal shows what a fresh page would, from one
read of the event (`catalog.event_page_view`).
"""
from __future__ import annotations

from collections.abc import Collection

from flask import request
from flask_login import current_user

from webapp.extensions import db
from webapp.htmx import is_partial_request
from webapp.models import Event
from webapp.services.selling import catalog
from webapp.services.waiting import waitlist_read
from webapp.shop import hall

# How often an open map asks "anything changed?"; docs/performance.md gives its cost.
LIVE_POLL_SECONDS = 2


def context(event: Event, *, seats: Collection[int] = (), quantities: dict[int, int] | None = None,
            message: str | None = None, user_id: int | None = None, best: dict | None = None) -> dict:
    """Everything the event page and its partials draw, with the buyer's picks kept.

    `user_id`: the buyer, when the caller already knows them checked (a
    refused reserve: its statement checked the session), so no lookup of its
    own. `best`: the best-available box's choice and message.
    """
    if user_id is None and current_user.is_authenticated:
        user_id = current_user.id
    # The basket banner and the waiting-list panel are on the page body only, not in the map's partials.
    whole_body = not is_partial_request() or request.endpoint == "shop.event_page"
    view = catalog.event_page_view(db.session, event, user_id, seats=seats, quantities=quantities,
                                   with_basket=whole_body)
    ctx = dict(vars(view), event=event, message=message, poll_seconds=LIVE_POLL_SECONDS, best=best or {})
    states = ctx.pop("seat_states")
    if states is not None:
        ctx["hall"] = hall.hall_markup(db.session, event, states, set(view.selected))
    if whole_body:
        ctx["waitlist_panel"] = waitlist_read.buyer_panel(db.session, event, user_id)
    return ctx
