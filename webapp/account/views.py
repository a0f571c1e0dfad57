"""A buyer's orders and tickets, cancelling an order, and personal API tokens."""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from flask import abort, current_app, flash, g, make_response, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from webapp import session_user
from webapp.account import bp
from webapp.database import single_statement
from webapp.extensions import db
from webapp.htmx import redirect_to, render
from webapp.models import Order, OrderStatus, Ticket, TicketStatus
from webapp.parsing import attendee_fields
from webapp.services.errors import InvalidRequest
from webapp.services.money import checkout, checkout_read, invoices
from webapp.services.money.checkout_read import qr_svg
from webapp.services.money.gateway import payment_gateway
from webapp.services.people import api_tokens
from webapp.services.selling import attendees

log = logging.getLogger(__name__)


def load_own_order(order_id: int) -> Order:
    """Someone else's order is a 404, never a 403: ids cannot be probed."""
    order = db.session.scalars(
        select(Order).where(Order.id == order_id)
        .options(selectinload(Order.tickets).selectinload(Ticket.unit),
                 selectinload(Order.tickets).selectinload(Ticket.tier))
    ).first()
    if order is None or order.user_id != current_user.id:
        abort(404)
    return order


@bp.get("/orders")
@login_required
def orders():
    mine = db.session.scalars(
        # A box-office clerk's door sales are in the clerk's name, but they are not the clerk's tickets.
        select(Order).where(Order.user_id == current_user.id, Order.sold_by.is_(None)).order_by(Order.id.desc())
        .options(selectinload(Order.tickets).selectinload(Ticket.unit),
                 selectinload(Order.tickets).selectinload(Ticket.tier), selectinload(Order.event))
    ).all()
    now = datetime.now(timezone.utc)
    upcoming = [o for o in mine if o.status == OrderStatus.CONFIRMED and o.event.starts_at >= now]
    upcoming.sort(key=lambda o: o.event.starts_at)
    others = [o for o in mine if o not in upcoming]
    # Tickets others passed on to this account: theirs to show at the door, on someone else's order.
    received = db.session.scalars(
        select(Ticket).where(Ticket.holder_id == current_user.id, Ticket.status == TicketStatus.VALID)
        .order_by(Ticket.id.desc())
        .options(selectinload(Ticket.unit), selectinload(Ticket.tier),
                 selectinload(Ticket.order).selectinload(Order.event))
    ).all()
    return render_template("account/orders.html", orders=mine, upcoming=upcoming, others=others, qr_svg=qr_svg,
                           received=received)


@bp.get("/orders/<int:order_id>")
def order_page(order_id: int):
    order = session_user.owner_read(lambda connection, user_id: checkout_read.order_view_and_owner(
        connection, order_id, user_id))
    from webapp.services.messaging import wallet

    g.organiser_locale = order.event.organiser_locale  # read in the order's statement (webapp/i18n.py)
    if order.invoiced:  # its invoice and credit notes: one more statement, only for an invoiced order
        with single_statement() as connection:
            order = checkout_read.with_documents(connection, order)
    response = make_response(render_template("account/order.html", order=order,
                                             apple_wallet=wallet.apple_configured(current_app.config),
                                             google_wallet=wallet.google_configured(current_app.config)))
    return response


def _own_order_view(order_id: int) -> checkout_read.OrderView:
    view = checkout_read.order_view(db.session, order_id, current_user.id)
    if view is None:
        abort(404)
    return view


@bp.get("/orders/<int:order_id>/attendees")
@login_required
def attendees_edit(order_id: int):
    view = _own_order_view(order_id)
    return render("account/attendees.html", "account/_attendees_form.html", order=view,
                  errors={}, values=view.typed())


@bp.post("/orders/<int:order_id>/attendees")
@login_required
def attendees_save(order_id: int):
    """Change names and answers after buying: all checked first, each change audited."""
    view = _own_order_view(order_id)
    try:
        attendees.change_answers(db.session, order_id=order_id, user_id=current_user.id, actor_id=current_user.id,
                                 form=attendee_fields())
    except attendees.AnswersInvalid as invalid:
        db.session.rollback()
        return render("account/attendees.html", "account/_attendees_form.html", status=400, order=view,
                      errors=invalid.errors, values=attendee_fields())
    log.info("order.attendees_changed", extra={"user_id": current_user.id, "order_id": order_id})
    flash(_("Attendee details saved."), "success")
    return redirect_to(url_for("account.order_page", order_id=order_id))


@bp.get("/orders/<int:order_id>/tickets/<int:ticket_id>")
@login_required
def ticket_print(order_id: int, ticket_id: int):
    order = load_own_order(order_id)
    ticket = next((t for t in order.tickets if t.id == ticket_id), None)
    if ticket is None or ticket.holder_id is not None:  # passed on: its code is the recipient's
        abort(404)
    return render_template("account/ticket_print.html", order=order, ticket=ticket, qr_svg=qr_svg)


@bp.get("/orders/<int:order_id>/tickets.pdf")
@login_required
def tickets_pdf(order_id: int):
    """The order's valid tickets as a PDF, drawn on request (the order page only links here)."""
    from webapp.services.messaging import ticket_pdf

    order = load_own_order(order_id)
    valid = [t for t in order.tickets if t.status == TicketStatus.VALID and t.holder_id is None]
    if not valid:
        abort(404)
    return _pdf_download(f"tickets-order-{order.id}.pdf", ticket_pdf.order_pdf(order, valid))


def _pdf_download(filename: str, data: bytes):
    response = make_response(data)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/orders/<int:order_id>/documents/<int:document_id>.pdf")
@login_required
def document_pdf(order_id: int, document_id: int):
    """The order's invoice or a credit note, as a PDF (someone else's order: 404)."""
    order = load_own_order(order_id)
    return _pdf_download(*invoices.document_pdf(db.session, order, document_id))


@bp.get("/orders/<int:order_id>/cancel")
@login_required
def cancel_confirm(order_id: int):
    order = load_own_order(order_id)
    return render("account/cancel.html", "account/_cancel.html", order=order)


@bp.post("/orders/<int:order_id>/cancel")
@login_required
def cancel_post(order_id: int):
    load_own_order(order_id)
    order = checkout.cancel_by_buyer(db.session, payment_gateway(), order_id=order_id, user_id=current_user.id)
    log.info("order.cancelled", extra={"event_id": order.event_id, "user_id": current_user.id, "order_id": order_id})
    flash(_("Your order was cancelled and refunded. Its seats are free again."), "success")
    return redirect_to(url_for("account.order_page", order_id=order_id))


@bp.get("/account/tokens")
@login_required
def tokens():
    """Personal API tokens: make one (shown once), see when each was last used, revoke."""
    return render_template("account/tokens.html", tokens=api_tokens.tokens_of(db.session, current_user.id),
                           new_secret=None)


@bp.post("/account/tokens")
@login_required
def token_create():
    try:
        made = api_tokens.create(db.session, user_id=current_user.id, is_admin=current_user.is_admin,
                                 name=request.form.get("name", ""), scope=request.form.get("scope", "buyer"))
    except InvalidRequest as refused:
        db.session.rollback()
        return render_template("account/tokens.html", tokens=api_tokens.tokens_of(db.session, current_user.id),
                               new_secret=None, error=refused.message,
                               name=request.form.get("name", "")[:80]), 400
    log.info("api_token.created", extra={"user_id": current_user.id, "token_id": made.token.id,
                                          "scope": made.token.scope})
    # The one time the secret is shown: this answer is not stored anywhere.
    response = make_response(render_template(
        "account/tokens.html", tokens=api_tokens.tokens_of(db.session, current_user.id),
        new_secret=made.secret, new_token=made.token))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def token_revoke(token_id: int):
    token = api_tokens.revoke(db.session, user_id=current_user.id, token_id=token_id)
    log.info("api_token.revoked", extra={"user_id": current_user.id, "token_id": token.id})
    flash(_("The token “%(name)s” was revoked; it no longer works.", name=token.name), "info")
    return redirect_to(url_for("account.tokens"))
