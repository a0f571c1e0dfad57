"""Admin: attendee details of an event: names asked or not, until when they change, and the questions."""
from __future__ import annotations

from datetime import datetime

from flask import flash, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from webapp.admin import bp, load_event
from webapp.extensions import db
from webapp.htmx import redirect_to
from webapp.models import Event
from webapp.models.attendees import QUESTION_KINDS
from webapp.parsing import parse_id
from webapp.services.admin import questions
from webapp.services.errors import InvalidRequest
from webapp.timezones import NonexistentLocalTime, from_local, to_form


def _local(event: Event, value: datetime | None) -> str:
    return to_form(value, event.timezone).strftime("%Y-%m-%dT%H:%M") if value else ""


def _page(event: Event, *, status: int = 200, error: str | None = None, typed: dict | None = None):
    return render_template("admin/questions.html", event=event, questions=questions.questions_of(db.session, event.id),
                           kinds=QUESTION_KINDS, error=error, typed=typed or {},
                           edit_until=_local(event, event.attendee_edit_until),
                           transfers_until=_local(event, event.transfers_until)), status


def _venue_time(event: Event, raw: str) -> datetime | None:
    """An <input type=datetime-local> value on the venue's clock; ValueError for anything else."""
    raw = raw.strip()[:40]
    return from_local(datetime.fromisoformat(raw), event.timezone) if raw else None


@bp.get("/events/<int:event_id>/questions")
def questions_page(event_id: int):
    return _page(load_event(event_id))


@bp.post("/events/<int:event_id>/attendee-settings")
def attendee_settings(event_id: int):
    event = load_event(event_id)
    try:
        until = _venue_time(event, request.form.get("edit_until", ""))
        questions.set_attendee_settings(db.session, actor_id=current_user.id, event=event,
                                        names=request.form.get("names", ""), edit_until=until)
    except (ValueError, NonexistentLocalTime, InvalidRequest) as refused:
        db.session.rollback()
        message = getattr(refused, "message", None) or gettext("Enter the time as YYYY-MM-DD HH:MM, or leave it empty.")
        return _page(load_event(event_id), status=400, error=message)
    flash(gettext("Attendee settings saved."), "success")
    return redirect_to(url_for("admin.questions_page", event_id=event_id))


@bp.post("/events/<int:event_id>/transfer-settings")
def transfer_settings(event_id: int):
    event = load_event(event_id)
    try:
        questions.set_transfer_settings(db.session, actor_id=current_user.id, event=event,
                                        enabled=request.form.get("enabled") == "on",
                                        until=_venue_time(event, request.form.get("until", "")))
    except (ValueError, NonexistentLocalTime, InvalidRequest) as refused:
        db.session.rollback()
        message = getattr(refused, "message", None) or gettext("Enter the time as YYYY-MM-DD HH:MM, or leave it empty.")
        return _page(load_event(event_id), status=400, error=message)
    flash(gettext("Transfer settings saved."), "success")
    return redirect_to(url_for("admin.questions_page", event_id=event_id))


@bp.post("/events/<int:event_id>/questions")
def question_create(event_id: int):
    event = load_event(event_id)
    form = request.form
    tier_raw = form.get("tier_id", "")
    try:
        tier_id = parse_id(tier_raw) if tier_raw else None
        if tier_raw and tier_id is None:
            raise InvalidRequest(gettext("That tier is not one of this event's."))
        questions.add_question(db.session, actor_id=current_user.id, event_id=event.id, label=form.get("label", ""),
                               kind=form.get("kind", ""), options=form.get("options", "")[:5000].splitlines(),
                               required=form.get("required") == "on", per_ticket=form.get("per") != "order",
                               tier_id=tier_id)
    except InvalidRequest as refused:
        db.session.rollback()
        return _page(load_event(event_id), status=400, error=refused.message,
                     typed={k: form.get(k, "")[:5000] for k in ("label", "kind", "options", "tier_id", "per")})
    flash(gettext("Question added."), "success")
    return redirect_to(url_for("admin.questions_page", event_id=event_id))


@bp.post("/events/<int:event_id>/questions/<int:question_id>/delete")
def question_delete(event_id: int, question_id: int):
    load_event(event_id)
    questions.delete_question(db.session, actor_id=current_user.id, event_id=event_id, question_id=question_id)
    flash(gettext("Question removed; answers already given are kept."), "info")
    return redirect_to(url_for("admin.questions_page", event_id=event_id))
