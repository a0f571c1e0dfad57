"""Disputes (chargebacks) the payment provider told us of, newest first, with the order they hit.

Read through the ORM, so the organiser's scope (services/organiser_scope.py) walls it off like every
other admin read: an organiser sees the disputes of its own events only.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import Event, Order, PaymentDispute


@dataclass(frozen=True)
class DisputeRow:
    provider_id: str
    amount_minor: int
    currency: str
    reason: str
    status: str
    created_at: datetime
    closed_at: datetime | None
    event_title: str | None
    order_id: int | None


def recent_disputes(session: Session, limit: int = 100) -> list[DisputeRow]:
    rows = session.execute(
        select(PaymentDispute.provider_id, PaymentDispute.amount_minor, PaymentDispute.currency,
               PaymentDispute.reason, PaymentDispute.status, PaymentDispute.created_at, PaymentDispute.closed_at,
               Event.title.label("event_title"), Order.id.label("order_id"))
        .outerjoin(Event, Event.id == PaymentDispute.event_id)
        .outerjoin(Order, Order.payment_attempt_id == PaymentDispute.payment_attempt_id)
        .order_by(PaymentDispute.id.desc()).limit(limit)).all()
    return [DisputeRow(**row._mapping) for row in rows]
