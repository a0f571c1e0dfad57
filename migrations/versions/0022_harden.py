"""hardening: a per-event limit per client address; a draft reserved as an unknown id; "e-mail me" in the waiting room

`events.per_address_limit`: the tickets one client address may hold or have
bought for the event (NULL: no limit; 20 by default), against one person
holding a small event with many accounts. Checked inside the reserve
statement (tb_address_rules, called by the three entry points, which take
the address as a new last argument) under an advisory lock per (event,
address), so it holds under concurrency.

`holds.client_addr`: the address a hold was made from. Its default reads the
transaction-local setting `tb.client_addr`, which tb_address_rules sets and
the entry point clears once its hold is made: the functions that insert
holds (tb_hold_*) are unchanged. Indexed per event for the rule's count.

tb_begin_reservation answers a draft as it answers an id that does not
exist (TB404), so reserving cannot tell the two apart.

`waiting_room_entries.notify_email`: where to mail a place's "it is your
turn" with its link, when the buyer asked for it (the admission pass queues
the mail in its own transaction; services/waiting/waiting_room/turn_mail.py).

Revision ID: 0022
Revises: 0016
Create Date: 2026-12-07 03:30:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.functions import current, frozen

revision = '0022'
down_revision = '0019'
branch_labels = None
depends_on = None

# Each with the digest of its current text (see migrations/functions.py).
ENTRY_POINTS = {"tb_reserve_places": ("7d0ba06a935c", "bigint, bigint, int[], int[], int, bigint, text[]"),
                "tb_reserve_seats": ("7bb11bee1b6c", "bigint, bigint, bigint[], int, bigint, text[]"),
                # Frozen: 0018 gives it a wheelchair count and a section as well.
                "tb_reserve_best": (None, "bigint, bigint, int, int, int, bigint, text[]")}


def upgrade():
    op.add_column("events", sa.Column("per_address_limit", sa.Integer(), server_default="20"))
    op.create_check_constraint(op.f("ck_events_per_address_limit_range"), "events",
                               "per_address_limit IS NULL OR per_address_limit BETWEEN 1 AND 10000")
    op.add_column("holds", sa.Column("client_addr", postgresql.INET(),
                                     server_default=sa.text("CAST(nullif(current_setting('tb.client_addr', true), '')"
                                                            " AS inet)")))
    op.create_index("ix_holds_event_client_addr", "holds", ["event_id", "client_addr"],
                    postgresql_where=sa.text("client_addr IS NOT NULL"))
    op.add_column("waiting_room_entries", sa.Column("notify_email", sa.String(254)))
    op.execute(current("tb_begin_reservation", "83a0edd7f9bc"))
    op.execute(current("tb_address_rules", "d5916e07577d"))
    for name, (digest, args) in ENTRY_POINTS.items():
        # A new signature: drop the old one, or CREATE OR REPLACE would add an overload beside it.
        op.execute(f"DROP FUNCTION {name}({args})")
        op.execute(current(name, digest) if digest else frozen(name, "0022"))


def downgrade():
    for name, (_, args) in ENTRY_POINTS.items():
        op.execute(f"DROP FUNCTION {name}({args}, inet)")
        op.execute(frozen(name, "0013"))
    op.execute("DROP FUNCTION tb_address_rules(bigint, bigint, inet, int)")
    op.execute(frozen("tb_begin_reservation", "0010"))
    op.drop_column("waiting_room_entries", "notify_email")
    op.drop_index("ix_holds_event_client_addr", table_name="holds")
    op.drop_column("holds", "client_addr")
    op.drop_constraint(op.f("ck_events_per_address_limit_range"), "events", type_="check")
    op.drop_column("events", "per_address_limit")
