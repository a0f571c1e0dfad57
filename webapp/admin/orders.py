"""Admin: order search (by e-mail or ticket code), one order in full, its attendee details, cancel or refund."""
from __future__ import annotations

import logging

from flask import flash, render_template, request, url_for
from flask_login import current_user

from webapp.admin import bp, load_event
from webapp.admin.forms import ReasonForm
from webapp.extensions import db
from webapp.htmx import redirect_to, render
from webapp.parsing import attendee_fields
from webapp.services.admin import orders as admin_orders
from webapp.services.money import checkout_read
from webapp.services.money.gateway import payment_gateway
from webapp.services.selling import attendees

log = logging.getLogger(__name__)


@bp.get("/orders")
def orders():
    q = request.args.get("q", "").strip()[:200]
    event_id = request.args.get("event", type=int)
    event = load_event(event_id) if event_id else None
    rows = admin_orders.search_orders(db.session, q, event_id=event_id)
    return render("admin/orders.html", "admin/_order_results.html", orders=rows, q=q, event=event)


@bp.get("/orders/<int:order_id>")
def order(order_id: int):
    found = admin_orders.get_order(db.session, order_id)
    details = checkout_read.order_view(db.session, found.id, found.user_id)
    return render_template("admin/order.html", order=found, payment=admin_orders.payment_of(db.session, found),
                           form=ReasonForm(), event=found.event,
                           questions=admin_orders.questions_of(db.session, found), details=details,
                           attendee_errors={}, attendee_values=details.typed() if details else {})


@bp.post("/orders/<int:order_id>/attendees")
def order_attendees(order_id: int):
    """The organiser corrects names and answers, at any time (audited, as the holder's changes are)."""
    found = admin_orders.get_order(db.session, order_id)
    try:
        attendees.change_answers(db.session, order_id=found.id, user_id=None, actor_id=current_user.id,
                                 form=attendee_fields())
    except attendees.AnswersInvalid as invalid:
        db.session.rollback()
        found = admin_orders.get_order(db.session, order_id)
        return render_template("admin/order.html", order=found, payment=admin_orders.payment_of(db.session, found),
                               form=ReasonForm(), event=found.event,
                               questions=admin_orders.questions_of(db.session, found),
                               details=checkout_read.order_view(db.session, found.id, found.user_id),
                               attendee_errors=invalid.errors, attendee_values=attendee_fields()), 400
    flash("Attendee details saved.", "success")
    return redirect_to(url_for("admin.order", order_id=order_id))


@bp.post("/orders/<int:order_id>/cancel")
def order_cancel(order_id: int):
    found = admin_orders.get_order(db.session, order_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        return render_template("admin/order.html", order=found, payment=admin_orders.payment_of(db.session, found),
                               form=form, event=found.event, questions=admin_orders.questions_of(db.session, found),
                               details=None), 400
    refund = request.form.get("refund") == "1"
    admin_orders.cancel_order(db.session, payment_gateway(), actor_id=current_user.id, order_id=found.id,
                              reason=form.reason.data.strip(), refund=refund)
    log.info("order.cancelled_by_admin", extra={"order_id": order_id, "refund": refund})
    flash(f"Order #{order_id} was {'refunded' if refund else 'cancelled without refund'}; its seats are free again "
          f"(the waiting list is offered them first).", "success")
    return redirect_to(url_for("admin.order", order_id=order_id))
