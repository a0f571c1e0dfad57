"""Admin pages. A non-admin gets 404, so the admin area cannot be discovered.

Views stay thin: parse, load-or-404, one service call, commit, render. The
services in `admin_events`, `admin_orders`, `checkin`, `export` and `audit`
do the work and write the audit entries.
"""
from __future__ import annotations

import logging
from functools import wraps

from flask import abort, flash, render_template, request, stream_with_context, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from webapp.admin import bp
from webapp.admin.chart import sales_chart
from webapp.admin.forms import CheckInForm, EventForm, LayoutForm, ReasonForm, TierForm
from webapp.checkout.views import payment_gateway
from webapp.extensions import db
from webapp.htmx import is_partial_request, redirect_to, render
from webapp.models import Event, EventStatus, Tier, WaitlistEntry
from webapp.services import (
    admin_events,
    admin_orders,
    admin_reports,
    admin_waitlist,
    audit,
    checkin,
    events as event_service,
    export,
)
from webapp.services import waitlist as waitlist_service
from webapp.services.errors import BookingError

log = logging.getLogger(__name__)


def admin_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated or not current_user.is_admin:
            abort(404)
        return view(*args, **kwargs)

    return wrapped


def load_event(event_id: int) -> Event:
    event = db.session.scalars(
        select(Event).where(Event.id == event_id).options(selectinload(Event.tiers))
    ).first()
    if event is None:
        abort(404)
    return event


def load_tier(event: Event, tier_id: int) -> Tier:
    tier = next((t for t in event.tiers if t.id == tier_id), None)
    if tier is None:
        abort(404)
    return tier


# Events ---------------------------------------------------------------------

@bp.get("/")
@admin_required
def events():
    rows = db.session.scalars(select(Event).order_by(Event.starts_at).options(selectinload(Event.tiers))).all()
    return render_template("admin/events.html", events=rows)


@bp.get("/events/new")
@admin_required
def event_new():
    return render_template("admin/event_form.html", form=EventForm(creating=True), event=None)


@bp.post("/events/new")
@admin_required
def event_create():
    form = EventForm(creating=True)
    if not form.validate_on_submit():
        return render_template("admin/event_form.html", form=form, event=None), 400
    event = admin_events.create_event(db.session, actor_id=current_user.id, **form.values())
    db.session.commit()
    flash(f"“{event.title}” was created as a draft. Add its tiers next.", "success")
    return redirect_to(url_for("admin.tiers", event_id=event.id))


@bp.post("/events/validate/<field>")
@admin_required
def event_validate(field: str):
    """Inline validation of one event field, with the submit path's form."""
    form = EventForm(creating=request.args.get("creating") == "1")
    if field not in form._fields or field == "csrf_token":
        abort(404)
    form.validate()
    return render_template("auth/_field_errors.html", errors=form[field].errors, field=field)


@bp.get("/events/<int:event_id>")
@admin_required
def dashboard(event_id: int):
    event = load_event(event_id)
    stats = admin_reports.dashboard(db.session, event)
    unit, series = admin_reports.sales_series(db.session, event.id)
    return render("admin/dashboard.html", "admin/_stats.html", event=event, stats=stats,
                  chart=sales_chart(series, unit))


@bp.get("/events/<int:event_id>/edit")
@admin_required
def event_edit(event_id: int):
    event = load_event(event_id)
    form = EventForm(obj=event)
    form.show_event(event)
    return render_template("admin/event_form.html", form=form, event=event)


@bp.post("/events/<int:event_id>/edit")
@admin_required
def event_update(event_id: int):
    event = load_event(event_id)
    form = EventForm()
    if not form.validate_on_submit():
        return render_template("admin/event_form.html", form=form, event=event), 400
    admin_events.update_event(db.session, actor_id=current_user.id, event_id=event.id, **form.values())
    db.session.commit()
    flash("Event details saved.", "success")
    return redirect_to(url_for("admin.dashboard", event_id=event.id))


@bp.post("/events/<int:event_id>/duplicate")
@admin_required
def event_duplicate(event_id: int):
    load_event(event_id)
    copy = admin_events.duplicate_event(db.session, actor_id=current_user.id, event_id=event_id)
    db.session.commit()
    flash(f"Duplicated as the draft “{copy.title}”, with the same tiers and layout and nothing sold.", "success")
    return redirect_to(url_for("admin.event_edit", event_id=copy.id))


@bp.post("/events/<int:event_id>/delete")
@admin_required
def event_delete(event_id: int):
    event = load_event(event_id)
    title = event.title
    admin_events.delete_event(db.session, actor_id=current_user.id, event_id=event.id)
    db.session.commit()
    flash(f"“{title}” was deleted.", "success")
    return redirect_to(url_for("admin.events"))


@bp.post("/events/<int:event_id>/status")
@admin_required
def event_status(event_id: int):
    load_event(event_id)
    try:
        status = EventStatus(request.form.get("status", ""))
    except ValueError:
        abort(400, "Unknown status.")
    event = admin_events.change_status(db.session, actor_id=current_user.id, event_id=event_id, status=status)
    db.session.commit()
    flash({EventStatus.ON_SALE: "Sales are open.", EventStatus.CLOSED: "Sales are closed."}.get(
        event.status, "Status changed."), "success")
    return redirect_to(url_for("admin.dashboard", event_id=event_id))


@bp.get("/events/<int:event_id>/cancel")
@admin_required
def event_cancel_confirm(event_id: int):
    event = load_event(event_id)
    return render_template("admin/cancel_event.html", event=event, form=ReasonForm(),
                           stats=admin_reports.dashboard(db.session, event))


@bp.post("/events/<int:event_id>/cancel")
@admin_required
def event_cancel(event_id: int):
    event = load_event(event_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        return render_template("admin/cancel_event.html", event=event, form=form,
                               stats=admin_reports.dashboard(db.session, event)), 400
    summary = admin_events.cancel_event(db.session, payment_gateway(), actor_id=current_user.id,
                                        event_id=event.id, reason=form.reason.data.strip())
    db.session.commit()
    log.info("event.cancelled", extra={"event_id": event_id, "orders": summary.orders})
    flash(f"The event is cancelled: {summary.orders} orders refunded, {summary.holds} reservations released, "
          f"{summary.waiting} people removed from the waiting list.", "success")
    return redirect_to(url_for("admin.dashboard", event_id=event_id))


# Tiers ----------------------------------------------------------------------

def _tier_form(tier: Tier, formdata=None) -> TierForm:
    # The request itself is CSRF-checked by CSRFProtect; the per-tier prefix keeps field ids unique.
    form = TierForm(formdata=formdata, prefix=f"t{tier.id}", meta={"csrf": False})
    if formdata is None:
        form.kind.data = "seated" if tier.seated else "general"
        form.name.data, form.colour.data, form.capacity.data = tier.name, tier.colour, tier.capacity
        form.price.data = tier.price_minor / 100
    return form


# Each new tier gets a colour of its own, so row ranges stand apart on the map.
PALETTE = ("#b45309", "#2563eb", "#059669", "#7c3aed", "#db2777", "#0d9488", "#ca8a04", "#4b5563")


def _new_tier_form(event: Event) -> TierForm:
    return TierForm(formdata=None, colour=PALETTE[len(event.tiers) % len(PALETTE)])


@bp.get("/events/<int:event_id>/tiers")
@admin_required
def tiers(event_id: int):
    event = load_event(event_id)
    counts = admin_reports.dashboard(db.session, event)
    return render_template("admin/tiers.html", event=event, stats=counts, new_form=_new_tier_form(event),
                           forms={t.id: _tier_form(t) for t in event.tiers})


@bp.post("/events/<int:event_id>/tiers")
@admin_required
def tier_create(event_id: int):
    event = load_event(event_id)
    form = TierForm()
    if not form.validate_on_submit():
        return render_template("admin/tiers.html", event=event, stats=admin_reports.dashboard(db.session, event),
                               new_form=form, forms={t.id: _tier_form(t) for t in event.tiers}), 400
    tier = admin_events.add_tier(db.session, actor_id=current_user.id, event_id=event.id,
                                 seated=form.kind.data == "seated", name=form.name.data.strip(),
                                 price_minor=form.price_minor, colour=form.colour.data, capacity=form.capacity.data or 0)
    db.session.commit()
    flash(f"Tier “{tier.name}” added." + (" Now generate its seats in the layout editor." if tier.seated else ""),
          "success")
    return redirect_to(url_for("admin.layout" if tier.seated else "admin.tiers", event_id=event.id))


@bp.post("/events/<int:event_id>/tiers/<int:tier_id>")
@admin_required
def tier_update(event_id: int, tier_id: int):
    event = load_event(event_id)
    tier = load_tier(event, tier_id)
    form = _tier_form(tier, request.form)
    form.kind.data = "seated" if tier.seated else "general"
    status, message = 200, None
    if not form.validate_on_submit():
        status = 400
    else:
        try:
            admin_events.update_tier(
                db.session, actor_id=current_user.id, event_id=event.id, tier_id=tier.id,
                name=form.name.data.strip(), price_minor=form.price_minor, colour=form.colour.data,
                capacity=None if tier.seated else form.capacity.data,
            )
            db.session.commit()
            message = "Saved."
        except BookingError as refused:
            # Refusals belong next to the field the admin just changed.
            db.session.rollback()
            status, message = refused.status_code, refused.message
    event = load_event(event_id)
    tier = load_tier(event, tier_id)
    counts = admin_reports.dashboard(db.session, event)
    line = next(line for line in counts.tiers if line.tier.id == tier.id)
    return render("admin/tiers.html", "admin/_tier_form.html", status=status, event=event, stats=counts,
                  tier=tier, line=line, form=form if status != 200 else _tier_form(tier), message=message,
                  ok=status == 200, new_form=_new_tier_form(event), forms={t.id: _tier_form(t) for t in event.tiers})


@bp.post("/events/<int:event_id>/tiers/<int:tier_id>/delete")
@admin_required
def tier_delete(event_id: int, tier_id: int):
    event = load_event(event_id)
    tier = load_tier(event, tier_id)
    name = tier.name
    admin_events.delete_tier(db.session, actor_id=current_user.id, event_id=event.id, tier_id=tier.id)
    db.session.commit()
    flash(f"Tier “{name}” deleted.", "success")
    return redirect_to(url_for("admin.tiers", event_id=event_id))


# Seat layout ----------------------------------------------------------------

SECTION_NAMES = ("Stalls", "Balcony", "Circle", "Gallery")


def _layout_form(event: Event, formdata=None) -> LayoutForm:
    choices = [(t.id, t.name) for t in event.tiers if t.seated]
    return LayoutForm(formdata=formdata, tier_choices=choices)


def _layout_context(event: Event, form: LayoutForm, formdata=None, preview: bool = False) -> dict:
    planned, problems = [], []
    if preview:
        form.validate()
        layout, problems = form.layout_request(formdata)
        if layout is not None:
            try:
                specs = admin_events.plan_layout(db.session, event, layout)
                planned = [seat for spec in specs for seat in event_service.plan_section(spec)]
            except BookingError as invalid:
                problems = [invalid.message]
    sections = admin_reports.seat_layout(db.session, event)
    if formdata is None:
        # Suggest a section name the event does not use yet.
        taken = {s.name for s in sections}
        form.sections.data = next(n for n in (*SECTION_NAMES, *(f"Section {i}" for i in range(1, 10_000)))
                                  if n not in taken)
    return dict(
        event=event, form=form, lines=form.range_lines(formdata), problems=problems, planned=len(planned),
        tier_by_id={t.id: t for t in event.tiers},
        preview_sections=admin_reports.seat_layout(db.session, event, planned) if planned else [],
        sections=sections,
    )


@bp.get("/events/<int:event_id>/layout")
@admin_required
def layout(event_id: int):
    event = load_event(event_id)
    return render("admin/layout.html", "admin/_layout_map.html", **_layout_context(event, _layout_form(event)))


@bp.post("/events/<int:event_id>/layout/preview")
@admin_required
def layout_preview(event_id: int):
    """The generator's live preview: what the form would create, nothing written."""
    event = load_event(event_id)
    ctx = _layout_context(event, _layout_form(event, request.form), request.form, preview=True)
    return render("admin/layout.html", "admin/_layout_preview.html", status=400 if ctx["problems"] else 200, **ctx)


@bp.post("/events/<int:event_id>/layout")
@admin_required
def layout_generate(event_id: int):
    event = load_event(event_id)
    form = _layout_form(event, request.form)
    form.validate()
    layout_request, problems = form.layout_request(request.form)
    if layout_request is None:
        ctx = _layout_context(event, form, request.form)
        return render("admin/layout.html", "admin/_layout_preview.html", status=400, **{**ctx, "problems": problems})
    try:
        created = admin_events.generate_layout(db.session, actor_id=current_user.id, event_id=event.id,
                                               request=layout_request)
    except BookingError as invalid:
        db.session.rollback()
        ctx = _layout_context(event, form, request.form)
        return render("admin/layout.html", "admin/_layout_preview.html", status=invalid.status_code,
                      **{**ctx, "problems": [invalid.message]})
    db.session.commit()
    flash(f"Created {created:,} seats.", "success")
    return redirect_to(url_for("admin.layout", event_id=event.id))


@bp.post("/events/<int:event_id>/layout/sections/delete")
@admin_required
def section_delete(event_id: int):
    load_event(event_id)
    section = request.form.get("section", "")
    removed = admin_events.remove_section(db.session, actor_id=current_user.id, event_id=event_id, section=section)
    db.session.commit()
    flash(f"Removed section “{section}” ({removed} seats).", "success")
    return redirect_to(url_for("admin.layout", event_id=event_id))


@bp.post("/events/<int:event_id>/seats")
@admin_required
def seat_toggle(event_id: int):
    """Block or unblock the seat whose button was pressed on the admin map."""
    load_event(event_id)
    action = "block" if "block" in request.form else "unblock" if "unblock" in request.form else None
    try:
        unit_id = int(request.form.get(action or "", ""))
    except ValueError:
        abort(400, "Pick a seat on the map.")
    unit = admin_events.set_seat_blocked(db.session, actor_id=current_user.id, event_id=event_id, unit_id=unit_id,
                                         blocked=action == "block")
    db.session.commit()
    label = unit.label
    event = load_event(event_id)
    if not is_partial_request():
        flash(f"{label} is now {'blocked' if action == 'block' else 'available'}.", "success")
    return render("admin/layout.html", "admin/_layout_map.html",
                  **_layout_context(event, _layout_form(event)), changed=unit_id,
                  note=f"{label} is now {'blocked' if action == 'block' else 'available'}.")


# Orders ---------------------------------------------------------------------

@bp.get("/orders")
@admin_required
def orders():
    q = request.args.get("q", "").strip()[:200]
    event_id = request.args.get("event", type=int)
    event = load_event(event_id) if event_id else None
    rows = admin_orders.search_orders(db.session, q, event_id=event_id)
    return render("admin/orders.html", "admin/_order_results.html", orders=rows, q=q, event=event)


@bp.get("/orders/<int:order_id>")
@admin_required
def order(order_id: int):
    found = admin_orders.get_order(db.session, order_id)
    return render_template("admin/order.html", order=found, payment=admin_orders.payment_of(db.session, found),
                           form=ReasonForm(), event=found.event)


@bp.post("/orders/<int:order_id>/cancel")
@admin_required
def order_cancel(order_id: int):
    found = admin_orders.get_order(db.session, order_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        return render_template("admin/order.html", order=found, payment=admin_orders.payment_of(db.session, found),
                               form=form, event=found.event), 400
    refund = request.form.get("refund") == "1"
    admin_orders.cancel_order(db.session, payment_gateway(), actor_id=current_user.id, order_id=found.id,
                              reason=form.reason.data.strip(), refund=refund)
    db.session.commit()
    log.info("order.cancelled_by_admin", extra={"order_id": order_id, "refund": refund})
    flash(f"Order #{order_id} was {'refunded' if refund else 'cancelled without refund'}; its seats are free again "
          f"(the waiting list is offered them first).", "success")
    return redirect_to(url_for("admin.order", order_id=order_id))


# Waiting list ---------------------------------------------------------------

@bp.get("/events/<int:event_id>/waitlist")
@admin_required
def waitlist(event_id: int):
    event = load_event(event_id)
    return render_template("admin/waitlist.html", event=event,
                           line=waitlist_service.line(db.session, event.id),
                           ended=admin_waitlist.recently_ended(db.session, event.id))


@bp.post("/events/<int:event_id>/waitlist/<int:entry_id>/remove")
@admin_required
def waitlist_remove(event_id: int, entry_id: int):
    load_event(event_id)
    entry = db.session.get(WaitlistEntry, entry_id)
    if entry is None or entry.event_id != event_id:
        abort(404)
    admin_waitlist.remove_entry(db.session, actor_id=current_user.id, event_id=event_id, entry_id=entry_id)
    db.session.commit()
    flash(f"Entry #{entry_id} was removed from the waiting list.", "success")
    return redirect_to(url_for("admin.waitlist", event_id=event_id))


# Export and check-in --------------------------------------------------------

@bp.get("/events/<int:event_id>/attendees.csv")
@admin_required
def export_attendees(event_id: int):
    event = load_event(event_id)
    # Personal data leaving the system is worth a line in the log.
    audit.record(db.session, actor_id=current_user.id, action="event.export", entity="event", entity_id=event.id,
                 event_id=event.id, after={"format": "csv"})
    db.session.commit()
    filename = f"attendees-event-{event.id}.csv"
    return Response(
        stream_with_context(export.attendee_csv(db.engine, event.id)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@bp.get("/events/<int:event_id>/check-in")
@admin_required
def checkin_page(event_id: int):
    event = load_event(event_id)
    return render_template("admin/checkin.html", event=event, form=CheckInForm(formdata=None), result=None,
                           recent=checkin.recent_check_ins(db.session, event.id))


CHECKIN_STATUS = {checkin.VALID: 200, checkin.ALREADY: 409, checkin.CANCELLED: 409, checkin.WRONG_EVENT: 409,
                  checkin.UNKNOWN: 404}


@bp.post("/events/<int:event_id>/check-in")
@admin_required
def checkin_post(event_id: int):
    event = load_event(event_id)
    form = CheckInForm()
    if not form.validate_on_submit():
        result = checkin.CheckInResult(checkin.UNKNOWN, "")
    else:
        result = checkin.check_in(db.session, event_id=event.id, code=form.code.data, staff_id=current_user.id)
        db.session.commit()
    return render("admin/checkin.html", "admin/_checkin_result.html", status=CHECKIN_STATUS[result.outcome],
                  event=event, form=CheckInForm(formdata=None), result=result,
                  recent=checkin.recent_check_ins(db.session, event.id))


# Audit log ------------------------------------------------------------------

@bp.get("/audit")
@admin_required
def audit_log():
    event_id = request.args.get("event", type=int)
    page = max(1, request.args.get("page", 1, type=int))
    action = request.args.get("action", "").strip()[:60]
    rows, total = audit.entries(db.session, event_id=event_id, action=action, page=page)
    event = db.session.get(Event, event_id) if event_id else None
    return render_template("admin/audit.html", entries=rows, total=total, page=page, event=event, action=action,
                           pages=max(1, -(-total // audit.PAGE_SIZE)))
