"""the waiting room: per-event settings, the line, and the reserve's pass check

`waiting_rooms` holds an event's room settings and the state of admission
(one row per event: the admission pass locks it with SKIP LOCKED, so any
number of hosts may run the pass and only one admits at a time).
`waiting_room_entries` is the line: one place per account (or per signed
anonymous token) per event, ordered by `line_key`, a secret random draw
(negative) for everyone who joined before the sale start and the arrival
time in microseconds (positive) after it.

`events.waiting_room` is true while the room guards the event (on, and the
gate not opened to everyone): the reserve functions already read the event
row, so they check the buyer's admission with no extra round trip. They are
recreated here with one more argument, `p_admission` (the admission the
buyer's signed pass names), and refuse with TB403 when the room is on and
that admission is not this buyer's, current by the database clock. A hold
made under a pass extends the pass to the hold's expiry.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-02 07:20:00
"""
import sqlalchemy as sa
from alembic import op

from migrations.functions import frozen

revision = '0008'
down_revision = '0006'
branch_labels = None
depends_on = None

OLD_SIGNATURES = (
    "tb_reserve_seats(bigint, bigint, bigint[], int)",
    "tb_reserve_places(bigint, bigint, int[], int[], int)",
    "tb_begin_reservation(bigint, bigint, int, int)",
)
NEW_SIGNATURES = (
    "tb_reserve_seats(bigint, bigint, bigint[], int, bigint)",
    "tb_reserve_places(bigint, bigint, int[], int[], int, bigint)",
    "tb_begin_reservation(bigint, bigint, int, int, bigint)",
)
RESERVE_FUNCTIONS = ("tb_begin_reservation", "tb_reserve_places", "tb_reserve_seats")


def upgrade():
    op.add_column("events", sa.Column("waiting_room", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "waiting_rooms",
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("sale_starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("admit_per_minute", sa.Integer()),
        sa.Column("max_shoppers", sa.Integer()),
        sa.Column("pass_minutes", sa.Numeric(6, 2), nullable=False, server_default="10"),
        sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("gate_open", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("sold_out", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("version", sa.BigInteger(), nullable=False, server_default="1"),
        sa.Column("credit", sa.Float(), nullable=False, server_default="0"),
        sa.Column("credited_at", sa.DateTime(timezone=True)),
        sa.Column("last_pass_at", sa.DateTime(timezone=True)),
        sa.Column("admitted_total", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("admit_per_minute IS NULL OR admit_per_minute BETWEEN 1 AND 100000",
                           name="ck_waiting_rooms_rate_range"),
        sa.CheckConstraint("max_shoppers IS NULL OR max_shoppers BETWEEN 1 AND 100000",
                           name="ck_waiting_rooms_cap_range"),
        sa.CheckConstraint("admit_per_minute IS NOT NULL OR max_shoppers IS NOT NULL",
                           name="ck_waiting_rooms_rate_or_cap"),
        sa.CheckConstraint("pass_minutes > 0 AND pass_minutes <= 60", name="ck_waiting_rooms_pass_range"),
    )
    op.create_table(
        "waiting_room_entries",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE")),
        sa.Column("anon_token", sa.String(64)),
        sa.Column("line_key", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False, server_default="waiting"),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("admitted_at", sa.DateTime(timezone=True)),
        sa.Column("pass_until", sa.DateTime(timezone=True)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('waiting', 'admitted', 'done', 'left')", name="ck_wr_entries_status"),
        sa.CheckConstraint("user_id IS NOT NULL OR anon_token IS NOT NULL", name="ck_wr_entries_owner"),
    )
    # One place per account, and per anonymous token, per event (whatever its state).
    op.create_index("uq_wr_entries_user", "waiting_room_entries", ["event_id", "user_id"], unique=True,
                    postgresql_where=sa.text("user_id IS NOT NULL"))
    op.create_index("uq_wr_entries_anon", "waiting_room_entries", ["event_id", "anon_token"], unique=True,
                    postgresql_where=sa.text("anon_token IS NOT NULL"))
    # The line: position counts and the admission grab walk this, index only.
    op.create_index("ix_wr_entries_line", "waiting_room_entries", ["event_id", "line_key", "id"],
                    postgresql_include=["status"])
    op.create_index("ix_wr_entries_admitted", "waiting_room_entries", ["event_id"],
                    postgresql_where=sa.text("status = 'admitted'"))
    op.execute("DROP FUNCTION " + "; DROP FUNCTION ".join(OLD_SIGNATURES))
    for name in RESERVE_FUNCTIONS:
        op.execute(frozen(name, "0008"))


def downgrade():
    op.execute("DROP FUNCTION " + "; DROP FUNCTION ".join(NEW_SIGNATURES))
    for name in RESERVE_FUNCTIONS:
        op.execute(frozen(name, "0005"))
    op.drop_table("waiting_room_entries")
    op.drop_table("waiting_rooms")
    op.drop_column("events", "waiting_room")
