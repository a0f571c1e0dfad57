"""Admin: order search (by e-mail or ticket code), one order in full, its attendee details, cancel or refund (in
part), its documents."""
from __future__ import annotations

import logging

from flask import flash, make_response, request, url_for
from flask_babel import gettext
from flask_login import current_user

from webapp.admin import bp, load_event
from webapp.admin.forms import ReasonForm, RefundForm
from webapp.admin.words import say
from webapp.extensions import db
from webapp.htmx import is_partial_request, redirect_to, render
from webapp.parsing import attendee_fields
from webapp.services.admin import orders as admin_orders
from webapp.services.errors import BookingError
from webapp.services.money import checkout_read, invoices, refunds
from webapp.services.money.gateway import payment_gateway
from webapp.services.selling import attendees
from webapp.templating import money

log = logging.getLogger(__name__)
# The refund form shares the order page with the cancel form: its own field names and ids.
REFUND_PREFIX = "refund"


@bp.get("/orders")
def orders():
    q = request.args.get("q", "").strip()[:200]
    event_id = request.args.get("event", type=int)
    event = load_event(event_id) if event_id else None
    rows = admin_orders.search_orders(db.session, q, event_id=event_id)
    return render("admin/orders.html", "admin/_order_results.html", orders=rows, q=q, event=event)


def _order_page(found, *, form=None, refund_form=None, refund_error=None, attendee_errors=None, status=200):
    """The order page, or its #refunds partial for htmx."""
    details = checkout_read.order_view(db.session, found.id, found.user_id)
    typed = attendee_fields() if attendee_errors else (details.typed() if details else {})
    return render("admin/order.html", "admin/_refunds.html", status, order=found,
                  payment=admin_orders.payment_of(db.session, found), form=form or ReasonForm(),
                  refund_form=refund_form or RefundForm(prefix=REFUND_PREFIX), refund_error=refund_error,
                  event=found.event, questions=admin_orders.questions_of(db.session, found), details=details,
                  attendee_errors=attendee_errors or {}, attendee_values=typed,
                  balance=refunds.balance(db.session, found), refunds=refunds.refunds_of(db.session, found.id),
                  documents=invoices.documents_of(db.session, found.id), as_partial=is_partial_request())


@bp.get("/orders/<int:order_id>")
def order(order_id: int):
    return _order_page(admin_orders.get_order(db.session, order_id))


@bp.post("/orders/<int:order_id>/attendees")
def order_attendees(order_id: int):
    """The organiser corrects names and answers, at any time (audited, as the holder's changes are)."""
    found = admin_orders.get_order(db.session, order_id)
    try:
        attendees.change_answers(db.session, order_id=found.id, user_id=None, actor_id=current_user.id,
                                 form=attendee_fields())
    except attendees.AnswersInvalid as invalid:
        db.session.rollback()
        return _order_page(admin_orders.get_order(db.session, order_id), attendee_errors=invalid.errors, status=400)
    flash(gettext("Attendee details saved."), "success")
    return redirect_to(url_for("admin.order", order_id=order_id))


@bp.post("/orders/<int:order_id>/refund")
def order_refund(order_id: int):
    """Refund the whole order, the tickets ticked, or an amount; answers the #refunds partial (or the page)."""
    found = admin_orders.get_order(db.session, order_id)
    form = RefundForm(prefix=REFUND_PREFIX)
    if not form.validate_on_submit():
        return _order_page(found, refund_form=form, status=400)
    try:
        made = admin_orders.refund(
            db.session, payment_gateway(), actor_id=current_user.id, order_id=found.id,
            reason=form.reason.data.strip(), whole=form.what.data == "whole",
            ticket_ids=form.tickets.data if form.what.data == "tickets" else None,
            amount_minor=form.amount_minor if form.what.data == "amount" else None)
    except BookingError as refused:
        db.session.rollback()
        return _order_page(admin_orders.get_order(db.session, order_id), refund_form=form,
                           refund_error=refused.message, status=refused.status_code)
    log.info("order.refunded_by_admin", extra={"order_id": order_id, "refund_id": made.id})
    flash(gettext("Refund of %(amount)s: %(state)s.", amount=money(made.amount_minor, made.currency),
                  state=say(made.state)), "success")
    if not is_partial_request():
        return redirect_to(url_for("admin.order", order_id=order_id))
    db.session.expire_all()
    return _order_page(admin_orders.get_order(db.session, order_id))


@bp.get("/orders/<int:order_id>/documents/<int:document_id>.pdf")
def order_document(order_id: int, document_id: int):
    """An invoice or credit note of the order, as a PDF."""
    found = admin_orders.get_order(db.session, order_id)
    return pdf_download(*invoices.document_pdf(db.session, found, document_id))


def pdf_download(filename: str, data: bytes):
    response = make_response(data)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/orders/<int:order_id>/cancel")
def order_cancel(order_id: int):
    found = admin_orders.get_order(db.session, order_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        return _order_page(found, form=form, status=400)
    refund = request.form.get("refund") == "1"
    admin_orders.cancel_order(db.session, payment_gateway(), actor_id=current_user.id, order_id=found.id,
                              reason=form.reason.data.strip(), refund=refund)
    log.info("order.cancelled_by_admin", extra={"order_id": order_id, "refund": refund})
    flash(gettext("Order #%(id)s was refunded; its seats are free again (the waiting list is offered them first).",
                  id=order_id) if refund else
          gettext("Order #%(id)s was cancelled without refund; its seats are free again (the waiting list is offered "
                  "them first).", id=order_id), "success")
    return redirect_to(url_for("admin.order", order_id=order_id))
