"""tb_rank_seats computes the venue's focal point once, whatever the planner thinks of the event's size

Revision ID: 0026
Revises: 0025
"""
from alembic import op

from migrations.functions import frozen

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade():
    op.execute(frozen("tb_rank_seats", "0026"))


def downgrade():
    op.execute(frozen("tb_rank_seats", "0018"))
