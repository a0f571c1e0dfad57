"""What lets a buyer at an event's tickets: its public snapshot and, while its waiting room is on, a pass.

Shared by the shop's pages and the waiting room's, and by checkout (which
extends the pass while a hold lasts).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import abort, current_app, g, request
from flask_login import current_user
from werkzeug.wrappers import Response

from webapp import session_user
from webapp.extensions import db
from webapp.htmx import is_partial_request, render
from webapp.models import Event
from webapp.services.selling import catalog
from webapp.services.waiting import waiting_room
from webapp.shop import access


def load_public_event(event_id: int) -> catalog.EventSnapshot:
    # A snapshot of the event's row and tiers, reused while their rows are unchanged;
    # hidden tiers only as the buyer's access codes unlock them.
    event = catalog.public_event(db.session, event_id, staff=getattr(current_user, "is_admin", False),
                                 unlocked=access.unlocked_tiers(event_id))
    if event is None:
        abort(404)
    # The organiser's language, for a buyer who chose none (webapp/i18n.py), read with the event.
    g.organiser_locale = event.organiser_locale
    return event


def pass_check(event_id: int) -> waiting_room.PassCheck:
    """The buyer's waiting-room pass for this event, checked without the database."""
    claim = session_user.claimed()
    return waiting_room.check_pass(request.cookies.get(waiting_room.pass_cookie_name(event_id)),
                                   user_id=claim[0] if claim else None, event_id=event_id)


def without_pass(event: Event):
    """While the event's waiting room is on: the refusal for a buyer with no valid pass, else None."""
    if not event.waiting_room:
        return None
    check = pass_check(event.id)
    if check.problem is None:
        return None
    return room_required(event.id, check.problem)


def room_required(event_id: int, problem: str) -> Response:
    """The refusal of the map, picker or reserve without a valid pass: 403, with the way back to the waiting room."""
    response = render("shop/waiting_room_required.html", "shop/_waiting_room_required.html", status=403,
                      event_id=event_id, problem=problem)
    if is_partial_request():
        # Whatever the control swapped (map, summary, picker), the answer
        # replaces the event's body: the map is not theirs to use yet.
        response.headers["HX-Retarget"] = "#event-body"
        response.headers["HX-Reswap"] = "innerHTML"
    return response


def extend_pass(response: Response, event_id: int, user_id: int, seconds_left: int) -> None:
    """Re-sign the buyer's valid pass for this event so it lasts at least `seconds_left` more (a hold's)."""
    name = waiting_room.pass_cookie_name(event_id)
    check = waiting_room.check_pass(request.cookies.get(name), user_id=user_id, event_id=event_id)
    if check.admission_id is None:
        return
    until = datetime.now(timezone.utc) + timedelta(seconds=seconds_left)
    token = waiting_room.make_pass(admission_id=check.admission_id, user_id=user_id, event_id=event_id, until=until)
    if waiting_room.pass_end(token) > waiting_room.pass_end(request.cookies[name]):
        response.set_cookie(name, token, httponly=True, samesite="Lax", secure=secure_cookies(), path="/")


def secure_cookies() -> bool:
    return bool(current_app.config.get("SESSION_COOKIE_SECURE"))
