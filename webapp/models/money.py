"""Money after the sale (migration 0021): refunds as rows with states, invoices and credit notes."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.columns import utcnow_sql
from webapp.models.sales import Order


class RefundState(str, enum.Enum):
    REQUESTED = "requested"  # recorded; the gateway has not (yet) confirmed it
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the gateway refused it for good, or every retry failed


class Refund(db.Model):
    """One refund of (part of) an order, made at the gateway under its own idempotency key."""

    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(12), default=RefundState.REQUESTED.value,
                                       server_default=RefundState.REQUESTED.value)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    order: Mapped[Order] = relationship()

    __table_args__ = (
        CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
        CheckConstraint("state IN ('requested', 'succeeded', 'failed')", name="state"),
        Index("ix_refunds_requested", "created_at", postgresql_where=text("state = 'requested'")),
    )


class RefundTicket(db.Model):
    """A ticket a refund gave back: each ticket at most once (the unique ticket_id)."""

    __tablename__ = "refund_tickets"

    refund_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("refunds.id"), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tickets.id"), primary_key=True, unique=True)


class GatewayRefund(db.Model):
    """The simulated provider's ledger of refunds: one row per refund key."""

    __tablename__ = "gateway_refunds"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    reference: Mapped[str] = mapped_column(String(64), index=True)
    amount_minor: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())


class InvoiceSeries(db.Model):
    """The last number issued in a series; taken under this row's lock, so numbers have no gaps."""

    __tablename__ = "invoice_series"

    organiser_id: Mapped[int] = mapped_column(ForeignKey("organisers.id", ondelete="CASCADE"), primary_key=True)
    # The printed prefix ("INV-", "ACME-2026-"): a new prefix starts a new series at 1 (migration 0030).
    series: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_number: Mapped[int] = mapped_column(BigInteger)


class InvoiceKind(str, enum.Enum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class Invoice(db.Model):
    """An invoice for an order, or a credit note for one of its refunds (naming the invoice it corrects)."""

    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    # The issuer: numbers are per organiser and series.
    organiser_id: Mapped[int] = mapped_column(ForeignKey("organisers.id", ondelete="CASCADE"))
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    series: Mapped[str] = mapped_column(String(40))
    number: Mapped[int] = mapped_column(BigInteger)
    credits_invoice_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("invoices.id"))
    refund_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("refunds.id"), unique=True)
    gross_minor: Mapped[int] = mapped_column(Integer)
    # Net, tax and gross per tax rate, fixed when issued: [{"rate_bp", "net", "tax", "gross"}].
    lines: Mapped[list[dict]] = mapped_column(JSONB)
    currency: Mapped[str] = mapped_column(String(3))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())

    order: Mapped[Order] = relationship()

    __table_args__ = (
        UniqueConstraint("organiser_id", "series", "number", name="uq_invoices_organiser_series_number"),
        CheckConstraint("kind IN ('invoice', 'credit_note')", name="kind"),
        CheckConstraint("(kind = 'invoice') = (credits_invoice_id IS NULL)", name="credit_link"),
        Index("ix_invoices_event", "event_id", "id"),
        Index("ix_invoices_credits", "credits_invoice_id", postgresql_where=text("credits_invoice_id IS NOT NULL")),
        Index("uq_invoices_one_per_order", "order_id", unique=True, postgresql_where=text("kind = 'invoice'")),
    )

    @property
    def label(self) -> str:
        return document_label(self.series, self.number)


def document_label(series: str, number: int) -> str:
    """An invoice's or credit note's number as printed: its series' prefix and number, e.g. INV-000042."""
    return f"{series}{number:06d}"
