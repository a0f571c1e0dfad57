"""Wallet passes: a ticket's Apple Wallet file and Google Wallet link for its holder, and Apple's update service.

Offered only when configured (services/messaging/wallet.py says which settings).
"""
from __future__ import annotations

import hmac

from flask import abort, current_app, make_response, redirect, request
from flask_login import current_user, login_required

from webapp.account import bp
from webapp.extensions import db
from webapp.services.messaging import wallet


def _held(ticket_id: int) -> wallet.PassTicket:
    found = wallet.pass_ticket(db.session, ticket_id)
    if found is None or found.holder_id != current_user.id or found.void:
        abort(404)
    return found


def _pkpass(ticket: wallet.PassTicket):
    response = make_response(wallet.apple_pass(ticket, current_app.config))
    response.headers["Content-Type"] = "application/vnd.apple.pkpass"
    response.headers["Content-Disposition"] = f'attachment; filename="ticket-{ticket.ticket_id}.pkpass"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/tickets/<int:ticket_id>/wallet.pkpass")
@login_required
def apple_wallet(ticket_id: int):
    if not wallet.apple_configured(current_app.config):
        abort(404)
    return _pkpass(_held(ticket_id))


@bp.get("/tickets/<int:ticket_id>/google-wallet")
@login_required
def google_wallet(ticket_id: int):
    if not wallet.google_configured(current_app.config):
        abort(404)
    return redirect(wallet.google_save_link(_held(ticket_id), current_app.config), code=303)


@bp.get("/wallet/v1/passes/<pass_type>/<serial>")
def apple_wallet_update(pass_type: str, serial: str):
    """Apple's "latest version of a pass": authorised by the pass's own token; void once refunded or passed on."""
    config = current_app.config
    if not wallet.apple_configured(config) or pass_type != config["APPLE_PASS_TYPE_ID"]:
        abort(404)
    given = request.headers.get("Authorization", "").removeprefix("ApplePass ").strip()
    if not hmac.compare_digest(given, wallet.auth_token(config["SECRET_KEY"], serial)):
        abort(401)
    parsed = wallet.parse_serial(serial)
    found = wallet.pass_ticket(db.session, parsed[0]) if parsed else None
    if parsed is None or found is None:
        abort(404)
    if found.holder_id != parsed[1]:
        # Passed on since this pass was made: the old holder's pass shows void, with no barcode.
        found = wallet.PassTicket(**{**found.__dict__, "holder_id": parsed[1], "void": True})
    return _pkpass(found)
