"""Admin: the seat-layout generator with its live preview, removing sections, blocking seats, seat properties
by range, and where best available measures from.

A venue over LARGE_VENUE_SEATS is shown as its plan of sections, and one
section's seats at a time (`?section=<n>`), as buyers see it: an admin page
with 60,000 seat buttons would not load either. A preview of more seats than
that draws the sections' boxes on the plan rather than their seats.
"""
from __future__ import annotations

from flask import abort, current_app, flash, request, url_for
from flask_babel import gettext, ngettext
from flask_login import current_user

from webapp.admin import bp, load_event
from webapp.admin.forms import BestAvailableForm, LayoutForm, SeatPropertyForm
from webapp.admin.words import SEAT_PROPERTY_WORDS
from webapp.extensions import db
from webapp.htmx import is_partial_request, redirect_to, render
from webapp.models import Event
from webapp.parsing import parse_id
from webapp.services.admin import events as admin_events
from webapp.services.admin import reports as admin_reports
from webapp.services.admin import seat_properties as admin_seats
from webapp.services.errors import BookingError
from webapp.services.selling import catalog, hall_layout
from webapp.services.selling import events as selling_events


def _layout_form(event: Event, formdata=None) -> LayoutForm:
    choices = [(t.id, t.name) for t in event.tiers if t.seated]
    return LayoutForm(formdata=formdata, tier_choices=choices)


def _layout_context(event: Event, form: LayoutForm, formdata=None, preview: bool = False,
                    section: int | None = None) -> dict:
    planned, problems, planned_boxes = [], [], []
    large_at = current_app.config["LARGE_VENUE_SEATS"]
    if preview:
        form.validate()
        layout, problems = form.layout_request(formdata)
        if layout is not None:
            try:
                specs = admin_events.plan_layout(db.session, event, layout)
            except BookingError as invalid:
                problems = [invalid.message]
            else:
                if sum(s.rows * s.seats_per_row for s in specs) > large_at:
                    planned_boxes = specs
                else:
                    planned = [seat for spec in specs for seat in selling_events.plan_section(spec)]
    geometry = hall_layout.for_event(db.session, event)
    plan = catalog.overview(db.session, event) if geometry.seat_count > large_at else None
    chosen = geometry.section(section) if section and plan else None
    if plan is None:
        sections = admin_reports.seat_layout(db.session, event)
    else:
        # A big venue: its plan, and the seats of the section chosen on it.
        sections = admin_reports.seat_layout(db.session, event, section=chosen.name) if chosen else []
    names = geometry.section_names
    if formdata is None:
        form.sections.data = admin_events.suggest_section_name(set(names))
    return dict(
        event=event, form=form, lines=form.range_lines(formdata), problems=problems, planned=len(planned),
        planned_boxes=planned_boxes, planned_seats=sum(s.rows * s.seats_per_row for s in planned_boxes),
        tier_by_id={t.id: t for t in event.tiers}, section_names=names, plan=plan,
        chosen=section if chosen else None,
        existing=(plan or catalog.overview(db.session, event)) if planned_boxes else None,
        preview_sections=admin_reports.seat_layout(db.session, event, planned) if planned else [],
        sections=sections,
        **_seat_properties_context(event),
    )


def _chosen_section() -> int | None:
    return parse_id(request.values.get("section"))


@bp.get("/events/<int:event_id>/layout")
def layout(event_id: int):
    event = load_event(event_id)
    return render("admin/layout.html", "admin/_layout_map.html",
                  **_layout_context(event, _layout_form(event), section=_chosen_section()))


@bp.post("/events/<int:event_id>/layout/preview")
def layout_preview(event_id: int):
    """The generator's live preview: what the form would create, nothing written."""
    event = load_event(event_id)
    ctx = _layout_context(event, _layout_form(event, request.form), request.form, preview=True)
    return render("admin/layout.html", "admin/_layout_preview.html", status=400 if ctx["problems"] else 200, **ctx)


@bp.post("/events/<int:event_id>/layout")
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
    flash(ngettext("Created %(count)s seat.", "Created %(count)s seats.", created, count=f"{created:,}"), "success")
    return redirect_to(url_for("admin.layout", event_id=event.id))


@bp.post("/events/<int:event_id>/layout/sections/delete")
def section_delete(event_id: int):
    load_event(event_id)
    section = request.form.get("section", "")
    removed = admin_events.remove_section(db.session, actor_id=current_user.id, event_id=event_id, section=section)
    flash(ngettext("Removed section “%(section)s” (%(num)d seat).",
                   "Removed section “%(section)s” (%(num)d seats).", removed,
                   section=section), "success")
    return redirect_to(url_for("admin.layout", event_id=event_id))


@bp.post("/events/<int:event_id>/seats")
def seat_toggle(event_id: int):
    """Block or unblock the seat whose button was pressed on the admin map."""
    load_event(event_id)
    action = "block" if "block" in request.form else "unblock" if "unblock" in request.form else None
    try:
        unit_id = int(request.form.get(action or "", ""))
    except ValueError:
        abort(400, gettext("Pick a seat on the map."))
    unit = admin_events.set_seat_blocked(db.session, actor_id=current_user.id, event_id=event_id, unit_id=unit_id,
                                         blocked=action == "block")
    # Committed before the seat map is read: every reserve of the event waits on its row lock.
    db.session.commit()
    label = unit.label
    done = (gettext("%(seat)s is now blocked.", seat=label) if action == "block"
            else gettext("%(seat)s is now available.", seat=label))
    event = load_event(event_id)
    if not is_partial_request():
        flash(done, "success")
        if (section := _chosen_section()) is not None:
            return redirect_to(url_for("admin.layout", event_id=event_id, section=section))
    return render("admin/layout.html", "admin/_layout_map.html",
                  **_layout_context(event, _layout_form(event), section=_chosen_section()), changed=unit_id,
                  note=done)


def _seat_properties_context(event: Event) -> dict:
    """The seat-property and best-available forms, empty (their swap target: #seat-properties)."""
    return dict(property_form=SeatPropertyForm(formdata=None), best_form=BestAvailableForm(formdata=None, data={
        "focal_x": event.focal_x, "focal_y": event.focal_y, "avoid_orphans": event.avoid_orphans}),
        property_problems=[], best_problems=[])


@bp.post("/events/<int:event_id>/layout/properties")
def seat_properties(event_id: int):
    """Give a range of seats a property (wheelchair space, companion seat, restricted view, aisle) or take it."""
    event = load_event(event_id)
    form = SeatPropertyForm(request.form)
    problems = [] if form.validate() else [e for field in form for e in field.errors]
    if not problems:
        try:
            changed = admin_seats.set_seat_property(db.session, actor_id=current_user.id, event_id=event.id,
                                                    seats=form.seat_range(), prop=form.prop.data,
                                                    on=not form.clear.data)
        except BookingError as invalid:
            db.session.rollback()
            problems = [invalid.message]
    if problems:
        return render("admin/layout.html", "admin/_seat_properties.html", status=400,
                      **{**_layout_context(event, _layout_form(event)), "property_form": form,
                         "property_problems": problems})
    words = str(SEAT_PROPERTY_WORDS[form.prop.data]).lower()
    seats = form.seat_range().words
    flash(ngettext("%(seats)s: %(num)d seat no longer marked “%(property)s”.",
                   "%(seats)s: %(num)d seats no longer marked “%(property)s”.", changed, seats=seats, property=words)
          if form.clear.data else
          ngettext("%(seats)s: %(num)d seat marked “%(property)s”.",
                   "%(seats)s: %(num)d seats marked “%(property)s”.", changed, seats=seats, property=words),
          "success")
    return redirect_to(url_for("admin.layout", event_id=event.id))


@bp.post("/events/<int:event_id>/layout/best-available")
def best_available_settings(event_id: int):
    """Place the focal point best available measures from, and switch the orphan-seat rule."""
    event = load_event(event_id)
    form = BestAvailableForm(request.form)
    problems = [] if form.validate() else [e for field in form for e in field.errors]
    if not problems:
        try:
            admin_seats.set_best_available(
                db.session, actor_id=current_user.id, event_id=event.id,
                focal_x=None if form.focal_x.data is None else float(form.focal_x.data),
                focal_y=None if form.focal_y.data is None else float(form.focal_y.data),
                avoid_orphans=form.avoid_orphans.data)
        except BookingError as invalid:
            db.session.rollback()
            problems = [invalid.message]
    if problems:
        return render("admin/layout.html", "admin/_seat_properties.html", status=400,
                      **{**_layout_context(event, _layout_form(event)), "best_form": form,
                         "best_problems": problems})
    flash(gettext("Best available now measures from the new focal point; every seat was ranked again."), "success")
    return redirect_to(url_for("admin.layout", event_id=event.id))
