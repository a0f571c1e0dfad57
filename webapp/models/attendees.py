"""The organiser's questions to buyers, per event or per tier (migration 0024).

The answers live with what they describe: `Order.answers` for the questions
asked once per order, `Ticket.answers` (and `Ticket.attendee_name`) for those
asked per ticket.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ARRAY, Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.columns import utcnow_sql

QUESTION_KINDS = ("text", "number", "choice", "choices", "checkbox", "date")


class Question(db.Model):
    __tablename__ = "questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    # Asked only of tickets of this tier (or, once per order, of orders holding one); NULL: of all.
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("tiers.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    options: Mapped[list[str]] = mapped_column(ARRAY(String(100)), default=list, server_default="{}")
    required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    per_ticket: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    sort_order: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=utcnow_sql())

    __table_args__ = (
        CheckConstraint("kind IN ('text', 'number', 'choice', 'choices', 'checkbox', 'date')", name="kind"),
        CheckConstraint("(kind IN ('choice', 'choices')) = (cardinality(options) > 0)",
                        name="options_for_choices"),
        Index("ix_questions_event", "event_id", "sort_order", "id"),
    )
