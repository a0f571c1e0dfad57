"""Disputes (chargebacks) the payment provider told us of, newest first, with the order they hit."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class DisputeRow:
    provider_id: str
    amount_minor: int
    currency: str
    reason: str
    status: str
    created_at: datetime
    event_title: str | None
    order_id: int | None


def recent_disputes(session: Session, limit: int = 100) -> list[DisputeRow]:
    rows = session.execute(text(
        "SELECT d.provider_id, d.amount_minor, d.currency, d.reason, d.status, d.created_at, e.title AS event_title,"
        " o.id AS order_id FROM payment_disputes d LEFT JOIN events e ON e.id = d.event_id"
        " LEFT JOIN orders o ON o.payment_attempt_id = d.payment_attempt_id ORDER BY d.id DESC LIMIT :n"),
        {"n": limit}).all()
    return [DisputeRow(**row._mapping) for row in rows]
