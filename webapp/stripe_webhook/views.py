"""Stripe calls us here; the signature is the only credential (services/money/stripe_webhooks.py)."""
from __future__ import annotations

import logging

from flask import current_app, jsonify, request

from webapp.extensions import db
from webapp.services.money import payment_settings, stripe_webhooks
from webapp.services.money.gateway import payment_gateway
from webapp.stripe_webhook import bp

log = logging.getLogger(__name__)


@bp.post("/stripe/webhook")
def stripe_webhook():
    """A bad signature is a 400 (Stripe shows it and retries); a handled or repeated event a 200."""
    return _received(current_app.config["STRIPE_WEBHOOK_SECRET"], None)


@bp.post("/stripe/webhook/<slug>")
def organiser_stripe_webhook(slug: str):
    """The endpoint of an organiser's own Stripe account, signed with that account's webhook secret."""
    organiser_id, secret = payment_settings.webhook_account(db.session, slug)
    return _received(secret, organiser_id)


def _received(secret: str, account: int | None):
    config = current_app.config
    event = stripe_webhooks.verify(request.get_data(), request.headers.get("Stripe-Signature", ""), secret,
                                   tolerance_seconds=config["STRIPE_WEBHOOK_TOLERANCE_SECONDS"])
    # Which account's intent an event is about is our rows' to say (stripe_accounts.py), not the URL's.
    done = stripe_webhooks.handle(db.session, payment_gateway(), event, account=account)
    log.info("stripe.webhook", extra={"stripe_event": event["id"], "type": event["type"], "done": done})
    return jsonify(received=True, done=done)
