"""A place that joins after the sale start is numbered by its own join

The numbering of the admission pass becomes a function (tb_number_places),
and a join after the start calls it too, through tb_number_arrival: the
page gets its number in the join's answer instead of asking for it, so an
arriving crowd costs the room one request each.

Revision ID: 0035
Revises: 0034
"""
from alembic import op

from migrations.functions import current

revision = '0035'
down_revision = '0034'
branch_labels = None
depends_on = None


def upgrade():
    op.execute(current("tb_number_places", "10373809da92"))
    op.execute(current("tb_number_arrival", "5aed76a11a7a"))


def downgrade():
    op.execute("DROP FUNCTION tb_number_arrival(bigint, bigint)")
    op.execute("DROP FUNCTION tb_number_places(bigint, bigint, integer)")
