"""A sale from hold to ticket: holds, payment attempts (and the simulated gateway's ledger), orders, tickets."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    DateTime,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import INET, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.codes import Code
from webapp.models.columns import enum_column, utcnow_sql
from webapp.models.events import Event, Tier, Unit
from webapp.models.people import User


class HoldStatus(str, enum.Enum):
    ACTIVE = "active"
    CONVERTED = "converted"
    RELEASED = "released"
    EXPIRED = "expired"


class HoldKind(str, enum.Enum):
    PURCHASE = "purchase"
    OFFER = "offer"  # made for the first person on the waiting list


class PaymentStatus(str, enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"
    FAILED = "failed"  # never reached a verdict (crash, gateway error)


class OrderStatus(str, enum.Enum):
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class TicketStatus(str, enum.Enum):
    VALID = "valid"
    VOID = "void"


class Hold(db.Model):
    """Units set aside for one buyer until `expires_at` (database clock)."""

    __tablename__ = "holds"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[HoldKind] = mapped_column(enum_column(HoldKind, "hold_kind"), default=HoldKind.PURCHASE)
    status: Mapped[HoldStatus] = mapped_column(enum_column(HoldStatus, "hold_status"), default=HoldStatus.ACTIVE)
    # What the hold asked for, kept after release so that paying late can try
    # to take the same units again.
    unit_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    # The price of each unit (same order as unit_ids) when it was held: the
    # price paid, whatever the tier costs by then (migration 0005).
    unit_prices: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    total_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    waitlist_entry_id: Mapped[int | None] = mapped_column(ForeignKey("waitlist_entries.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_reason: Mapped[str | None] = mapped_column(String(40))
    # A discount code applied on the hold page: its use is held with the hold
    # (webapp/services/selling/codes.py); what it takes off each unit, in unit_ids order.
    code_id: Mapped[int | None] = mapped_column(ForeignKey("codes.id"))
    discount_minor: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    unit_discounts: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    # The access code that unlocked a hidden tier held here (set by the reserve gate).
    access_code_id: Mapped[int | None] = mapped_column(ForeignKey("codes.id"))
    # When the hold page's "Reserve again" took this lapsed hold's units again
    # (checkout.reserve_again): once per hold (migration 0016).
    taken_again_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The client address the reserve came from, for the event's limit per address (migration 0022):
    # the column's default reads what the reserve statement's tb_address_rules set.
    client_addr: Mapped[str | None] = mapped_column(INET, server_default=FetchedValue())
    # The attendee names and answers typed on the hold page, kept when its payment
    # starts, for the order to carry whoever confirms it (migration 0024).
    answers: Mapped[dict | None] = mapped_column(JSONB)

    user: Mapped[User] = relationship()
    event: Mapped[Event] = relationship()

    __table_args__ = (
        CheckConstraint("cardinality(unit_ids) > 0", name="not_empty"),
        Index("ix_holds_code_active", "code_id", "user_id",
              postgresql_where=text("code_id IS NOT NULL AND status = 'active'")),
        # The sweep walks only live holds, oldest deadline first.
        Index("ix_holds_active_expiry", "expires_at", postgresql_where=text("status = 'active'")),
        # One live shopping basket per buyer and event.
        Index(
            "uq_holds_one_active_purchase", "user_id", "event_id", unique=True,
            postgresql_where=text("status = 'active' AND kind = 'purchase'"),
        ),
        Index("ix_holds_event_status", "event_id", "status"),
        # The event's limit per client address counts from here (tb_address_rules).
        Index("ix_holds_event_client_addr", "event_id", "client_addr",
              postgresql_where=text("client_addr IS NOT NULL")),
    )

    @property
    def quantity(self) -> int:
        return len(self.unit_ids)


class PaymentAttempt(db.Model):
    """Every charge we asked the gateway for, whatever came of it."""

    __tablename__ = "payment_attempts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    hold_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("holds.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    card_last4: Mapped[str] = mapped_column(String(4))
    status: Mapped[PaymentStatus] = mapped_column(
        enum_column(PaymentStatus, "payment_status"), default=PaymentStatus.PENDING
    )
    gateway_reference: Mapped[str | None] = mapped_column(String(64))
    decline_code: Mapped[str | None] = mapped_column(String(40))
    decline_message: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the gateway confirmed the capture: authorised until then (the dashboard's money by state).
    captured_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The card's fingerprint where the gateway gives one (Stripe): the per-instrument limit counts it.
    instrument: Mapped[str | None] = mapped_column(String(64))
    # Who the invoice is for, given at checkout and copied to the order (migration 0021).
    billing_name: Mapped[str | None] = mapped_column(String(200))
    billing_address: Mapped[str | None] = mapped_column(String(500))
    # Paid at the box office, in cash or on the card terminal (migration 0029): no gateway was asked.
    in_person: Mapped[str | None] = mapped_column(String(8))
    # The language of the buyer's request that paid, copied to the order (migration 0028).
    locale: Mapped[str] = mapped_column(String(8), default="en", server_default="en")

    __table_args__ = (
        CheckConstraint("in_person IN ('cash', 'terminal')", name="in_person"),
        # A hold has one checkout in flight: two tabs cannot charge twice.
        Index(
            "uq_payment_attempts_one_pending", "hold_id", unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
        # At most one charge ever succeeds for a hold.
        Index(
            "uq_payment_attempts_one_approved", "hold_id", unique=True,
            postgresql_where=text("status = 'approved'"),
        ),
        # What the per-instrument limit counts: approved payments of one card for one event.
        Index("ix_payment_attempts_instrument", "event_id", "instrument",
              postgresql_where=text("instrument IS NOT NULL AND status = 'approved'")),
    )


class GatewayCharge(db.Model):
    """The simulated provider's own ledger.

    A real provider keeps this on its side; we keep it in our database so that
    every worker and host sees the same idempotent answers.
    """

    __tablename__ = "gateway_charges"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    card_last4: Mapped[str] = mapped_column(String(4))
    # The issuer's answer: approved, card_declined, insufficient_funds,
    # invalid_card; or voided, for a key voided before any authorisation came.
    outcome: Mapped[str] = mapped_column(String(30))
    # Where the money stands: authorised, captured, voided or declined (migration 0006).
    status: Mapped[str] = mapped_column(String(20))
    refunded_minor: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    captured_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("status IN ('authorised', 'captured', 'voided', 'declined')", name="gateway_charge_status"),
        Index("ix_gateway_charges_authorised", "created_at", postgresql_where=text("status = 'authorised'")),
    )


class Order(db.Model):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    hold_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("holds.id"), unique=True)
    payment_attempt_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("payment_attempts.id"), unique=True)
    status: Mapped[OrderStatus] = mapped_column(enum_column(OrderStatus, "order_status"), default=OrderStatus.CONFIRMED)
    total_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(String(200))
    # A chargeback is open (or was lost) on this order's payment (migration 0030).
    disputed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The discount code used and what it took off (the total is after it).
    code_id: Mapped[int | None] = mapped_column(ForeignKey("codes.id"))
    discount_minor: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    access_code_id: Mapped[int | None] = mapped_column(ForeignKey("codes.id"))
    # Answers to the questions asked once per order, by question id (migration 0024).
    answers: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    # What its refunds give back, requested or made (migration 0021): kept by
    # services/money/refunds.py under the order's lock, so pages read a number.
    refunded_minor: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Who the invoice is made out to (migration 0021); no name, no invoice.
    billing_name: Mapped[str | None] = mapped_column(String(200))
    billing_address: Mapped[str | None] = mapped_column(String(500))
    # Where it was sold (migration 0029): online, or at the box office by the clerk `sold_by` (the order's
    # user too: the hold was theirs), with the address the clerk typed for the tickets, if any.
    channel: Mapped[str] = mapped_column(String(12), default="online", server_default="online")
    sold_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    buyer_email: Mapped[str | None] = mapped_column(String(254))
    # The language the buyer used when buying (migration 0028): its mails, PDFs and `.ics` speak it.
    locale: Mapped[str] = mapped_column(String(8), default="en", server_default="en")

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    event: Mapped[Event] = relationship()
    tickets: Mapped[list[Ticket]] = relationship(back_populates="order", order_by="Ticket.id")
    code: Mapped[Code | None] = relationship(foreign_keys=[code_id])
    access_code: Mapped[Code | None] = relationship(foreign_keys=[access_code_id])

    __table_args__ = (
        CheckConstraint("channel IN ('online', 'box_office')", name="channel"),
        CheckConstraint("(channel = 'box_office') = (sold_by IS NOT NULL)", name="box_office_has_clerk"),
        Index("ix_orders_event_created", "event_id", "created_at"),
        Index("ix_orders_code", "code_id", "user_id", postgresql_where=text("code_id IS NOT NULL")),
        Index("ix_orders_access_code", "access_code_id", postgresql_where=text("access_code_id IS NOT NULL")),
    )


class Ticket(db.Model):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), index=True)
    unit_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("units.id"))
    tier_id: Mapped[int] = mapped_column(ForeignKey("tiers.id"))
    # Unguessable: 128 random bits, URL-safe. What the QR code carries.
    code: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[TicketStatus] = mapped_column(enum_column(TicketStatus, "ticket_status"), default=TicketStatus.VALID)
    price_minor: Mapped[int] = mapped_column(Integer)
    checked_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checked_in_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Who the ticket is for, and the answers asked per ticket, by question id (migration 0024).
    attendee_name: Mapped[str | None] = mapped_column(String(120))
    # Who holds it after a transfer (NULL: the order's buyer), and when it was transferred: once only.
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    transferred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Let in at an offline gate: which device, and when by its clock (the first such, services/admin/door_sync.py).
    door_device: Mapped[str | None] = mapped_column(String(64))
    door_device_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answers: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))

    order: Mapped[Order] = relationship(back_populates="tickets")
    unit: Mapped[Unit] = relationship()
    tier: Mapped[Tier] = relationship()

    __table_args__ = (
        # Invariant 1 in the database: one valid ticket per seat or place.
        Index("uq_tickets_one_valid_per_unit", "unit_id", unique=True, postgresql_where=text("status = 'valid'")),
        Index("ix_tickets_event", "event_id", "id"),
        Index("ix_tickets_holder", "holder_id", postgresql_where=text("holder_id IS NOT NULL")),
    )
