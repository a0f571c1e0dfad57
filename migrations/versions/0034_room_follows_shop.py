"""The waiting room follows the shop: each process's measured queueing delay, and each room's window

`shop_delays` holds one row per app process: the mean time the shop's
requests waited in the server's queue over its last second, while that is
worth reporting (webapp/overload.py). `waiting_rooms.outflow_window` is the
most people shopping at once the admission pass allows while it follows
that delay (webapp/services/waiting/waiting_room/outflow.py), and when it
last changed; NULL while the room does not.

Revision ID: 0034
Revises: 0027
"""
import sqlalchemy as sa
from alembic import op

revision = '0034'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "shop_delays",
        sa.Column("source", sa.String(100), primary_key=True),
        sa.Column("delay_ms", sa.Float(), nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.add_column("waiting_rooms", sa.Column("outflow_window", sa.Integer(), nullable=True))
    op.add_column("waiting_rooms", sa.Column("outflow_changed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint(op.f("ck_waiting_rooms_outflow_window"), "waiting_rooms",
                               "outflow_window IS NULL OR outflow_window >= 1")


def downgrade():
    op.drop_constraint(op.f("ck_waiting_rooms_outflow_window"), "waiting_rooms", type_="check")
    op.drop_column("waiting_rooms", "outflow_changed_at")
    op.drop_column("waiting_rooms", "outflow_window")
    op.drop_table("shop_delays")
