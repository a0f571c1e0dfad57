"""The one check of every admin area: who acts for which organiser, and may they reach this route.

Each admin area calls it once per request, before its view: the admin pages
from their blueprint's `before_request`, the admin API from its token check
(api/routing.py). It answers 404 to anyone who is in no team (the area
cannot be discovered), 403 to a member whose role does not reach the route,
and 404 for any id in the URL that is not the organiser's (or, for a member
limited to some events, not one of theirs). Then it scopes the database
session to the organiser (services/organiser_scope.py), so the views and
the services below them see nothing else.

What each route needs is `NEEDS`, by endpoint name; a route not listed needs
`settings`, so a new route is an owner's until someone says otherwise.
"""
from __future__ import annotations

from flask import abort, g, session

from webapp.extensions import db
from webapp.services import organiser_scope
from webapp.services.people import organisers
from webapp.services.people.organisers import Acting  # noqa: F401  (the type callers get)

# Session key of the organiser the user chose to act for.
CHOSEN = "organiser_id"

# Every role may enter the area and pick among its organisers; `platform` is for platform administrators.
_ENTER = "enter"
_PLATFORM = "platform"
NEEDS: dict[str, str] = {
    # The landing page lists what the role reaches (events, or only their check-in).
    "events": _ENTER, "organiser_switch": _ENTER,
    "organisers_page": _PLATFORM, "organiser_create": _PLATFORM,
    **dict.fromkeys(("dashboard", "tiers", "layout", "codes_page", "codes_csv", "code_edit", "waitlist",
                     "waiting_room_page", "waiting_room_live", "export_attendees", "events_all", "event_get",
                     "event_stats", "attendees", "sales_chart", "invoices", "export_invoices", "questions_page"),
                  "view"),
    **dict.fromkeys(("event_new", "event_create", "event_validate", "event_edit", "event_update",
                     "event_duplicate", "event_delete", "event_status", "event_cancel_confirm", "event_cancel",
                     "tier_create", "tier_update", "tier_delete", "layout_preview", "layout_generate",
                     "section_delete", "seat_toggle", "code_create", "codes_generate", "code_update",
                     "code_set_active", "waiting_room_save", "waiting_room_control", "waitlist_remove",
                     "seat_properties", "best_available_settings", "attendee_settings", "transfer_settings",
                     "question_create", "question_delete"), "events"),
    **dict.fromkeys(("orders", "order", "orders_search", "order_document", "order_attendees", "order_resend",
                     "box_office_tickets"), "orders"),
    **dict.fromkeys(("box_office_page", "box_office_event", "box_office_sell"), "sell"),
    **dict.fromkeys(("order_cancel", "order_refund"), "refund"),
    **dict.fromkeys(("checkin_page", "checkin_post", "check_in"), "check_in"),
}


def need_of(endpoint: str) -> str:
    return NEEDS.get(endpoint.rsplit(".", 1)[-1], "settings")


def admit(*, user_id: int, is_admin: bool, wanted: int | None, endpoint: str, arguments: dict,
          member_role: str | None = None) -> Acting:
    """The actor of this request, with the session scoped to its organiser; aborts with 404 or 403.

    `member_role`: an API token's role, which caps the member's (a token never does more than its maker could).
    """
    actor = organisers.acting(db.session, user_id=user_id, is_admin=is_admin, wanted=wanted)
    if actor is None or (member_role is not None and actor.organiser_id != wanted):
        # A token of an organiser its maker has left reaches nothing.
        abort(404)
    if member_role is not None:
        try:
            actor = actor.capped(member_role)
        except organisers.NotFound:
            abort(404)
    need = need_of(endpoint)
    if need == _PLATFORM:
        if not actor.platform_admin:
            abort(404)
    elif need != _ENTER and not actor.may(need):
        abort(403)
    if not organisers.reaches(actor, db.session, arguments):
        abort(404)
    organiser_scope.enter(db.session, actor.organiser_id, actor.event_ids, platform=actor.platform_admin)
    g.acting = actor
    return actor


def admit_page(endpoint: str, arguments: dict) -> Acting:
    from flask_login import current_user

    if not current_user.is_authenticated:
        abort(404)
    return admit(user_id=current_user.id, is_admin=current_user.is_admin, wanted=session.get(CHOSEN),
                 endpoint=endpoint, arguments=arguments)


def acting() -> Acting:
    """Who the current admin request acts for (set by `admit`)."""
    return g.acting


def may_reach(endpoint: str) -> bool:
    """Whether the current actor's role reaches this route (for hiding the links it would refuse)."""
    need, actor = need_of(endpoint), g.get("acting")
    if actor is None:
        return False
    if need == _PLATFORM:
        return actor.platform_admin
    return need == _ENTER or actor.may(need)


def admit_door(user, arguments: dict) -> None:
    """The door area's one check (the phone pages, `/door`), before any view: a route naming an event is for a
    platform administrator, or a member of its organiser whose role checks in, for all its events or this one;
    anyone else gets 404, as in the admin area. The door spans every organiser the user checks in for, so no
    organiser is chosen here. Anonymous visitors pass to the views, whose login_required sends them to log in.
    """
    from webapp.models import Event
    from webapp.services.admin import door

    if not user.is_authenticated or "event_id" not in arguments:
        return
    event_id = arguments["event_id"]
    if user.is_admin:
        if db.session.get(Event, event_id) is None:
            abort(404)
    elif not door.may_check_in(db.session, user_id=user.id, event_id=event_id):
        abort(404)
