"""Event management for admins: one module per area, all behind one guard.

Someone in no organiser's team gets 404 for every admin URL, so the area
cannot be discovered; a member whose role does not reach a route gets 403
(webapp/organiser_guard.py).
Views stay thin: parse, load-or-404, one service call, render; the request commits. The
services in `admin_events`, `admin_orders`, `admin_reports`,
`admin_waitlist`, `checkin`, `export` and `audit` do the work and write the
audit entries.
"""
from __future__ import annotations

from flask import Blueprint, abort, request

from webapp import organiser_guard
from webapp.admin import words
from webapp.extensions import db
from webapp.models import Event, Tier
from webapp.services import organiser_scope
from webapp.services.admin import reports as admin_reports
from webapp.services.people.organisers import memberships

bp = Blueprint("admin", __name__)


@bp.before_request
def organiser_members_only() -> None:
    """The one guard of the admin area, every route present and future: the organiser, the role, the ids."""
    organiser_guard.admit_page(request.endpoint or "", request.view_args or {})


@bp.teardown_request
def leave_the_organiser(_error: BaseException | None) -> None:
    # The session may outlive the request (a test's app context): it must not stay walled in.
    organiser_scope.leave(db.session)


@bp.context_processor
def role_links() -> dict:
    return {"may_reach": organiser_guard.may_reach, "my_organisers": _my_organisers, "say": words.say}


def _my_organisers():
    from flask_login import current_user

    return memberships(db.session, user_id=current_user.id, is_admin=current_user.is_admin)


def load_event(event_id: int) -> Event:
    event = admin_reports.event_with_tiers(db.session, event_id)
    if event is None:
        abort(404)
    return event


def load_tier(event: Event, tier_id: int) -> Tier:
    tier = next((t for t in event.tiers if t.id == tier_id), None)
    if tier is None:
        abort(404)
    return tier


from webapp.admin import (  # noqa: E402,F401
    audit,
    box_office,
    checkin,
    codes,
    devmail,
    disputes,
    events,
    invoices,
    layout,
    mail,
    orders,
    organisers,
    payments,
    questions,
    waiting_room,
    waitlist,
    webhooks,
)
