"""server-side session version; an event's end of sales

`users.session_version` lets logout end every session cookie issued before
it. `events.sales_end_at` stops reserving at a set time (NULL: the start).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 05:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('users', sa.Column('session_version', sa.Integer(), server_default='0', nullable=False))
    op.add_column('events', sa.Column('sales_end_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    op.drop_column('events', 'sales_end_at')
    op.drop_column('users', 'session_version')
