"""Organisers (the tenants of one install) and the members of their teams (migration 0025)."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ARRAY, BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, text
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
    # What its invoice and credit-note numbers start with; a new prefix is a new series (migration 0030).
    invoice_prefix: Mapped[str] = mapped_column(String(30), default="INV-", server_default="INV-")
    credit_note_prefix: Mapped[str] = mapped_column(String(30), default="CN-", server_default="CN-")
    # Its own Stripe account (services/money/payment_settings.py): the publishable key, and the names of the
    # environment variables holding the secret key and the webhook secret. None: the install's account.
    stripe_publishable_key: Mapped[str | None] = mapped_column(String(200))
    stripe_secret_key_env: Mapped[str | None] = mapped_column(String(64))
    stripe_webhook_secret_env: Mapped[str | None] = mapped_column(String(64))
    # The language of its pages for a buyer who chose none and whose browser asks for none we speak (webapp/i18n.py).
    default_locale: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    # The display name and Reply-To of every mail about its events (migration 0029); the envelope From
    # stays the install's verified MAIL_FROM address. None: the install's name, no Reply-To.
    mail_from_name: Mapped[str | None] = mapped_column(String(120))
    mail_reply_to: Mapped[str | None] = mapped_column(String(254))

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


class OrganiserInvitation(db.Model):
    """An invitation mailed to join a team (migration 0029): pending until accepted, withdrawn or expired
    (its signed link's age, INVITATION_MAX_AGE_SECONDS)."""

    __tablename__ = "organiser_invitations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    organiser_id: Mapped[int] = mapped_column(ForeignKey("organisers.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(12))
    invited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(f"role IN {ROLE_VALUES}", name="role"),
        Index("ix_organiser_invitations_pending", "organiser_id", "id",
              postgresql_where=text("accepted_at IS NULL AND revoked_at IS NULL")),
    )
