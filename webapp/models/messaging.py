"""What the shop sends and records: e-mail waiting in the outbox, webhooks and their deliveries, the audit log."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.columns import utcnow_sql
from webapp.models.people import User


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
    # The language it is rendered in, with its attachments (migration 0028).
    locale: Mapped[str] = mapped_column(String(8), default="en", server_default="en")

    __table_args__ = (
        Index("ix_outbox_unsent", "id", postgresql_where=text("sent_at IS NULL")),
        Index("ix_outbox_due", "next_attempt_at", "id",
              postgresql_where=text("sent_at IS NULL AND failed_at IS NULL")),
    )


class WebhookEndpoint(db.Model):
    """An HTTPS address an admin registered for some kinds of events, of one event or all (migration 0009)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    organiser_id: Mapped[int] = mapped_column(ForeignKey("organisers.id", ondelete="CASCADE"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    # The HMAC key; the receiver needs the same one, so it is kept as it is.
    secret: Mapped[str] = mapped_column(String(80))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())

    __table_args__ = (
        CheckConstraint("cardinality(event_types) > 0", name="some_types"),
        Index("ix_webhook_endpoints_organiser", "organiser_id", "id"),
    )


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


class AuditLog(db.Model):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Whose record it is (migration 0025); NULL: the platform's own (an organiser made before it had a team).
    organiser_id: Mapped[int | None] = mapped_column(ForeignKey("organisers.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"), index=True)
    action: Mapped[str] = mapped_column(String(60))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int | None] = mapped_column(BigInteger)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())

    actor: Mapped[User | None] = relationship()
