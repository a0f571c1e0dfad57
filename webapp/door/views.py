"""Door pages: the staff member's events, and one event's scan-and-verdict page.

Views stay thin: who may see the event is `door.may_check_in`, the check-in is
`checkin.check_in` (one conditional UPDATE: phones at one door admit a ticket
once), the count is `door.count`.
"""
from __future__ import annotations

from flask import abort, render_template
from flask_login import current_user, login_required

from webapp.admin.forms import CheckInForm
from webapp.door import bp
from webapp.extensions import db
from webapp.htmx import render
from webapp.models import Event
from webapp.services.admin import checkin, door


def _door_event(event_id: int) -> Event:
    event = db.session.get(Event, event_id)
    if event is None:
        abort(404)
    if not current_user.is_admin and not door.may_check_in(db.session, user_id=current_user.id, event_id=event.id):
        abort(404)
    return event


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
