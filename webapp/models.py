"""Typed SQLAlchemy 2.0 models.

Inventory is one row per sellable unit (`Unit`): a numbered seat or one
general-admission place. A reservation locks only the rows it takes. Every
inventory, hold, order and waiting-list row carries `event_id`, so one
transaction only ever touches one event (ready for sharding by event).

The database enforces what it can: a unit is `held` exactly when it points at
a hold, at most one valid ticket exists per unit, a hold has at most one
order, and a checkout has at most one payment in flight.
"""
from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    """A VARCHAR with a CHECK constraint: easier to migrate than a PG enum."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=20,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class EventStatus(str, enum.Enum):
    DRAFT = "draft"
    ON_SALE = "on_sale"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class UnitStatus(str, enum.Enum):
    AVAILABLE = "available"
    HELD = "held"
    SOLD = "sold"
    BLOCKED = "blocked"


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


class WaitlistStatus(str, enum.Enum):
    WAITING = "waiting"
    OFFERED = "offered"
    FULFILLED = "fulfilled"
    LEFT = "left"
    REMOVED = "removed"
    LAPSED = "lapsed"  # an offer ran out or was declined


def utcnow_sql():
    return func.now()


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(120))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Sessions that began before this are over (a password reset ends them).
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Bumped at logout: every session cookie issued before stops working (session_user.py).
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (CheckConstraint("email = lower(email)", name="email_lowercase"),)


class Event(db.Model):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    venue: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # When reserving stops; NULL means at the start. Compared with the database clock.
    sales_end_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    image_url: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[EventStatus] = mapped_column(
        _enum(EventStatus, "event_status"), default=EventStatus.DRAFT, server_default=EventStatus.DRAFT.value
    )
    hold_minutes: Mapped[float] = mapped_column(
        db.Numeric(6, 2, asdecimal=False), default=8, server_default="8"
    )
    per_order_limit: Mapped[int] = mapped_column(Integer, default=8, server_default="8")
    # Against hoarding (migration 0010): what one buyer may have at once for
    # this event (orders, holds, places asked for in line), and how long they
    # wait before holding again what they released or let expire.
    per_buyer_limit: Mapped[int] = mapped_column(Integer, default=10, server_default="10")
    rehold_cooldown_seconds: Mapped[int] = mapped_column(Integer, default=60, server_default="60")
    offer_hours: Mapped[float] = mapped_column(
        db.Numeric(6, 2, asdecimal=False), default=12, server_default="12"
    )
    waitlist_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    waitlist_partial_offers: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # Bumped by trigger whenever what a seat map draws changes (migration 0005).
    layout_version: Mapped[int] = mapped_column(BigInteger, default=1, server_default="1")
    # True while a waiting room guards the event (on, gate not open): the
    # reserve functions read it from the event row (migration 0008).
    waiting_room: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=utcnow_sql(), onupdate=utcnow_sql()
    )

    # The venue's IANA zone: times are stored in UTC and shown, entered and
    # mailed in this zone (see `webapp/timezones.py`).
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")

    tiers: Mapped[list[Tier]] = relationship(
        back_populates="event", order_by="Tier.sort_order, Tier.id", cascade="all, delete-orphan"
    )

    __table_args__ = (
        CheckConstraint("hold_minutes > 0 AND hold_minutes <= 60", name="hold_minutes_range"),
        CheckConstraint("per_order_limit BETWEEN 1 AND 50", name="per_order_limit_range"),
        CheckConstraint("offer_hours > 0 AND offer_hours <= 168", name="offer_hours_range"),
    )

    @property
    def is_seated(self) -> bool:
        return any(t.seated for t in self.tiers)

    @property
    def locked_tier_ids(self) -> frozenset[int]:
        """Hidden tiers left out of a buyer's snapshot (catalog.public_event); none on the model itself."""
        return frozenset()

    @property
    def has_hidden_tiers(self) -> bool:
        """Some tiers are sold only with an access code (a buyer's snapshot keeps this when it leaves them out)."""
        return any(t.hidden for t in self.tiers)

    @property
    def on_sale(self) -> bool:
        return self.status == EventStatus.ON_SALE


class Tier(db.Model):
    __tablename__ = "tiers"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    price_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="EUR", server_default="EUR")
    colour: Mapped[str] = mapped_column(String(7), default="#3b82f6", server_default="#3b82f6")
    seated: Mapped[bool] = mapped_column(Boolean, default=False)
    # The promise behind invariant 2: available + held + sold + blocked = capacity.
    capacity: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sort_order: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Neither shown nor sold without an access code that unlocks it (migration 0013).
    hidden: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    event: Mapped[Event] = relationship(back_populates="tiers")

    __table_args__ = (
        UniqueConstraint("event_id", "name", name="uq_tiers_event_name"),
        UniqueConstraint("id", "event_id", name="uq_tiers_id_event"),
        CheckConstraint("price_minor >= 0", name="price_non_negative"),
        CheckConstraint("capacity >= 0", name="capacity_non_negative"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_code"),
        CheckConstraint("colour ~ '^#[0-9a-fA-F]{6}$'", name="colour_hex"),
    )


def seat_label(section: str | None, row_label: str | None, seat_number: int | None) -> str:
    """The one spelling of a seat's name, for pages, messages and the seat map's accessible names."""
    return f"{section}, row {row_label}, seat {seat_number}"


def place_label(section: str | None, row_label: str | None, seat_number: int | None) -> str:
    """How tickets and orders name a unit: its seat, or "General admission"."""
    return "General admission" if seat_number is None else seat_label(section, row_label, seat_number)


class Unit(db.Model):
    """One sellable unit: a numbered seat or a general-admission place."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    tier_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[UnitStatus] = mapped_column(
        _enum(UnitStatus, "unit_status"), default=UnitStatus.AVAILABLE, server_default=UnitStatus.AVAILABLE.value
    )
    hold_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("holds.id"))
    # Seats only: where the seat is, and where to draw it (grid column/row
    # within its section).
    section: Mapped[str | None] = mapped_column(String(60))
    row_label: Mapped[str | None] = mapped_column(String(10))
    seat_number: Mapped[int | None] = mapped_column(Integer)
    pos_x: Mapped[int | None] = mapped_column(Integer)
    pos_y: Mapped[int | None] = mapped_column(Integer)
    # Best first (lower is better) for "best available"; set by the layout generator (migration 0012).
    best_rank: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        ForeignKeyConstraint(
            ["tier_id", "event_id"], ["tiers.id", "tiers.event_id"],
            name="fk_units_tier_event", ondelete="CASCADE",
        ),
        # A unit is held exactly when it belongs to a hold: invariant 1.
        CheckConstraint("(status = 'held') = (hold_id IS NOT NULL)", name="held_iff_hold"),
        # The hot statement of a general-admission rush walks this index and
        # never steps over held rows (see docs/design.md, "Inventory": ~6x faster than a scan).
        Index("ix_units_available", "tier_id", "id", postgresql_where=text("status = 'available'")),
        Index("ix_units_best_available", "tier_id", "best_rank", "id",
              postgresql_where=text("status = 'available' AND seat_number IS NOT NULL")),
        Index("ix_units_event_status", "event_id", "status", "tier_id"),
        Index("ix_units_hold", "hold_id", postgresql_where=text("hold_id IS NOT NULL")),
        Index(
            "uq_units_seat_position", "event_id", "section", "row_label", "seat_number",
            unique=True, postgresql_where=text("seat_number IS NOT NULL"),
        ),
    )

    @property
    def label(self) -> str:
        """How messages name this unit ("Stalls, row B, seat 5", or a GA place by number)."""
        if self.seat_number is None:
            return f"General admission place #{self.id}"
        return seat_label(self.section, self.row_label, self.seat_number)

    @property
    def place_label(self) -> str:
        """How tickets and orders show this unit: its seat, or "General admission"."""
        return place_label(self.section, self.row_label, self.seat_number)


class Hold(db.Model):
    """Units set aside for one buyer until `expires_at` (database clock)."""

    __tablename__ = "holds"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[HoldKind] = mapped_column(_enum(HoldKind, "hold_kind"), default=HoldKind.PURCHASE)
    status: Mapped[HoldStatus] = mapped_column(_enum(HoldStatus, "hold_status"), default=HoldStatus.ACTIVE)
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
        _enum(PaymentStatus, "payment_status"), default=PaymentStatus.PENDING
    )
    gateway_reference: Mapped[str | None] = mapped_column(String(64))
    decline_code: Mapped[str | None] = mapped_column(String(40))
    decline_message: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
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
    status: Mapped[OrderStatus] = mapped_column(_enum(OrderStatus, "order_status"), default=OrderStatus.CONFIRMED)
    total_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(String(200))
    # The discount code used and what it took off (the total is after it).
    code_id: Mapped[int | None] = mapped_column(ForeignKey("codes.id"))
    discount_minor: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    access_code_id: Mapped[int | None] = mapped_column(ForeignKey("codes.id"))

    user: Mapped[User] = relationship()
    event: Mapped[Event] = relationship()
    tickets: Mapped[list[Ticket]] = relationship(back_populates="order", order_by="Ticket.id")
    code: Mapped[Code | None] = relationship(foreign_keys=[code_id])
    access_code: Mapped[Code | None] = relationship(foreign_keys=[access_code_id])

    __table_args__ = (
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
    status: Mapped[TicketStatus] = mapped_column(_enum(TicketStatus, "ticket_status"), default=TicketStatus.VALID)
    price_minor: Mapped[int] = mapped_column(Integer)
    checked_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checked_in_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    order: Mapped[Order] = relationship(back_populates="tickets")
    unit: Mapped[Unit] = relationship()
    tier: Mapped[Tier] = relationship()

    __table_args__ = (
        # Invariant 1 in the database: one valid ticket per seat or place.
        Index("uq_tickets_one_valid_per_unit", "unit_id", unique=True, postgresql_where=text("status = 'valid'")),
        Index("ix_tickets_event", "event_id", "id"),
    )


class WaitlistEntry(db.Model):
    """A buyer's place in line for a sold-out tier (or any tier of the event)."""

    __tablename__ = "waitlist_entries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # line order
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("tiers.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[WaitlistStatus] = mapped_column(
        _enum(WaitlistStatus, "waitlist_status"), default=WaitlistStatus.WAITING
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=utcnow_sql(), onupdate=utcnow_sql()
    )

    user: Mapped[User] = relationship()
    tier: Mapped[Tier | None] = relationship()
    event: Mapped[Event] = relationship()

    __table_args__ = (
        CheckConstraint("quantity BETWEEN 1 AND 50", name="quantity_range"),
        # Joining twice is refused by the database too.
        Index(
            "uq_waitlist_one_live_entry", "event_id", "user_id", unique=True,
            postgresql_where=text("status IN ('waiting', 'offered')"),
        ),
        Index("ix_waitlist_line", "event_id", "id", postgresql_where=text("status = 'waiting'")),
        # "My waiting lists" and the offer banner look entries up by person.
        Index("ix_waitlist_user", "user_id", "id"),
    )


class OutboxMessage(db.Model):
    """E-mail waiting to be sent; written in the same transaction as its cause."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Which `templates/email/` message this is and what it is about (ids);
    # `body` is NULL until it is rendered (the confirmation renders at delivery).
    template: Mapped[str | None] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    html_body: Mapped[str | None] = mapped_column(Text)
    # Stable across retries, so a receiver can tell a retry from a new message.
    message_id: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When a worker may (re)try: the backoff, or the lease of the worker sending it.
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    last_error: Mapped[str | None] = mapped_column(Text)
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_outbox_unsent", "id", postgresql_where=text("sent_at IS NULL")),
        Index("ix_outbox_due", "next_attempt_at", "id",
              postgresql_where=text("sent_at IS NULL AND failed_at IS NULL")),
    )


class AuditLog(db.Model):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"), index=True)
    action: Mapped[str] = mapped_column(String(60))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int | None] = mapped_column(BigInteger)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())

    actor: Mapped[User | None] = relationship()


class InventoryClock(db.Model):
    """A version per event that moves whenever its inventory changes.

    Spread over a few shard rows so that concurrent buyers rarely touch the
    same row (no single hot counter); the event's version is their sum, which
    only ever grows once a change commits. Open seat maps compare it to tell
    "nothing changed" cheaply.
    """

    __tablename__ = "inventory_clock"

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class ApiToken(db.Model):
    """A personal API token: the secret is shown once; only its SHA-256 is kept (migration 0009)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The secret's first characters, so a list of tokens can tell them apart.
    prefix: Mapped[str] = mapped_column(String(12))
    scope: Mapped[str] = mapped_column(String(10))  # buyer / admin
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("scope IN ('buyer', 'admin')", name="scope"),
        Index("ix_api_tokens_user", "user_id", "id"),
    )


class CodeKind(str, enum.Enum):
    DISCOUNT = "discount"
    ACCESS = "access"


class Code(db.Model):
    """A discount code, or an access code that unlocks hidden tiers (migration 0013).

    Stored upper-case; `tier_ids` None means every tier (discount codes only).
    """

    __tablename__ = "codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(10))
    percent_off: Mapped[int | None] = mapped_column(Integer)
    amount_off_minor: Mapped[int | None] = mapped_column(Integer)
    tier_ids: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    max_uses: Mapped[int | None] = mapped_column(Integer)
    per_buyer_max: Mapped[int | None] = mapped_column(Integer)
    min_quantity: Mapped[int | None] = mapped_column(Integer)
    valid_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    batch: Mapped[str | None] = mapped_column(String(80))  # the name of a bulk-generated set
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())

    __table_args__ = (
        UniqueConstraint("event_id", "code", name="uq_codes_event_code"),
        CheckConstraint("code = upper(code) AND length(code) BETWEEN 3 AND 40", name="code_form"),
        CheckConstraint(
            "(kind = 'discount' AND (percent_off IS NULL) <> (amount_off_minor IS NULL))"
            " OR (kind = 'access' AND percent_off IS NULL AND amount_off_minor IS NULL"
            "     AND cardinality(tier_ids) > 0)", name="kind"),
        CheckConstraint("percent_off BETWEEN 1 AND 100", name="percent"),
        CheckConstraint("amount_off_minor > 0", name="amount"),
        CheckConstraint("max_uses > 0 AND per_buyer_max > 0 AND min_quantity > 0", name="limits"),
        CheckConstraint("valid_until > valid_from", name="window"),
    )


class DoorAssignment(db.Model):
    """Door staff for one event: may check its tickets in, and see nothing else (migration 0011)."""

    __tablename__ = "door_assignments"

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    assigned_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())

    user: Mapped[User] = relationship(foreign_keys=[user_id])

    __table_args__ = (Index("ix_door_assignments_user", "user_id", "event_id"),)


class WebhookEndpoint(db.Model):
    """An HTTPS address an admin registered for some kinds of events, of one event or all (migration 0009)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    # The HMAC key; the receiver needs the same one, so it is kept as it is.
    secret: Mapped[str] = mapped_column(String(80))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())

    __table_args__ = (CheckConstraint("cardinality(event_types) > 0", name="some_types"),)


class WebhookDelivery(db.Model):
    """One event for one endpoint: written by a trigger with its cause, sent at least once by the worker."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))
    event_type: Mapped[str] = mapped_column(String(40))
    # The exact bytes that are signed and sent (JSON text, not jsonb, which would reorder them).
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_response: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_webhook_deliveries_due", "next_attempt_at", "id",
              postgresql_where=text("delivered_at IS NULL AND failed_at IS NULL")),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    )



# Event times in the venue's zone: `starts_at` comes out of the database in UTC
# and is handed to the rest of the app as the same instant on the venue's
# clock, so every page, mail and file shows local time without converting.
from sqlalchemy import event as _orm_event  # noqa: E402
from sqlalchemy.orm.attributes import set_committed_value  # noqa: E402


def _venue_clock(target: Event, *_args) -> None:
    loaded = target.__dict__
    if loaded.get("starts_at") is not None and "timezone" in loaded:
        from webapp.timezones import localise

        set_committed_value(target, "starts_at", localise(loaded["starts_at"], loaded["timezone"]))


_orm_event.listen(Event, "load", _venue_clock)
_orm_event.listen(Event, "refresh", _venue_clock)


class WaitingRoom(db.Model):
    """An event's waiting-room settings and admission state (webapp/services/waiting/waiting_room.py)."""

    __tablename__ = "waiting_rooms"

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    sale_starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    admit_per_minute: Mapped[int | None] = mapped_column(Integer)
    max_shoppers: Mapped[int | None] = mapped_column(Integer)
    pass_minutes: Mapped[float] = mapped_column(db.Numeric(6, 2, asdecimal=False), default=10, server_default="10")
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    gate_open: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    sold_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # Bumped whenever what a buyer in line sees may have changed: the polls' ETag.
    version: Mapped[int] = mapped_column(BigInteger, default=1, server_default="1")
    # Admissions earned by the rate but not yet given (the fraction carries over).
    credit: Mapped[float] = mapped_column(db.Float, default=0, server_default="0")
    credited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_pass_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    admitted_total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The room's marks (migration 0015): every number up to `served` was let in
    # or stopped waiting; `issued` is the highest number given; `left_count`
    # counts the numbers above `served` that stopped waiting. A position is
    # number - served, less the leavers ahead (positions.py).
    served: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    issued: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    left_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Measured, exponentially weighted: admissions per minute, and the share
    # of finished admissions that bought (the estimated waits come from these).
    admit_rate: Mapped[float | None] = mapped_column(db.Float)
    conversion: Mapped[float | None] = mapped_column(db.Float)
    rated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Against a client that cheats (migration 0016, waiting_room/screening.py): the
    # proof of work a join carries (the most tries a browser may need; 0: none), the
    # places one client address may take per minute (None: no limit), and whether a
    # flagged client waits without end instead of being told.
    challenge_difficulty: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    places_per_address: Mapped[int | None] = mapped_column(Integer)
    flagged_wait_forever: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=utcnow_sql(), onupdate=utcnow_sql()
    )

    __table_args__ = (
        CheckConstraint("challenge_difficulty BETWEEN 0 AND 1000000", name="ck_waiting_rooms_challenge_range"),
        CheckConstraint("places_per_address IS NULL OR places_per_address BETWEEN 1 AND 10000",
                        name="ck_waiting_rooms_places_per_address_range"),
        CheckConstraint("admit_per_minute IS NULL OR admit_per_minute BETWEEN 1 AND 100000",
                        name="ck_waiting_rooms_rate_range"),
        CheckConstraint("max_shoppers IS NULL OR max_shoppers BETWEEN 1 AND 100000",
                        name="ck_waiting_rooms_cap_range"),
        CheckConstraint("admit_per_minute IS NOT NULL OR max_shoppers IS NOT NULL",
                        name="ck_waiting_rooms_rate_or_cap"),
        CheckConstraint("pass_minutes > 0 AND pass_minutes <= 60", name="ck_waiting_rooms_pass_range"),
        CheckConstraint("served >= 0 AND left_count >= 0 AND served + left_count <= issued",
                        name="ck_waiting_rooms_marks"),
    )


class WaitingRoomEntry(db.Model):
    """A place in an event's waiting room: one per account, or per signed anonymous token."""

    __tablename__ = "waiting_room_entries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    anon_token: Mapped[str | None] = mapped_column(String(64))
    # The order numbers are given in: a secret random draw (negative) for an
    # account before the sale start, the arrival time in microseconds
    # (positive) otherwise (engine.py: one ticket in the draw per person).
    line_key: Mapped[int] = mapped_column(BigInteger)
    # The place's number, dense per room, given by the admission pass: at the
    # start to the early places in `line_key` order, then as places arrive.
    number: Mapped[int | None] = mapped_column(BigInteger)
    # waiting -> admitted -> done (pass used up or ran out); left: the buyer gave it up.
    status: Mapped[str] = mapped_column(String(10), default="waiting", server_default="waiting")
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    admitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pass_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("status IN ('waiting', 'admitted', 'done', 'left')", name="ck_wr_entries_status"),
        CheckConstraint("user_id IS NOT NULL OR anon_token IS NOT NULL", name="ck_wr_entries_owner"),
        Index("uq_wr_entries_user", "event_id", "user_id", unique=True,
              postgresql_where=text("user_id IS NOT NULL")),
        Index("uq_wr_entries_anon", "event_id", "anon_token", unique=True,
              postgresql_where=text("anon_token IS NOT NULL")),
        Index("uq_wr_entries_number", "event_id", "number", unique=True, postgresql_where=text("number IS NOT NULL")),
        Index("ix_wr_entries_unnumbered", "event_id", "line_key", "id",
              postgresql_where=text("number IS NULL AND status = 'waiting'")),
        Index("ix_wr_entries_admitted", "event_id", postgresql_where=text("status = 'admitted'")),
    )
