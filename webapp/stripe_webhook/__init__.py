"""Stripe's webhook endpoint: POST /stripe/webhook, signed by Stripe (no session, no CSRF token)."""
from flask import Blueprint

bp = Blueprint("stripe_webhook", __name__)

from webapp.stripe_webhook import views  # noqa: E402,F401
