"""personal API tokens; webhook endpoints and their outbox of deliveries

A token is shown once and kept only as the SHA-256 of its secret (the secret
is 256 random bits, so a fast hash is enough: there is nothing to guess).
`last_used_at` is written at most once a minute per token, so a busy script
does not turn every read into a write.

Webhook deliveries are written by triggers, in the transaction of the change
they report (a transactional outbox: a rolled-back payment sends nothing),
one row per endpoint that wants that kind of event. A trigger costs the hot
paths no round trip and no path can forget it: the check-in's bare UPDATE,
an event's mass refund and the offer engine all fire the same ones.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 07:20:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.functions import current, frozen

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'api_tokens',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('prefix', sa.String(length=12), nullable=False),
        sa.Column('scope', sa.String(length=10), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("scope IN ('buyer', 'admin')", name=op.f('ck_api_tokens_scope')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash')),
    )
    op.create_index('ix_api_tokens_user', 'api_tokens', ['user_id', 'id'], unique=False)

    op.create_table(
        'webhook_endpoints',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('url', sa.String(length=500), nullable=False),
        sa.Column('event_id', sa.Integer(), nullable=True),
        sa.Column('event_types', postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column('secret', sa.String(length=80), nullable=False),
        sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.CheckConstraint('cardinality(event_types) > 0', name=op.f('ck_webhook_endpoints_some_types')),
        sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_webhook_endpoints_event_id_events'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_webhook_endpoints_created_by_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints')),
    )
    op.create_table(
        'webhook_deliveries',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('endpoint_id', sa.Integer(), nullable=False),
        sa.Column('event_id', sa.Integer(), nullable=True),
        sa.Column('event_type', sa.String(length=40), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_status', sa.Integer(), nullable=True),
        sa.Column('last_response', sa.Text(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'],
                                name=op.f('fk_webhook_deliveries_endpoint_id_webhook_endpoints'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_webhook_deliveries_event_id_events'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
    )
    op.create_index('ix_webhook_deliveries_due', 'webhook_deliveries', ['next_attempt_at', 'id'], unique=False,
                    postgresql_where=sa.text('delivered_at IS NULL AND failed_at IS NULL'))
    op.create_index('ix_webhook_deliveries_endpoint', 'webhook_deliveries', ['endpoint_id', 'id'], unique=False)
    op.execute(frozen("tb_webhook", "0009"))
    for name, digest in FUNCTIONS.items():
        op.execute(current(name, digest))
    # Changed since by a newer migration: this one loads the text it created.
    op.execute(frozen("tb_webhook_order", "0009"))
    op.execute(TRIGGERS)


# Each with the digest of the text this revision is the newest to load (see migrations/functions.py).
FUNCTIONS = {
    "tb_webhook_offer": "e1a293eb66e1",
    "tb_webhook_check_in": "dd820df653ca",
    "tb_webhook_event_cancelled": "01009d5323ba",
}

TRIGGERS = """
CREATE TRIGGER tb_webhook_order_confirmed AFTER INSERT ON orders FOR EACH ROW
    WHEN (NEW.status = 'confirmed') EXECUTE FUNCTION tb_webhook_order();
CREATE TRIGGER tb_webhook_order_ended AFTER UPDATE OF status ON orders FOR EACH ROW
    WHEN (OLD.status = 'confirmed' AND NEW.status IN ('cancelled', 'refunded')) EXECUTE FUNCTION tb_webhook_order();
-- The WHEN keeps a buyer's reserve from even calling the function.
CREATE TRIGGER tb_webhook_offer AFTER INSERT ON holds FOR EACH ROW
    WHEN (NEW.kind = 'offer') EXECUTE FUNCTION tb_webhook_offer();
CREATE TRIGGER tb_webhook_check_in AFTER UPDATE OF checked_in_at ON tickets FOR EACH ROW
    WHEN (OLD.checked_in_at IS NULL AND NEW.checked_in_at IS NOT NULL) EXECUTE FUNCTION tb_webhook_check_in();
CREATE TRIGGER tb_webhook_event_cancelled AFTER UPDATE OF status ON events FOR EACH ROW
    WHEN (OLD.status <> 'cancelled' AND NEW.status = 'cancelled') EXECUTE FUNCTION tb_webhook_event_cancelled();
"""


def downgrade():
    op.execute("""
        DROP TRIGGER tb_webhook_event_cancelled ON events; DROP FUNCTION tb_webhook_event_cancelled();
        DROP TRIGGER tb_webhook_check_in ON tickets; DROP FUNCTION tb_webhook_check_in();
        DROP TRIGGER tb_webhook_offer ON holds; DROP FUNCTION tb_webhook_offer();
        DROP TRIGGER tb_webhook_order_ended ON orders; DROP TRIGGER tb_webhook_order_confirmed ON orders;
        DROP FUNCTION tb_webhook_order(); DROP FUNCTION tb_webhook(text, integer, jsonb);
    """)
    op.drop_table('webhook_deliveries')
    op.drop_table('webhook_endpoints')
    op.drop_index('ix_api_tokens_user', table_name='api_tokens')
    op.drop_table('api_tokens')
