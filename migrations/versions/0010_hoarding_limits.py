"""hoarding: a per-event limit per buyer, and a cool-down before re-holding what was let go

Two columns on `events`, set by the admin:

  per_buyer_limit           tickets one buyer may have for the event at once,
                            across orders, live holds and places asked for
                            on the waiting list (default 10)
  rehold_cooldown_seconds   how long a buyer must wait before holding again
                            the seats (for general admission: the tier) they
                            released or let expire (default 60; 0 = none)

Both are enforced inside the reserve functions (as 0008 left them, with the
waiting room's admission check), replaced here with CREATE OR REPLACE (same
signatures), so the reserve stays one statement. New refusals, in the style of 0005:

  TB413 'buyer limit'   DETAIL {limit, have}: over the per-buyer limit
  TB429 'cool-down'     DETAIL {wait, expired, seated}: seconds left before
                        these seats (or this tier) may be held again

Serialisation: every reservation first takes a transaction-scoped advisory
lock on (event, buyer) (`tb_buyer_claims`), so one buyer's parallel reserves
(and waiting-list joins, which take the same lock) run one after another and
each counts what the previous one left. The lock comes before any row lock
(lock order: buyer, then the basket hold, then units, then the clock); buyers
never wait for each other on it.

A new basket that keeps seats of a basket it replaced a moment ago (or, for
general admission, the same tier) keeps that basket's deadline: otherwise
reserving the same seats again just before time runs out would hold them for
ever (see tb_buyer_rules).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 07:30:00
"""
import sqlalchemy as sa
from alembic import op

from migrations.functions import current, frozen

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("events", sa.Column("per_buyer_limit", sa.Integer, nullable=False, server_default="10"))
    op.add_column("events", sa.Column("rehold_cooldown_seconds", sa.Integer, nullable=False, server_default="60"))
    op.execute(frozen("tb_buyer_count", "0010"))  # 0029 changes it
    for name, digest in {"tb_buyer_claims": "130e2f6b779f", "tb_buyer_rules": "347a88882615"}.items():
        op.execute(current(name, digest))
    op.execute(frozen("tb_begin_reservation", "0010"))  # 0022 changes it
    # Frozen: 0013 renames these tb_hold_places and tb_hold_seats, 0014 changes them.
    for name in ("tb_reserve_places", "tb_reserve_seats"):
        op.execute(frozen(name, "0010"))


def downgrade():
    op.execute("DROP FUNCTION tb_reserve_seats(bigint, bigint, bigint[], int, bigint);"
               " DROP FUNCTION tb_reserve_places(bigint, bigint, int[], int[], int, bigint);"
               " DROP FUNCTION tb_begin_reservation(bigint, bigint, int, int, bigint);"
               " DROP FUNCTION tb_buyer_rules(events, bigint, int, bigint[], int[]);"
               " DROP FUNCTION tb_buyer_claims(bigint, bigint); DROP FUNCTION tb_buyer_count(bigint, bigint);")
    for name in ("tb_begin_reservation", "tb_reserve_places", "tb_reserve_seats"):
        op.execute(frozen(name, "0008"))
    op.drop_column("events", "rehold_cooldown_seconds")
    op.drop_column("events", "per_buyer_limit")
