"""Passing a ticket on: offer it by e-mail, withdraw the offer, and the recipient's page with its one link."""
from __future__ import annotations

import logging

from flask import abort, flash, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from webapp.account import bp
from webapp.extensions import db
from webapp.htmx import redirect_to
from webapp.models import Order, Ticket, User
from webapp.services.errors import BookingError
from webapp.services.selling import transfers

log = logging.getLogger(__name__)


def _back_to(ticket_id: int) -> str:
    order_id = db.session.scalar(db.select(Ticket.order_id).where(Ticket.id == ticket_id))
    buyer = db.session.scalar(db.select(Order.user_id).where(Order.id == order_id)) if order_id else None
    return url_for("account.order_page", order_id=order_id) if buyer == current_user.id else url_for("account.orders")


@bp.post("/tickets/<int:ticket_id>/transfer")
@login_required
def transfer_offer(ticket_id: int):
    try:
        offered = transfers.offer(db.session, ticket_id=ticket_id, user_id=current_user.id,
                                  to_email=request.form.get("email", "")[:300])
    except BookingError as refused:
        db.session.rollback()
        if refused.status_code == 404:
            abort(404)
        flash(refused.message, "error")
        return redirect_to(_back_to(ticket_id)), refused.status_code
    log.info("ticket.transfer_offered", extra={"user_id": current_user.id, "ticket_id": ticket_id})
    flash(_("We sent the ticket to %(email)s. It stays yours until they accept it;"
            " you can withdraw the offer until then.", email=offered.transfer.to_email), "success")
    return redirect_to(_back_to(ticket_id))


@bp.post("/transfers/<int:transfer_id>/withdraw")
@login_required
def transfer_withdraw(transfer_id: int):
    transfer = transfers.withdraw(db.session, transfer_id=transfer_id, user_id=current_user.id)
    flash(_("Transfer withdrawn: the link no longer works and the ticket stays yours."), "info")
    return redirect_to(_back_to(transfer.ticket_id))


@bp.get("/transfers/accept/<token>")
def transfer_page(token: str):
    """The recipient's page: what is offered, and one button (after logging in or creating an account)."""
    transfer = transfers.pending_by_token(db.session, token)
    if transfer is None:
        abort(404)
    return render_template("account/transfer.html", transfer=transfer, token=token,
                           ticket=db.session.get(Ticket, transfer.ticket_id),
                           sender=db.session.get(User, transfer.from_user_id))


@bp.post("/transfers/accept/<token>")
@login_required
def transfer_accept(token: str):
    transfer = transfers.accept(db.session, token=token, user_id=current_user.id)
    log.info("ticket.transferred", extra={"user_id": current_user.id, "ticket_id": transfer.ticket_id})
    flash(_("The ticket is yours: it has a new code, below. The old one no longer admits anyone."), "success")
    return redirect_to(url_for("account.orders"))
