"""door staff: accounts that may check tickets in for the events they are assigned to, and nothing else

Door staff are ordinary (non-admin) accounts. The admin area stays 404 for
them; the door pages look an assignment up per request, so removing one
takes effect at the next scan.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 12:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'door_assignments',
        sa.Column('event_id', sa.Integer(), sa.ForeignKey('events.id', ondelete='CASCADE'), nullable=False),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('users.id', ondelete='CASCADE'), nullable=False),
        sa.Column('assigned_by', sa.Integer(), sa.ForeignKey('users.id', ondelete='SET NULL')),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('event_id', 'user_id', name='pk_door_assignments'),
    )
    # "Which events may this person check in for?" is asked on every door page.
    op.create_index('ix_door_assignments_user', 'door_assignments', ['user_id', 'event_id'])


def downgrade():
    op.drop_table('door_assignments')
