"""Door pages: the member's events, and one event's scan-and-verdict page.

Views stay thin: who may see the event was settled by the area's guard (`organiser_guard.admit_door`, from
`door.may_check_in`) before the view runs; the check-in is
`checkin.check_in` (one conditional UPDATE: phones at one door admit a ticket
once), the count is `door.count`.
"""
from __future__ import annotations

from flask import current_app, jsonify, make_response, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required

from webapp.admin.forms import CheckInForm
from webapp.door import bp
from webapp.extensions import db
from webapp.htmx import render
from webapp.models import Event
from webapp.services.admin import checkin, door, door_sync
from webapp.services.errors import InvalidRequest


def _door_event(event_id: int) -> Event:
    # The guard let this user in for this event, which therefore exists.
    return db.session.get_one(Event, event_id)


@bp.get("/door")
@login_required
def events():
    return render_template("door/events.html", events=door.events_for(db.session, current_user.id))


@bp.get("/door/events/<int:event_id>")
@login_required
def event_page(event_id: int):
    event = _door_event(event_id)
    return render_template("door/page.html", event=event, result=None, checked_in_by=None,
                           tally=door.count(db.session, event.id))


@bp.post("/door/events/<int:event_id>/check-in")
@login_required
def check_in(event_id: int):
    event = _door_event(event_id)
    form = CheckInForm()
    code = form.code.data if form.validate_on_submit() else None
    result = checkin.check_in(db.session, event_id=event.id, code=code, staff_id=current_user.id)
    checked_in_by = None
    if result.outcome == checkin.ALREADY and result.ticket is not None:
        checked_in_by = door.staff_name(db.session, result.ticket.checked_in_by)
    return render("door/page.html", "door/_door_verdict.html", status=checkin.STATUS_CODES[result.outcome], event=event,
                  result=result, checked_in_by=checked_in_by, tally=door.count(db.session, event.id))


@bp.get("/door/events/<int:event_id>/codes.json")
@login_required
def code_list(event_id: int):
    """The signed list the page decides by offline: hashes only, fetched before doors and on every sync."""
    event = _door_event(event_id)
    response = jsonify(door_sync.code_list(db.session, event_id=event.id, secret=current_app.config["SECRET_KEY"]))
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/door/events/<int:event_id>/sync")
@login_required
def sync(event_id: int):
    """A device's queued offline check-ins, applied oldest first; the answer says how each went and every double
    entry the device is part of."""
    event = _door_event(event_id)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest(gettext("Send the scans as a JSON object."))
    door_sync.check_list(current_app.config["SECRET_KEY"], event_id=event.id, issued_at=body.get("issued_at"),
                         digest=body.get("digest"), signature=body.get("signature"))
    answer = door_sync.sync(db.session, event_id=event.id, device=str(body.get("device") or ""),
                            scans=door_sync.parse_scans(body.get("scans")), staff_id=current_user.id)
    return jsonify(answer)


@bp.get("/door/manifest.webmanifest")
def manifest():
    """What makes the door installable on a phone's home screen."""
    response = jsonify({
        "name": "Ticketbooth door", "short_name": "Door", "start_url": url_for("door.events"), "scope": "/door/",
        "display": "standalone", "background_color": "#111827", "theme_color": "#1f1b4d",
        "icons": [{"src": url_for("static", filename="favicon.svg"), "sizes": "any", "type": "image/svg+xml"}],
    })
    response.mimetype = "application/manifest+json"
    return response


@bp.get("/door/sw.js")
def service_worker():
    """Served from /door/ so that its scope is the door's pages: they open without a network once visited."""
    response = make_response(render_template("door/sw.js", assets=[
        url_for("static", filename=name) for name in ("door.css", "door.js", "door_offline.js", "app.css",
                                                      "htmx.min.js", "vendor/jsqr-1.4.0/jsQR.js", "favicon.svg")]))
    response.mimetype = "text/javascript"
    response.headers["Cache-Control"] = "no-cache"
    return response
