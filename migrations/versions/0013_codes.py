"""codes: discount codes and access codes that unlock hidden tiers

`codes` holds both kinds, per event, stored upper-case (buyers type them in
any case):
- a *discount* code takes a percentage or a fixed amount off each eligible
  ticket (all tiers, or the listed ones), with optional limits on total uses
  and uses per buyer, a validity window and a minimum quantity. A hold
  carries at most one (`holds.code_id`, with the discount per unit), and a
  confirmed order records it with its tickets' prices after the discount;
- an *access* code unlocks `tiers.hidden` tiers (its `tier_ids`) within its
  validity window.

A code's uses are the confirmed orders and the live holds carrying it,
counted under the code row's lock (webapp/services/selling/codes.py), so a released
or expired hold gives its use back.

Hidden tiers are refused by the database: the three reserve entry points
become thin gates that check the buyer's access codes against the hidden
tiers asked for, then call the unchanged functions, renamed tb_hold_places,
tb_hold_seats and tb_hold_best (the last re-created only to call
tb_hold_seats). The hold records the access code that unlocked it. An entry
on the waiting list "for any tier" no longer reserves hidden tiers.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 15:00:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.functions import current, frozen

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


# Each takes the buyer's access codes last and calls the function it replaced,
# renamed tb_hold_*, once the gate has let it through.
# With the digests of their current text (see migrations/functions.py).
ENTRY_POINTS = {"tb_reserve_places": "62e256fddf35", "tb_reserve_seats": "3a79a42cd615"}


def upgrade():
    op.add_column('tiers', sa.Column('hidden', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    op.create_table(
        'codes',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('event_id', sa.Integer(), sa.ForeignKey('events.id', ondelete='CASCADE'), nullable=False),
        sa.Column('code', sa.String(40), nullable=False),
        sa.Column('kind', sa.String(10), nullable=False),
        sa.Column('percent_off', sa.Integer()),
        sa.Column('amount_off_minor', sa.Integer()),
        sa.Column('tier_ids', postgresql.ARRAY(sa.Integer())),
        sa.Column('max_uses', sa.Integer()),
        sa.Column('per_buyer_max', sa.Integer()),
        sa.Column('min_quantity', sa.Integer()),
        sa.Column('valid_from', sa.DateTime(timezone=True)),
        sa.Column('valid_until', sa.DateTime(timezone=True)),
        sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
        sa.Column('batch', sa.String(80)),
        sa.Column('created_by', sa.Integer(), sa.ForeignKey('users.id', ondelete='SET NULL')),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.UniqueConstraint('event_id', 'code', name='uq_codes_event_code'),
        sa.CheckConstraint("code = upper(code) AND length(code) BETWEEN 3 AND 40", name='ck_codes_code_form'),
        sa.CheckConstraint(
            "(kind = 'discount' AND (percent_off IS NULL) <> (amount_off_minor IS NULL))"
            " OR (kind = 'access' AND percent_off IS NULL AND amount_off_minor IS NULL"
            "     AND cardinality(tier_ids) > 0)", name='ck_codes_kind'),
        sa.CheckConstraint("percent_off BETWEEN 1 AND 100", name='ck_codes_percent'),
        sa.CheckConstraint("amount_off_minor > 0", name='ck_codes_amount'),
        sa.CheckConstraint("max_uses > 0 AND per_buyer_max > 0 AND min_quantity > 0", name='ck_codes_limits'),
        sa.CheckConstraint("valid_until > valid_from", name='ck_codes_window'),
    )
    for table in ('holds', 'orders'):
        op.add_column(table, sa.Column('code_id', sa.Integer(), sa.ForeignKey('codes.id')))
        op.add_column(table, sa.Column('discount_minor', sa.Integer(), server_default='0', nullable=False))
        op.add_column(table, sa.Column('access_code_id', sa.Integer(), sa.ForeignKey('codes.id')))
    # Per unit, in unit_ids order: what the code takes off each held price.
    op.add_column('holds', sa.Column('unit_discounts', postgresql.ARRAY(sa.Integer())))
    # A code's uses are counted under its lock from these (codes.py).
    op.create_index('ix_holds_code_active', 'holds', ['code_id', 'user_id'],
                    postgresql_where=sa.text("code_id IS NOT NULL AND status = 'active'"))
    op.create_index('ix_orders_code', 'orders', ['code_id', 'user_id'],
                    postgresql_where=sa.text("code_id IS NOT NULL"))
    op.create_index('ix_orders_access_code', 'orders', ['access_code_id'],
                    postgresql_where=sa.text("access_code_id IS NOT NULL"))

    op.execute("ALTER FUNCTION tb_reserve_places(bigint, bigint, int[], int[], int, bigint) RENAME TO tb_hold_places")
    op.execute("ALTER FUNCTION tb_reserve_seats(bigint, bigint, bigint[], int, bigint) RENAME TO tb_hold_seats")
    op.execute("DROP FUNCTION tb_reserve_best(bigint, bigint, int, int, int, bigint)")
    op.execute(frozen("tb_hold_best", "0013"))
    op.execute(current("tb_access_gate", "451683ea3953"))
    for name, digest in ENTRY_POINTS.items():
        op.execute(current(name, digest))
    # Frozen: 0018 takes a wheelchair count and a section as well.
    op.execute(frozen("tb_reserve_best", "0013"))
    op.execute(frozen("tb_line_reserved_tiers", "0013"))


def downgrade():
    op.execute(frozen("tb_line_reserved_tiers", "0005"))
    op.execute("DROP FUNCTION tb_reserve_best(bigint, bigint, int, int, int, bigint, text[])")
    op.execute("DROP FUNCTION tb_reserve_seats(bigint, bigint, bigint[], int, bigint, text[])")
    op.execute("DROP FUNCTION tb_reserve_places(bigint, bigint, int[], int[], int, bigint, text[])")
    op.execute("DROP FUNCTION tb_access_gate(bigint, int[], text[])")
    op.execute("DROP FUNCTION tb_hold_best(bigint, bigint, int, int, int, bigint)")
    op.execute("ALTER FUNCTION tb_hold_seats(bigint, bigint, bigint[], int, bigint) RENAME TO tb_reserve_seats")
    op.execute("ALTER FUNCTION tb_hold_places(bigint, bigint, int[], int[], int, bigint) RENAME TO tb_reserve_places")
    op.execute(frozen("tb_reserve_best", "0012"))
    op.drop_index('ix_orders_access_code', table_name='orders')
    op.drop_index('ix_orders_code', table_name='orders')
    op.drop_index('ix_holds_code_active', table_name='holds')
    op.drop_column('holds', 'unit_discounts')
    for table in ('orders', 'holds'):
        op.drop_column(table, 'access_code_id')
        op.drop_column(table, 'discount_minor')
        op.drop_column(table, 'code_id')
    op.drop_table('codes')
    op.drop_column('tiers', 'hidden')
