"""Stripe's webhooks: signature checked, each event handled once, fed to the same reconciliation as the sweep.

A webhook is a hint, never the source of truth: a `payment_intent.*` event
makes us settle that checkout *now*, from `retrieve` (Stripe's current word
on the intent, not the event's copy), exactly as the sweep would a minute
later. So one that comes early, twice, out of order or never changes nothing
the sweep would not. `charge.dispute.created`, `.updated` and `.closed` are
recorded against the payment for the admins: the order is flagged while its
dispute is open or was lost, and each step has an audit entry. A dispute
moves no money of ours (the bank takes it back from the organiser's Stripe
balance, not through a refund), so our refund rows and the invariants are
untouched by it.
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

from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.services import audit
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


def handle(session: Session, gateway: PaymentGateway, event: dict[str, Any], *, account: int | None = None) -> str:
    """Handle a verified event once; returns what was done. Commits.

    `account`: the organiser whose own Stripe account signed it (None: the install's). A dispute is recorded
    only against a payment made in that account: an organiser holds its webhook secret, so it could sign
    an event about anyone's payment.
    """
    obj = (event.get("data") or {}).get("object") or {}
    kind = event["type"]
    if session.execute(_FIRST_TIME, {"i": event["id"][:255], "t": kind[:100]}).scalar() is None:
        session.rollback()
        return "duplicate"
    if kind in DISPUTE_EVENTS:
        _record_dispute(session, obj, step=kind.rsplit(".", 1)[1], account=account)
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
    return "recorded" if kind in DISPUTE_EVENTS else "ignored"


DISPUTE_EVENTS = ("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed")
# A dispute's order stays flagged unless the organiser won it (Stripe's final statuses: won, lost, warning_closed).
_UNFLAGGED = ("won", "warning_closed")

# The payment is found through our note of intents (its unique intent_id), not by scanning payments.
_PAYMENT_OF_INTENT = text(
    "SELECT p.id, p.event_id, o.id AS order_id,"
    " CASE WHEN g.stripe_secret_key_env IS NOT NULL THEN g.id END AS account FROM stripe_intents s"
    " JOIN payment_attempts p ON p.idempotency_key = s.idempotency_key"
    " JOIN events e ON e.id = p.event_id JOIN organisers g ON g.id = e.organiser_id"
    " LEFT JOIN orders o ON o.payment_attempt_id = p.id WHERE s.intent_id = :r")

# Created, updated or closed, in whatever order they arrive: the newest word on the status wins, once closed
# stays closed.
_UPSERT_DISPUTE = text(
    "INSERT INTO payment_disputes AS d (provider_id, payment_reference, payment_attempt_id, event_id, amount_minor,"
    " currency, reason, status, closed_at) VALUES (:d, :r, :a, :e, :m, :c, :why, :s,"
    " CASE WHEN :closed THEN now() END)"
    " ON CONFLICT (provider_id) DO UPDATE SET status = CASE WHEN d.closed_at IS NULL OR :closed"
    "  THEN excluded.status ELSE d.status END, amount_minor = excluded.amount_minor,"
    "  closed_at = coalesce(d.closed_at, excluded.closed_at)"
    " RETURNING id, status, closed_at")

_FLAG_ORDER = text("UPDATE orders SET disputed_at = CASE WHEN :flag THEN coalesce(disputed_at, now()) END"
                   " WHERE id = :o")


def _record_dispute(session: Session, dispute: dict[str, Any], *, step: str, account: int | None) -> None:
    """Record (or move on) a dispute against its payment, flag its order, and say so in the audit log."""
    reference = dispute.get("payment_intent")
    closed = step == "closed"
    payment = session.execute(_PAYMENT_OF_INTENT, {"r": reference}).first() if reference else None
    if payment is not None and payment.account != account:
        log.warning("stripe.dispute_other_account", extra={"dispute": dispute.get("id"), "intent": reference})
        return  # a payment of another Stripe account: not this sender's to report
    recorded = session.execute(_UPSERT_DISPUTE, {
        "d": str(dispute.get("id", ""))[:255], "r": reference, "a": payment.id if payment else None,
        "e": payment.event_id if payment else None, "m": int(dispute.get("amount") or 0),
        "c": str(dispute.get("currency") or "").upper()[:3], "why": str(dispute.get("reason") or "")[:60],
        "s": str(dispute.get("status") or "")[:40], "closed": closed}).one()
    log.warning("stripe.dispute", extra={"dispute": dispute.get("id"), "intent": reference,
                                         "status": recorded.status})
    if payment is None or payment.order_id is None:
        return  # not a payment of ours: listed for the platform's admins, flagged nowhere
    session.execute(_FLAG_ORDER, {"o": payment.order_id, "flag": recorded.status not in _UNFLAGGED})
    audit.record(session, actor_id=None, action=f"dispute.{step}",
                 entity="order", entity_id=payment.order_id, event_id=payment.event_id,
                 after={"dispute": str(dispute.get("id", "")), "status": recorded.status,
                        "amount_minor": int(dispute.get("amount") or 0), "reason": dispute.get("reason")})
