"""Events and what they sell: tiers, and one unit row per seat or general-admission place.

Also the inventory clock, whose version moves whenever an event's units change, and
the seat's one spelling (`seat_label`).
"""
from __future__ import annotations

import enum
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.orm.attributes import set_committed_value

from webapp.extensions import db
from webapp.i18n import page_gettext as _  # the page's kept catalog: a map says a thousand seats' names
from webapp.models.columns import enum_column, utcnow_sql


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


class Event(db.Model):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Whose event it is (migration 0025): admin reads are scoped by it (services/organiser_scope.py).
    organiser_id: Mapped[int] = mapped_column(ForeignKey("organisers.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    venue: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # When reserving stops; NULL means at the start. Compared with the database clock.
    sales_end_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    image_url: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[EventStatus] = mapped_column(
        enum_column(EventStatus, "event_status"), default=EventStatus.DRAFT, server_default=EventStatus.DRAFT.value
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
    # Tickets one client address may hold or have bought (NULL: no limit); tb_address_rules (migration 0022).
    per_address_limit: Mapped[int | None] = mapped_column(Integer, default=20, server_default="20")
    # Tickets one payment card may pay for, across accounts (NULL: no limit); checked before capture (0030).
    per_instrument_limit: Mapped[int | None] = mapped_column(Integer)
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
    # Best available ranks seats by their distance to this point (seat-map
    # positions; NULL: the centre front) and, while `avoid_orphans`, leaves
    # no single seat alone unless nothing else is left (migration 0018).
    focal_x: Mapped[float | None] = mapped_column(db.Numeric(8, 2, asdecimal=False))
    focal_y: Mapped[float | None] = mapped_column(db.Numeric(8, 2, asdecimal=False))
    avoid_orphans: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=utcnow_sql(), onupdate=utcnow_sql()
    )

    # The venue's IANA zone: times are stored in UTC and shown, entered and
    # mailed in this zone (see `webapp/timezones.py`).
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # Each ticket's attendee name on the hold page: off, asked or required;
    # changeable after buying until `attendee_edit_until` (NULL: the start) (migration 0024).
    attendee_names: Mapped[str] = mapped_column(String(10), default="off", server_default="off")
    attendee_edit_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Holders may pass tickets on by e-mail, until `transfers_until` (NULL: the start) (migration 0024).
    transfers_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    transfers_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The buyer's own cancel (migration 0021): until this many hours before
    # the start (NULL: until the start), keeping a fixed fee or a percentage.
    cancel_until_hours: Mapped[int | None] = mapped_column(Integer)
    cancel_fee_minor: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cancel_fee_percent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The buyer must give a billing name and address (for an invoice).
    billing_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    tiers: Mapped[list[Tier]] = relationship(
        back_populates="event", order_by="Tier.sort_order, Tier.id", cascade="all, delete-orphan"
    )

    __table_args__ = (
        CheckConstraint("hold_minutes > 0 AND hold_minutes <= 60", name="hold_minutes_range"),
        CheckConstraint("per_order_limit BETWEEN 1 AND 50", name="per_order_limit_range"),
        CheckConstraint("per_address_limit IS NULL OR per_address_limit BETWEEN 1 AND 10000",
                        name="per_address_limit_range"),
        CheckConstraint("per_instrument_limit IS NULL OR per_instrument_limit BETWEEN 1 AND 10000",
                        name="per_instrument_limit_range"),
        CheckConstraint("offer_hours > 0 AND offer_hours <= 168", name="offer_hours_range"),
        CheckConstraint("attendee_names IN ('off', 'asked', 'required')", name="attendee_names_mode"),
        Index("ix_events_organiser", "organiser_id", "id"),
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
    # Tax (migration 0021): the rate in basis points (2000 = 20 %), included in the price.
    tax_rate_bp: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # False: the price was entered net and price_minor is net plus its tax, rounded per ticket (migration 0030,
    # services/money/tax.py); price_minor is always what a ticket costs the buyer.
    tax_inclusive: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))

    event: Mapped[Event] = relationship(back_populates="tiers")

    __table_args__ = (
        UniqueConstraint("event_id", "name", name="uq_tiers_event_name"),
        UniqueConstraint("id", "event_id", name="uq_tiers_id_event"),
        CheckConstraint("price_minor >= 0", name="price_non_negative"),
        CheckConstraint("capacity >= 0", name="capacity_non_negative"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_code"),
        CheckConstraint("colour ~ '^#[0-9a-fA-F]{6}$'", name="colour_hex"),
    )


# A seat's properties (migration 0018) by their name in forms and the API, with
# how pages and accessible names say them; the map, the legend and the filter
# list them in this order.
# Said in the page's language wherever they are drawn (lazy: read when shown, not at import).
SEAT_PROPERTIES = {
    "wheelchair": _l("Wheelchair space"),
    "companion": _l("Companion seat"),
    "restricted_view": _l("Restricted view"),
    "aisle": _l("Aisle seat"),
}


def seat_label(section: str | None, row_label: str | None, seat_number: int | None) -> str:
    """The one spelling of a seat's name, for pages, messages and the seat map's accessible names."""
    # In the page's language (Flask-Babel; English outside a request).
    return _("%(section)s, row %(row)s, seat %(seat)s", section=section, row=row_label, seat=seat_number)


def place_label(section: str | None, row_label: str | None, seat_number: int | None) -> str:
    """How tickets and orders name a unit: its seat, or "General admission"."""
    return _("General admission") if seat_number is None else seat_label(section, row_label, seat_number)


class Unit(db.Model):
    """One sellable unit: a numbered seat or a general-admission place."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    tier_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[UnitStatus] = mapped_column(
        enum_column(UnitStatus, "unit_status"), default=UnitStatus.AVAILABLE, server_default=UnitStatus.AVAILABLE.value
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
    # Seat properties (migration 0018): a companion seat is tied to one
    # wheelchair space, and best available sells the two together.
    wheelchair: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    companion_for: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("units.id", ondelete="SET NULL", name="fk_units_companion_for"))
    restricted_view: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    aisle: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

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
        CheckConstraint("NOT (wheelchair AND companion_for IS NOT NULL)", name="companion_not_wheelchair"),
        Index("uq_units_companion_for", "companion_for", unique=True,
              postgresql_where=text("companion_for IS NOT NULL")),
        Index("ix_units_wheelchair", "tier_id", "best_rank", "id",
              postgresql_where=text("wheelchair AND status = 'available'")),
        # The orphan-seat rule's probes beside a run (tb_free_seat).
        Index("ix_units_position", "event_id", "pos_y", "pos_x", postgresql_where=text("seat_number IS NOT NULL")),
        Index("ix_units_best_in_section", "tier_id", "section", "best_rank", "id",
              postgresql_where=text("status = 'available' AND seat_number IS NOT NULL")),
        # The seat list's counts of free seats per section and row (migration 0019).
        Index("ix_units_free_seats", "event_id", "section", "row_label", "tier_id",
              postgresql_where=text("status = 'available' AND seat_number IS NOT NULL")),
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


# Event times in the venue's zone: `starts_at` comes out of the database in UTC
# and is handed to the rest of the app as the same instant on the venue's
# clock, so every page, mail and file shows local time without converting.
def _venue_clock(target: Event, *_args) -> None:
    loaded = target.__dict__
    if loaded.get("starts_at") is not None and "timezone" in loaded:
        from webapp.timezones import localise

        set_committed_value(target, "starts_at", localise(loaded["starts_at"], loaded["timezone"]))


sqlalchemy_event.listen(Event, "load", _venue_clock)
sqlalchemy_event.listen(Event, "refresh", _venue_clock)
