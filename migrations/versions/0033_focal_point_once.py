"""The focal point and a seat's distance to it, one SQL function each, for the generator and tb_rank_seats alike

Revision ID: 0033
Revises: 0026
"""
from alembic import op

from migrations.functions import current, frozen

revision = '0033'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade():
    op.execute(current("tb_seat_distance", "658c4d6c0adf"))
    op.execute(current("tb_focal_point", "9dada0ff6216"))
    op.execute(current("tb_rank_seats", "1467dcb0dc75"))


def downgrade():
    op.execute(frozen("tb_rank_seats", "0026"))
    op.execute("DROP FUNCTION tb_focal_point(bigint, integer, integer, integer)")
    op.execute("DROP FUNCTION tb_seat_distance(integer, integer, numeric, numeric)")
