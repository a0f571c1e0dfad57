"""Waiting: the waiting list for sold-out tiers, and an event's waiting room with the places in it."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.columns import enum_column, utcnow_sql
from webapp.models.events import Event, Tier
from webapp.models.people import User


class WaitlistStatus(str, enum.Enum):
    WAITING = "waiting"
    OFFERED = "offered"
    FULFILLED = "fulfilled"
    LEFT = "left"
    REMOVED = "removed"
    LAPSED = "lapsed"  # an offer ran out or was declined


class WaitlistEntry(db.Model):
    """A buyer's place in line for a sold-out tier (or any tier of the event)."""

    __tablename__ = "waitlist_entries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # line order
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("tiers.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[WaitlistStatus] = mapped_column(
        enum_column(WaitlistStatus, "waitlist_status"), default=WaitlistStatus.WAITING
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=utcnow_sql(), onupdate=utcnow_sql()
    )
    # The language of the request that joined: the offer mails speak it (migration 0028).
    locale: Mapped[str] = mapped_column(String(8), default="en", server_default="en")

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


class WaitingRoom(db.Model):
    """An event's waiting-room settings and admission state (webapp/services/waiting/waiting_room/)."""

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
    # Bumped whenever what a buyer in the waiting room sees may have changed: the polls' ETag.
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
    admit_rate: Mapped[float | None] = mapped_column(Float)
    conversion: Mapped[float | None] = mapped_column(Float)
    rated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The most shopping at once the shop's measured delay allows now (waiting_room/outflow.py);
    # None while the room does not follow the shop.
    outflow_window: Mapped[int | None] = mapped_column(Integer)
    outflow_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
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
        CheckConstraint("outflow_window IS NULL OR outflow_window >= 1", name="ck_waiting_rooms_outflow_window"),
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
    # When the buyer's page collected its pass (it was given the pass cookie): the room's window grows only
    # with the people let in who reached the shop (outflow.py; migration 0035).
    turn_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Where to mail "it is your turn" with a link that lets the buyer in from any device, if they asked
    # (waiting_room/turn_mail.py; migration 0022).
    notify_email: Mapped[str | None] = mapped_column(String(254))
    # The language of the request that asked for that mail (migration 0028).
    notify_locale: Mapped[str] = mapped_column(String(8), default="en", server_default="en")

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


class ShopDelay(db.Model):
    """One app process's latest report of how long the shop's requests queued (waiting_room/outflow.py)."""

    __tablename__ = "shop_delays"

    # host:pid of the reporting process.
    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    delay_ms: Mapped[float] = mapped_column(Float)
    measured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
