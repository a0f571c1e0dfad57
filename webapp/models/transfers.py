"""A ticket passed from its holder to someone else by e-mail (migration 0024).

Offered with a link whose token only the recipient's mail carries (its hash
is kept); accepted once, when the ticket gets a new code and holder
(`Ticket.holder_id`) and the old code is kept here so the door can say
"transferred" rather than "unknown".
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.columns import utcnow_sql

PENDING = "pending"
ACCEPTED = "accepted"
WITHDRAWN = "withdrawn"


class TicketTransfer(db.Model):
    __tablename__ = "ticket_transfers"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    ticket_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tickets.id"))
    from_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    to_email: Mapped[str] = mapped_column(String(254))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(10), default=PENDING, server_default=PENDING)
    to_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The code the ticket had until the transfer was accepted: dead since.
    old_code: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'accepted', 'withdrawn')", name="status"),
        # One offer at a time per ticket.
        Index("uq_ticket_transfers_one_pending", "ticket_id", unique=True, postgresql_where=text("status = 'pending'")),
        Index("ix_ticket_transfers_ticket", "ticket_id", "id"),
        Index("ix_ticket_transfers_old_code", "old_code", postgresql_where=text("old_code IS NOT NULL")),
    )


class DoorDuplicate(db.Model):
    """A ticket let in at an offline gate after another gate had let it in (by the devices' clocks)."""

    __tablename__ = "door_duplicates"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    ticket_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tickets.id"))
    device: Mapped[str] = mapped_column(String(64))
    device_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    first_device: Mapped[str] = mapped_column(String(64))
    first_device_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())

    __table_args__ = (
        UniqueConstraint("ticket_id", "device", "device_at", name="uq_door_duplicates_ticket_id"),
        Index("ix_door_duplicates_event", "event_id", "id"),
    )
