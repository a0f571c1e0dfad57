"""Admin: an event's waiting room: turn it on with its rules, and steer it live (rate, pause, open the gate)."""
from __future__ import annotations

from datetime import datetime

from flask import flash, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from webapp.admin import bp, load_event
from webapp.extensions import db
from webapp.htmx import redirect_to, render
from webapp.parsing import parse_int
from webapp.services import audit
from webapp.services.admin import waiting_room as admin_waiting_room
from webapp.services.errors import InvalidRequest
from webapp.services.waiting import waiting_room
from webapp.timezones import from_local, to_form

SETTINGS = ("enabled", "sale_starts_at", "admit_per_minute", "max_shoppers", "pass_minutes", "paused", "gate_open",
            "challenge_difficulty", "places_per_address", "flagged_wait_forever")


def _optional_count(name: str, what: str, maximum: int = 100000) -> int | None:
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    value = parse_int(raw, minimum=1, maximum=maximum)
    if value is None:
        raise InvalidRequest(gettext("%(what)s must be a whole number between 1 and %(most)s.",
                                     what=what, most=f"{maximum:,}"))
    return value


def _challenge_difficulty() -> int:
    raw = request.form.get("challenge_difficulty", "").strip()
    value = parse_int(raw, minimum=0, maximum=1_000_000) if raw else 0
    if value is None:
        raise InvalidRequest(
            gettext("The proof of work's difficulty must be a whole number from 0 (none) to 1,000,000."))
    return value


def _panel_context(event):
    panel = admin_waiting_room.panel(db.session, event.id)
    starts = to_form(panel.room.sale_starts_at, event.timezone) if panel else None
    return dict(event=event, panel=panel, sale_start_value=starts.strftime("%Y-%m-%dT%H:%M") if starts else "",
                proposed_difficulty=waiting_room.PROPOSED_CHALLENGE_DIFFICULTY,
                proposed_places_per_address=waiting_room.PROPOSED_PLACES_PER_ADDRESS)


@bp.get("/events/<int:event_id>/waiting-room")
def waiting_room_page(event_id: int):
    event = load_event(event_id)
    return render_template("admin/waiting_room.html", **_panel_context(event))


@bp.get("/events/<int:event_id>/waiting-room/live")
def waiting_room_live(event_id: int):
    """The live numbers, polled by the page."""
    event = load_event(event_id)
    return render("admin/waiting_room.html", "admin/_waiting_room_live.html", **_panel_context(event))


@bp.post("/events/<int:event_id>/waiting-room")
def waiting_room_save(event_id: int):
    event = load_event(event_id)
    try:
        naive = datetime.strptime(request.form.get("sale_starts_at", "").strip(), "%Y-%m-%dT%H:%M")
    except ValueError:
        raise InvalidRequest(gettext("Enter the sale start as a date and time, e.g. 2027-05-01T10:00.")) from None
    before = waiting_room.room_for(db.session, event.id)
    snapshot = audit.snapshot(before, SETTINGS) if before else None
    room = waiting_room.configure(
        db.session, event, enabled=request.form.get("enabled") == "1",
        sale_starts_at=from_local(naive, event.timezone),
        admit_per_minute=_optional_count("admit_per_minute", gettext("The admission rate")),
        max_shoppers=_optional_count("max_shoppers", gettext("The cap on shoppers")),
        pass_minutes=float(_optional_count("pass_minutes", gettext("A pass's minutes")) or 10),
        challenge_difficulty=_challenge_difficulty(),
        places_per_address=_optional_count("places_per_address", gettext("The places per address"), maximum=10000),
        flagged_wait_forever=request.form.get("flagged_wait_forever") == "1")
    audit.record(db.session, actor_id=current_user.id, action="waiting_room.configure", entity="waiting_room",
                 entity_id=event.id, event_id=event.id, before=snapshot, after=audit.snapshot(room, SETTINGS))
    flash(gettext("The waiting room is on.") if room.enabled else gettext("The waiting room is off."), "success")
    return redirect_to(url_for("admin.waiting_room_page", event_id=event.id))


@bp.post("/events/<int:event_id>/waiting-room/control")
def waiting_room_control(event_id: int):
    """Pause, resume, open the gate to everyone, close it again, or set the rate."""
    event = load_event(event_id)
    action = request.form.get("action", "")
    changes: dict = {
        "pause": {"paused": True}, "resume": {"paused": False},
        "open_gate": {"gate_open": True}, "close_gate": {"gate_open": False},
    }.get(action, {})
    if action == "rate":
        changes = {"admit_per_minute": _optional_count("admit_per_minute", gettext("The admission rate"))}
        if changes["admit_per_minute"] is None:
            raise InvalidRequest(gettext("Enter the number of buyers to let in per minute."))
    if not changes:
        raise InvalidRequest(gettext("Unknown action."))
    before = waiting_room.room_for(db.session, event.id)
    snapshot = audit.snapshot(before, SETTINGS) if before else None
    room = waiting_room.control(db.session, event, **changes)
    audit.record(db.session, actor_id=current_user.id, action=f"waiting_room.{action}", entity="waiting_room",
                 entity_id=event.id, event_id=event.id, before=snapshot, after=audit.snapshot(room, SETTINGS))
    return render("admin/waiting_room.html", "admin/_waiting_room_live.html", **_panel_context(event))
