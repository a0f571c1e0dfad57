"""mail delivery, account verification and reset, venue time zones

The outbox learns delivery: which template a message is, its stable
Message-ID, attempts, when it may be tried next (backoff, or a worker's
lease) and why it failed. Users get a verified flag and the moment their
password last changed (sessions older than that are over). Events get the
venue's IANA time zone; existing events keep showing UTC.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 04:40:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.alter_column('body', existing_type=sa.Text(), nullable=True)
        batch_op.add_column(sa.Column('template', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('params', postgresql.JSONB(astext_type=sa.Text()),
                                      server_default=sa.text("'{}'::jsonb"), nullable=False))
        batch_op.add_column(sa.Column('html_body', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('message_id', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True),
                                      server_default=sa.text('now()'), nullable=False))
        batch_op.add_column(sa.Column('last_error', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_outbox_due', ['next_attempt_at', 'id'], unique=False,
                              postgresql_where=sa.text('sent_at IS NULL AND failed_at IS NULL'))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_verified_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timezone', sa.String(length=64), server_default='UTC', nullable=False))


def downgrade():
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('timezone')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('password_changed_at')
        batch_op.drop_column('email_verified_at')
    op.execute("UPDATE outbox_messages SET body = '' WHERE body IS NULL")
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_due', postgresql_where=sa.text('sent_at IS NULL AND failed_at IS NULL'))
        for column in ('failed_at', 'last_error', 'next_attempt_at', 'attempts', 'message_id', 'html_body',
                       'params', 'template'):
            batch_op.drop_column(column)
        batch_op.alter_column('body', existing_type=sa.Text(), nullable=False)
