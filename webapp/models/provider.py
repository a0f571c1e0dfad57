"""What we keep of a real payment provider's side: Stripe's intents per checkout key, its webhook events, disputes.

`stripe_intents` is our own note of which PaymentIntent belongs to which
checkout key, written (on its own connection, committed at once) before the
intent is confirmed, so that "what happened under this key?" has an answer
even when our process died between Stripe's answer and our commit.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.columns import utcnow_sql

# Intent statuses after which nothing more happens to the money of an authorisation.
FINAL_INTENT_STATUSES = ("succeeded", "canceled")


class StripeIntent(db.Model):
    __tablename__ = "stripe_intents"

    idempotency_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    # None until Stripe has answered the create; None for ever when the key was voided first.
    intent_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The key was voided: an intent created under it is cancelled, never confirmed.
    voided: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # Stripe's status when we last looked, for the sweep's list of uncaptured intents (a declined
    # intent, back at requires_payment_method, is closed too: we never give it another card).
    last_status: Mapped[str] = mapped_column(String(40), default="creating", server_default="creating")
    # The Stripe account it was made in: the name of the variable holding its secret key (None: the install's).
    account: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())

    __table_args__ = (
        Index("ix_stripe_intents_open", "created_at",
              postgresql_where=text("last_status NOT IN ('succeeded', 'canceled', 'requires_payment_method')")),
    )


class StripeEvent(db.Model):
    """A webhook event received: its id makes a second delivery a no-op."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())


class PaymentDispute(db.Model):
    """A buyer's bank disputed a charge (chargeback): shown to admins, who answer it in Stripe."""

    __tablename__ = "payment_disputes"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(255), unique=True)
    payment_reference: Mapped[str | None] = mapped_column(String(64))
    payment_attempt_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("payment_attempts.id"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
