"""People: accounts (buyers, organisers' team members, platform administrators) and their API tokens."""
from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.columns import utcnow_sql


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
    # An admin token acts for its maker's organiser, with the role they had (migration 0025).
    organiser_id: Mapped[int | None] = mapped_column(ForeignKey("organisers.id", ondelete="CASCADE"))
    role: Mapped[str | None] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("scope IN ('buyer', 'admin')", name="scope"),
        CheckConstraint("(scope = 'admin') = (organiser_id IS NOT NULL AND role IN "
                        "('owner', 'manager', 'box_office', 'door', 'viewer'))", name="admin_has_organiser"),
        Index("ix_api_tokens_user", "user_id", "id"),
    )
