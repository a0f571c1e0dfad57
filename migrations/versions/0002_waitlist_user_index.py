"""waiting-list entries by person

"My waiting lists" looks entries up by user; without this index it would
scan every line of every event.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 09:00:00
"""
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('waitlist_entries', schema=None) as batch_op:
        batch_op.create_index('ix_waitlist_user', ['user_id', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('waitlist_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_waitlist_user')
