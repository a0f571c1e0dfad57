"""stripe: intents per checkout key, webhook events seen, disputes

  stripe_intents    which PaymentIntent a checkout key made (written before
                    the intent is confirmed, so reconciliation can always
                    find it); `voided` marks a key voided before or while its
                    intent was made; `last_status` keeps the sweep's list of
                    uncaptured intents short (partial index)
  stripe_events     the id of every webhook event handled: a second delivery
                    does nothing
  payment_disputes  chargebacks Stripe told us of, for the admin's list

Revision ID: 0020
Revises: 0016
Create Date: 2026-12-07 03:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'stripe_intents',
        sa.Column('idempotency_key', sa.String(64), primary_key=True),
        sa.Column('intent_id', sa.String(64), nullable=True, unique=True),
        sa.Column('voided', sa.Boolean(), nullable=False, server_default=sa.text('false')),
        sa.Column('last_status', sa.String(40), nullable=False, server_default='creating'),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    )
    op.create_index('ix_stripe_intents_open', 'stripe_intents', ['created_at'],
                    postgresql_where=sa.text("last_status NOT IN ('succeeded', 'canceled', 'requires_payment_method')"))
    op.create_table(
        'stripe_events',
        sa.Column('id', sa.String(255), primary_key=True),
        sa.Column('type', sa.String(100), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    )
    op.create_table(
        'payment_disputes',
        sa.Column('id', sa.BigInteger(), primary_key=True),
        sa.Column('provider_id', sa.String(255), nullable=False, unique=True),
        sa.Column('payment_reference', sa.String(64), nullable=True),
        sa.Column('payment_attempt_id', sa.BigInteger(), sa.ForeignKey('payment_attempts.id'), nullable=True),
        sa.Column('event_id', sa.Integer(), sa.ForeignKey('events.id', ondelete='CASCADE'), nullable=True),
        sa.Column('amount_minor', sa.Integer(), nullable=False),
        sa.Column('currency', sa.String(3), nullable=False),
        sa.Column('reason', sa.String(60), nullable=False),
        sa.Column('status', sa.String(40), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    )
    op.create_index('ix_payment_disputes_event_id', 'payment_disputes', ['event_id'])


def downgrade():
    op.drop_index('ix_payment_disputes_event_id', table_name='payment_disputes')
    op.drop_table('payment_disputes')
    op.drop_table('stripe_events')
    op.drop_index('ix_stripe_intents_open', table_name='stripe_intents')
    op.drop_table('stripe_intents')
