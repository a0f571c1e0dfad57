"""Organisers (the tenants of one install) and the members of their teams (migration 0025)."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ARRAY, CheckConstraint, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.columns import utcnow_sql


class Role(str, enum.Enum):
    """What a member may do, widest first (services/people/organisers.py says which role reaches what)."""

    OWNER = "owner"
    MANAGER = "manager"
    BOX_OFFICE = "box_office"
    DOOR = "door"
    VIEWER = "viewer"


ROLE_VALUES = tuple(r.value for r in Role)


class Organiser(db.Model):
    __tablename__ = "organisers"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    # The language of its pages for a buyer who chose none and whose browser asks for none we speak (webapp/i18n.py).
    default_locale: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())

    __table_args__ = (CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]*$'", name="slug_shape"),)


class OrganiserMember(db.Model):
    """A user's role in one organiser; `event_ids` limits it to some of its events (NULL: all)."""

    __tablename__ = "organiser_members"

    organiser_id: Mapped[int] = mapped_column(ForeignKey("organisers.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(12))
    event_ids: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())

    __table_args__ = (
        CheckConstraint(f"role IN {ROLE_VALUES}", name="role"),
        Index("ix_organiser_members_user", "user_id", "organiser_id"),
    )
