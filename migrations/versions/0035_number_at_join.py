"""A place that joins after the sale start is numbered by its own join

The numbering of the admission pass becomes a function (tb_number_places),
and a join after the start calls it too, through tb_number_arrival: the
page gets its number in the join's answer instead of asking for it, so an
arriving crowd costs the room one request each.

`waiting_room_entries.turn_seen_at`: when the page of a place let in
collected its pass. The window of a room that follows the shop grows only
with the people let in who reached the shop, not with those still on their
way (webapp/services/waiting/waiting_room/outflow.py).

Revision ID: 0035
Revises: 0034
"""
import sqlalchemy as sa
from alembic import op

from migrations.functions import current

revision = '0035'
down_revision = '0034'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("waiting_room_entries", sa.Column("turn_seen_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(current("tb_number_places", "10373809da92"))
    op.execute(current("tb_number_arrival", "5aed76a11a7a"))


def downgrade():
    op.execute("DROP FUNCTION tb_number_arrival(bigint, bigint)")
    op.execute("DROP FUNCTION tb_number_places(bigint, bigint, integer)")
    op.drop_column("waiting_room_entries", "turn_seen_at")
