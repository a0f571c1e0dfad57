"""Stripe's webhooks: signature checked, each event handled once, fed to the same reconciliation as the sweep.

A webhook is a hint, never the source of truth: a `payment_intent.*` event
makes us settle that checkout *now*, from `retrieve` (Stripe's current word
on the intent, not the event's copy), exactly as the sweep would a minute
later. So one that comes early, twice, out of order or never changes nothing
the sweep would not. `charge.dispute.created` is recorded for the admins.
`charge.refunded` needs nothing: refunds are made by us, and our own
records say so; the event is noted (its id) and logged.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from webapp.models import PaymentAttempt
from webapp.services.errors import InvalidRequest, NotFound
from webapp.services.money import checkout
from webapp.services.money.gateway import PaymentGateway
from webapp.services.money.stripe_gateway import KEY_METADATA

log = logging.getLogger(__name__)


def verify(payload: bytes, header: str, secret: str, *, tolerance_seconds: int, now: float | None = None) -> dict:
    """The event, if `Stripe-Signature` is an HMAC-SHA256 by our secret of "t.payload" with t close to now."""
    if not secret:
        raise InvalidRequest("Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET).")
    parts = [item.split("=", 1) for item in header.split(",") if "=" in item]
    stamps = [value for name, value in parts if name.strip() == "t"]
    signatures = [value.strip() for name, value in parts if name.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not signatures:
        raise InvalidRequest("Missing or malformed Stripe-Signature header.")
    stamp = int(stamps[0])
    if abs((now if now is not None else time.time()) - stamp) > tolerance_seconds:
        raise InvalidRequest("Stripe-Signature timestamp is outside the tolerance.")
    expected = hmac.new(secret.encode(), str(stamp).encode() + b"." + payload, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, given) for given in signatures):
        raise InvalidRequest("Stripe-Signature does not match.")
    try:
        event = json.loads(payload)
    except ValueError as garbled:
        raise InvalidRequest("The event is not JSON.") from garbled
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise InvalidRequest("The event has no id or type.")
    return event


_FIRST_TIME = text("INSERT INTO stripe_events (id, type) VALUES (:i, :t) ON CONFLICT (id) DO NOTHING RETURNING id")


def handle(session: Session, gateway: PaymentGateway, event: dict[str, Any]) -> str:
    """Handle a verified event once; returns what was done. Commits."""
    obj = (event.get("data") or {}).get("object") or {}
    kind = event["type"]
    if session.execute(_FIRST_TIME, {"i": event["id"][:255], "t": kind[:100]}).scalar() is None:
        session.rollback()
        return "duplicate"
    if kind == "charge.dispute.created":
        _record_dispute(session, obj)
    session.commit()
    if kind.startswith("payment_intent."):
        key = (obj.get("metadata") or {}).get(KEY_METADATA)
        if not key:
            return "not ours"
        try:
            settled = checkout.settle_from_gateway(session, gateway, idempotency_key=key)
        except NotFound:
            return "not ours"
        return "settled" if settled is not None else "still moving"
    if kind == "charge.refunded":
        log.info("stripe.charge_refunded", extra={"intent": obj.get("payment_intent"),
                                                  "amount_refunded": obj.get("amount_refunded")})
        return "noted"
    return "recorded" if kind == "charge.dispute.created" else "ignored"


def _record_dispute(session: Session, dispute: dict[str, Any]) -> None:
    reference = dispute.get("payment_intent")
    attempt = session.execute(
        select(PaymentAttempt.id, PaymentAttempt.event_id).where(PaymentAttempt.gateway_reference == reference)
    ).first() if reference else None
    session.execute(text(
        "INSERT INTO payment_disputes (provider_id, payment_reference, payment_attempt_id, event_id, amount_minor,"
        " currency, reason, status) VALUES (:d, :r, :a, :e, :m, :c, :why, :s) ON CONFLICT (provider_id) DO NOTHING"
    ), {"d": str(dispute.get("id", ""))[:255], "r": reference, "a": attempt.id if attempt else None,
        "e": attempt.event_id if attempt else None, "m": int(dispute.get("amount") or 0),
        "c": str(dispute.get("currency") or "").upper()[:3], "why": str(dispute.get("reason") or "")[:60],
        "s": str(dispute.get("status") or "")[:40]})
    log.warning("stripe.dispute", extra={"dispute": dispute.get("id"), "intent": reference})
