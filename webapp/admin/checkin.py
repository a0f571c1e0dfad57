"""Admin: the door: the check-in page a USB scanner types into, door staff, and the attendee CSV."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, stream_with_context, url_for
from flask_babel import gettext
from flask_login import current_user
from werkzeug.wrappers import Response

from webapp.admin import bp, load_event
from webapp.admin.forms import CheckInForm
from webapp.extensions import db
from webapp.htmx import render
from webapp.services.admin import checkin, door, door_sync, export
from webapp.services.errors import BookingError


@bp.get("/events/<int:event_id>/attendees.csv")
def export_attendees(event_id: int):
    event = load_event(event_id)
    export.record_export(db.session, actor_id=current_user.id, event_id=event.id)
    filename = f"attendees-event-{event.id}.csv"
    return Response(
        stream_with_context(export.attendee_csv(db.engine, event.id)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@bp.get("/events/<int:event_id>/check-in")
def checkin_page(event_id: int):
    event = load_event(event_id)
    return render_template("admin/checkin.html", event=event, form=CheckInForm(formdata=None), result=None,
                           recent=checkin.recent_check_ins(db.session, event.id),
                           door_staff=door.staff_of(db.session, event.id),
                           twice=door_sync.flags_of(db.session, event_id=event.id))


@bp.post("/events/<int:event_id>/check-in")
def checkin_post(event_id: int):
    event = load_event(event_id)
    form = CheckInForm()
    code = form.code.data if form.validate_on_submit() else None
    result = checkin.check_in(db.session, event_id=event.id, code=code, staff_id=current_user.id)
    return render("admin/checkin.html", "admin/_checkin_result.html", status=checkin.STATUS_CODES[result.outcome],
                  event=event, form=CheckInForm(formdata=None), result=result,
                  recent=checkin.recent_check_ins(db.session, event.id),
                  door_staff=door.staff_of(db.session, event.id),
                  twice=door_sync.flags_of(db.session, event_id=event.id))


@bp.post("/events/<int:event_id>/door-staff")
def door_staff_add(event_id: int):
    event = load_event(event_id)
    try:
        user = door.assign(db.session, event_id=event.id, email=request.form.get("email", "")[:254],
                           actor_id=current_user.id)
        flash(gettext("%(name)s can now check tickets in for this event, and see nothing else.", name=user.name),
              "success")
    except BookingError as refused:
        db.session.rollback()
        flash(refused.message, "error")
    return redirect(url_for("admin.checkin_page", event_id=event.id) + "#door-staff")


@bp.post("/events/<int:event_id>/door-staff/<int:user_id>/remove")
def door_staff_remove(event_id: int, user_id: int):
    event = load_event(event_id)
    door.unassign(db.session, event_id=event.id, user_id=user_id, actor_id=current_user.id)
    flash(gettext("Removed from the door."), "success")
    return redirect(url_for("admin.checkin_page", event_id=event.id) + "#door-staff")
