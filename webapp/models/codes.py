"""Discount codes and access codes (migration 0013)."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ARRAY, Boolean, CheckConstraint, DateTime, ForeignKey, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.columns import utcnow_sql


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
