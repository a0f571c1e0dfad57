"""Admin: the box office: find an order, sell at the door (paid in person), print the tickets, resend them."""
from __future__ import annotations

from flask import flash, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from webapp.admin import bp, load_event
from webapp.extensions import db
from webapp.htmx import redirect_to
from webapp.parsing import parse_id
from webapp.services.admin import box_office
from webapp.services.admin import orders as admin_orders
from webapp.services.errors import BookingError, InvalidRequest
from webapp.services.money.checkout_read import qr_svg
from webapp.services.selling import inventory
from webapp.templating import money


@bp.get("/box-office")
def box_office_page():
    return render_template("admin/box_office.html", events=box_office.events_on_sale(db.session))


def _sell_page(event, status: int = 200, **extra):
    return render_template("admin/box_office_sell.html", event=event,
                           tiers=box_office.sellable_tiers(db.session, event.id),
                           counts=inventory.tier_counts(db.session, event.id),
                           paid_with=box_office.PAID_WITH, **extra), status


@bp.get("/box-office/events/<int:event_id>")
def box_office_event(event_id: int):
    return _sell_page(load_event(event_id))


def _counts_typed() -> dict[int, int] | None:
    """The form's `tier-<id>` quantities; None when one is not a whole number."""
    counts: dict[int, int] = {}
    for key, raw in request.form.items():
        if not key.startswith("tier-") or not raw.strip():
            continue
        tier_id, n = parse_id(key[5:]), parse_id(raw.strip())
        if tier_id is None or n is None:
            return None
        counts[tier_id] = n
    return counts


@bp.post("/box-office/events/<int:event_id>")
def box_office_sell(event_id: int):
    event = load_event(event_id)
    counts = _counts_typed()
    typed = dict(typed_counts=counts or {}, chosen=request.form.get("paid_with", ""),
                 email=request.form.get("email", "")[:254])
    try:
        if counts is None:
            raise InvalidRequest(gettext("Type how many tickets as whole numbers."))
        order = box_office.sell(db.session, clerk_id=current_user.id, event_id=event.id, counts=counts,
                                paid_with=request.form.get("paid_with", ""), buyer_email=request.form.get("email"))
    except BookingError as refused:
        db.session.rollback()
        return _sell_page(load_event(event_id), refused.status_code, error=refused.message, **typed)
    flash(gettext("Order #%(id)s sold and paid (%(total)s).", id=order.id,
                  total=money(order.total_minor, order.currency)), "success")
    return redirect_to(url_for("admin.box_office_tickets", order_id=order.id))


@bp.get("/box-office/orders/<int:order_id>/tickets")
def box_office_tickets(order_id: int):
    """The order's tickets, ready to print at the counter."""
    order = admin_orders.get_order(db.session, order_id)
    return render_template("admin/box_office_tickets.html", order=order, qr_svg=qr_svg)


@bp.post("/orders/<int:order_id>/resend")
def order_resend(order_id: int):
    found = admin_orders.get_order(db.session, order_id)
    try:
        sent_to = box_office.resend_tickets(db.session, order_id=found.id, actor_id=current_user.id,
                                            to=request.form.get("email"))
    except BookingError as refused:
        db.session.rollback()
        flash(refused.message, "error")
        return redirect_to(url_for("admin.order", order_id=order_id))
    flash(gettext("The tickets are on their way to %(email)s again.", email=sent_to), "success")
    return redirect_to(url_for("admin.order", order_id=order_id))
