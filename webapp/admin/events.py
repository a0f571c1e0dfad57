"""Admin: events (create, edit, duplicate, delete, open and close sales, cancel), their dashboard and tiers."""
from __future__ import annotations

import logging

from flask import abort, flash, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from webapp.admin import bp, load_event, load_tier
from webapp.admin.chart import sales_chart
from webapp.admin.forms import EventForm, ReasonForm, TierForm
from webapp.extensions import db
from webapp.htmx import redirect_to, render
from webapp.models import Event, EventStatus, Tier
from webapp.services.admin import events as admin_events
from webapp.services.admin import reports as admin_reports
from webapp.services.errors import BookingError
from webapp.services.money import tax
from webapp.services.money.gateway import payment_gateway

log = logging.getLogger(__name__)


@bp.get("/")
def events():
    rows = admin_reports.all_events(db.session)
    return render_template("admin/events.html", events=rows)


@bp.get("/events/new")
def event_new():
    return render_template("admin/event_form.html", form=EventForm(creating=True), event=None)


@bp.post("/events/new")
def event_create():
    form = EventForm(creating=True)
    if not form.validate_on_submit():
        return render_template("admin/event_form.html", form=form, event=None), 400
    event = admin_events.create_event(db.session, actor_id=current_user.id, **form.values())
    flash(gettext("“%(title)s” was created as a draft. Add its tiers next.", title=event.title), "success")
    return redirect_to(url_for("admin.tiers", event_id=event.id))


@bp.post("/events/validate/<field>")
def event_validate(field: str):
    """Inline validation of one event field, with the submit path's form."""
    form = EventForm(creating=request.args.get("creating") == "1")
    if field not in form._fields or field == "csrf_token":
        abort(404)
    form.validate()
    return render_template("auth/_field_errors.html", errors=form[field].errors, field=field)


@bp.get("/events/<int:event_id>")
def dashboard(event_id: int):
    event = load_event(event_id)
    stats = admin_reports.dashboard(db.session, event)
    unit, series = admin_reports.sales_series(db.session, event.id)
    return render("admin/dashboard.html", "admin/_stats.html", event=event, stats=stats,
                  chart=sales_chart(series, unit))


@bp.get("/events/<int:event_id>/edit")
def event_edit(event_id: int):
    event = load_event(event_id)
    form = EventForm(obj=event)
    form.show_event(event)
    return render_template("admin/event_form.html", form=form, event=event)


@bp.post("/events/<int:event_id>/edit")
def event_update(event_id: int):
    event = load_event(event_id)
    form = EventForm()
    if not form.validate_on_submit():
        return render_template("admin/event_form.html", form=form, event=event), 400
    admin_events.update_event(db.session, actor_id=current_user.id, event_id=event.id, **form.values())
    flash(gettext("Event details saved."), "success")
    return redirect_to(url_for("admin.dashboard", event_id=event.id))


@bp.post("/events/<int:event_id>/duplicate")
def event_duplicate(event_id: int):
    load_event(event_id)
    copy = admin_events.duplicate_event(db.session, actor_id=current_user.id, event_id=event_id)
    flash(gettext("Duplicated as the draft “%(title)s”, with the same tiers and layout and nothing sold.",
                  title=copy.title),
          "success")
    return redirect_to(url_for("admin.event_edit", event_id=copy.id))


@bp.post("/events/<int:event_id>/delete")
def event_delete(event_id: int):
    event = load_event(event_id)
    title = event.title
    admin_events.delete_event(db.session, actor_id=current_user.id, event_id=event.id)
    flash(gettext("“%(title)s” was deleted.", title=title), "success")
    return redirect_to(url_for("admin.events"))


@bp.post("/events/<int:event_id>/status")
def event_status(event_id: int):
    load_event(event_id)
    try:
        status = EventStatus(request.form.get("status", ""))
    except ValueError:
        abort(400, gettext("Unknown status."))
    event = admin_events.change_status(db.session, actor_id=current_user.id, event_id=event_id, status=status)
    flash({EventStatus.ON_SALE: gettext("Sales are open."), EventStatus.CLOSED: gettext("Sales are closed.")}.get(
        event.status, gettext("Status changed.")), "success")
    return redirect_to(url_for("admin.dashboard", event_id=event_id))


@bp.get("/events/<int:event_id>/cancel")
def event_cancel_confirm(event_id: int):
    event = load_event(event_id)
    return render_template("admin/cancel_event.html", event=event, form=ReasonForm(),
                           stats=admin_reports.dashboard(db.session, event))


@bp.post("/events/<int:event_id>/cancel")
def event_cancel(event_id: int):
    event = load_event(event_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        return render_template("admin/cancel_event.html", event=event, form=form,
                               stats=admin_reports.dashboard(db.session, event)), 400
    summary = admin_events.cancel_event(db.session, payment_gateway(), actor_id=current_user.id,
                                        event_id=event.id, reason=form.reason.data.strip())
    log.info("event.cancelled", extra={"event_id": event_id, "orders": summary.orders})
    flash(gettext("The event is cancelled: %(orders)s orders refunded, %(holds)s reservations released, "
                  "%(waiting)s people removed from the waiting list.",
                  orders=summary.orders, holds=summary.holds, waiting=summary.waiting), "success")
    return redirect_to(url_for("admin.dashboard", event_id=event_id))


def _tier_form(tier: Tier, formdata=None) -> TierForm:
    # The request itself is CSRF-checked by CSRFProtect; the per-tier prefix keeps field ids unique.
    form = TierForm(formdata=formdata, prefix=f"t{tier.id}", meta={"csrf": False})
    if formdata is None:
        form.kind.data = "seated" if tier.seated else "general"
        form.name.data, form.colour.data, form.capacity.data = tier.name, tier.colour, tier.capacity
        # As the organiser entered it: net for a tax-exclusive tier.
        form.price.data = tax.price_entered(tier.price_minor, tier.tax_rate_bp, inclusive=tier.tax_inclusive) / 100
        form.hidden.data = tier.hidden
        form.tax_rate.data = tier.tax_rate_bp / 100
        form.tax_exclusive.data = not tier.tax_inclusive
    return form


def _new_tier_form(event: Event) -> TierForm:
    return TierForm(formdata=None, colour=admin_events.suggest_tier_colour(event))


@bp.get("/events/<int:event_id>/tiers")
def tiers(event_id: int):
    event = load_event(event_id)
    counts = admin_reports.dashboard(db.session, event)
    return render_template("admin/tiers.html", event=event, stats=counts, new_form=_new_tier_form(event),
                           forms={t.id: _tier_form(t) for t in event.tiers})


@bp.post("/events/<int:event_id>/tiers")
def tier_create(event_id: int):
    event = load_event(event_id)
    form = TierForm()
    status = 400
    if form.validate_on_submit():
        try:
            tier = admin_events.add_tier(db.session, actor_id=current_user.id, event_id=event.id,
                                         seated=form.kind.data == "seated", name=form.name.data.strip(),
                                         price_minor=form.price_minor, colour=form.colour.data,
                                         capacity=form.capacity.data or 0, hidden=form.hidden.data,
                                         tax_rate_bp=form.tax_rate_bp, tax_inclusive=not form.tax_exclusive.data)
            status = 200
        except BookingError as refused:
            db.session.rollback()
            status = refused.status_code
            # Beside the field it is about: the hidden box (a seated tier), else the name (a clash and the rest).
            target = form.hidden if form.hidden.data and form.kind.data == "seated" else form.name
            target.errors = [*target.errors, refused.message]
    if status != 200:
        event = load_event(event_id)
        return render_template("admin/tiers.html", event=event, stats=admin_reports.dashboard(db.session, event),
                               new_form=form, forms={t.id: _tier_form(t) for t in event.tiers}), status
    flash(gettext("Tier “%(tier)s” added. Now generate its seats in the layout editor.", tier=tier.name) if tier.seated
          else gettext("Tier “%(tier)s” added.", tier=tier.name), "success")
    return redirect_to(url_for("admin.layout" if tier.seated else "admin.tiers", event_id=event.id))


@bp.post("/events/<int:event_id>/tiers/<int:tier_id>")
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
                capacity=None if tier.seated else form.capacity.data, hidden=form.hidden.data,
                tax_rate_bp=form.tax_rate_bp, tax_inclusive=not form.tax_exclusive.data,
            )
            # Committed before the counts are read: every reserve of the event waits on its row lock.
            db.session.commit()
            message = gettext("Saved.")
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
def tier_delete(event_id: int, tier_id: int):
    event = load_event(event_id)
    tier = load_tier(event, tier_id)
    name = tier.name
    admin_events.delete_tier(db.session, actor_id=current_user.id, event_id=event.id, tier_id=tier.id)
    flash(gettext("Tier “%(tier)s” deleted.", tier=name), "success")
    return redirect_to(url_for("admin.tiers", event_id=event_id))
