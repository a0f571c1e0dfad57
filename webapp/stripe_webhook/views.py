"""Stripe calls us here; the signature is the only credential (services/money/stripe_webhooks.py)."""
from __future__ import annotations

import logging

from flask import current_app, jsonify, request

from webapp.extensions import db
from webapp.services.money import stripe_webhooks
from webapp.services.money.gateway import payment_gateway
from webapp.stripe_webhook import bp

log = logging.getLogger(__name__)


@bp.post("/stripe/webhook")
def stripe_webhook():
    """A bad signature is a 400 (Stripe shows it and retries); a handled or repeated event a 200."""
    config = current_app.config
    event = stripe_webhooks.verify(request.get_data(), request.headers.get("Stripe-Signature", ""),
                                   config["STRIPE_WEBHOOK_SECRET"],
                                   tolerance_seconds=config["STRIPE_WEBHOOK_TOLERANCE_SECONDS"])
    done = stripe_webhooks.handle(db.session, payment_gateway(), event)
    log.info("stripe.webhook", extra={"stripe_event": event["id"], "type": event["type"], "done": done})
    return jsonify(received=True, done=done)
