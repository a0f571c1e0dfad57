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
import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def _migration(name: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# tb_reserve_best from 0012, as tb_hold_best holding through tb_hold_seats.
_BEST_0012 = _migration("0012_best_available").RESERVE_BEST
HOLD_BEST = (_BEST_0012.replace("FUNCTION tb_reserve_best(", "FUNCTION tb_hold_best(", 1)
             .replace("RETURN tb_reserve_seats(", "RETURN tb_hold_seats(", 1))
assert HOLD_BEST.count("tb_hold_") == 2

ACCESS_GATE = r"""
CREATE FUNCTION tb_access_gate(p_event bigint, p_tiers int[], p_access text[]) RETURNS int
LANGUAGE plpgsql STABLE AS $$
-- The hidden tiers among p_tiers must each be unlocked by one of the buyer's
-- access codes, live now. Returns the code that unlocked them (NULL when
-- nothing asked for is hidden); refuses with TB402 otherwise.
DECLARE
    locked int[];
    unlocked_by int;
BEGIN
    SELECT array_agg(id) INTO locked FROM tiers WHERE event_id = p_event AND hidden AND id = ANY(p_tiers);
    IF locked IS NULL THEN
        RETURN NULL;
    END IF;
    IF EXISTS (
        SELECT 1 FROM unnest(locked) AS l(tier_id)
        WHERE NOT EXISTS (
            SELECT 1 FROM codes c
            WHERE c.event_id = p_event AND c.kind = 'access' AND c.active AND c.code = ANY(p_access)
              AND l.tier_id = ANY(c.tier_ids)
              AND (c.valid_from IS NULL OR c.valid_from <= now())
              AND (c.valid_until IS NULL OR now() < c.valid_until))) THEN
        RAISE EXCEPTION USING ERRCODE = 'TB402', MESSAGE = 'access code needed';
    END IF;
    SELECT min(c.id) INTO unlocked_by FROM codes c
    WHERE c.event_id = p_event AND c.kind = 'access' AND c.active AND c.code = ANY(p_access)
      AND c.tier_ids && locked;
    RETURN unlocked_by;
END
$$;
"""

# Each reserve entry point: the gate on the tiers asked for, then the
# unchanged function; the hold records the access code that let it through.
GATED = r"""
CREATE FUNCTION {name}({params}, p_access text[])
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    unlocked_by int := tb_access_gate(p_event, {tiers}, p_access);
    hold bigint := {inner}({args});
BEGIN
    IF unlocked_by IS NOT NULL THEN
        UPDATE holds SET access_code_id = unlocked_by WHERE id = hold;
    END IF;
    RETURN hold;
END
$$;
"""
ENTRY_POINTS = (
    ("tb_reserve_places", "tb_hold_places",
     "p_user bigint, p_event bigint, p_tiers int[], p_counts int[], p_session int, p_admission bigint", "p_tiers"),
    ("tb_reserve_seats", "tb_hold_seats",
     "p_user bigint, p_event bigint, p_seats bigint[], p_session int, p_admission bigint",
     "ARRAY(SELECT DISTINCT tier_id FROM units WHERE id = ANY(p_seats) AND event_id = p_event)"),
    ("tb_reserve_best", "tb_hold_best",
     "p_user bigint, p_event bigint, p_tier int, p_count int, p_session int, p_admission bigint", "ARRAY[p_tier]"),
)


def _gated(name: str, inner: str, params: str, tiers: str) -> str:
    args = ", ".join(p.split()[0] for p in params.split(", "))
    return GATED.format(name=name, params=params, tiers=tiers, inner=inner, args=args)


LINE_RESERVED = r"""
CREATE OR REPLACE FUNCTION tb_line_reserved_tiers(p_event bigint) RETURNS int[]
LANGUAGE sql STABLE AS $$
    -- Tiers the public cannot buy from because people wait for them; an
    -- entry for "any tier" (tier_id NULL) reserves every tier of the event
    -- but the hidden ones{hidden}.
    SELECT coalesce(array_agg(DISTINCT coalesce(w.tier_id, t.id)), '{{}}')
    FROM waitlist_entries w
    JOIN tiers t ON t.event_id = w.event_id AND (w.tier_id IS NULL OR t.id = w.tier_id)
    WHERE w.event_id = p_event AND w.status = 'waiting'{condition}
$$;
"""


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
    op.execute(HOLD_BEST)
    op.execute(ACCESS_GATE)
    for entry_point in ENTRY_POINTS:
        op.execute(_gated(*entry_point))
    op.execute(LINE_RESERVED.format(hidden=" (sold only with an access code)",
                                    condition="\n      AND (w.tier_id IS NOT NULL OR NOT t.hidden)"))


def downgrade():
    op.execute(LINE_RESERVED.format(hidden="", condition=""))
    op.execute("DROP FUNCTION tb_reserve_best(bigint, bigint, int, int, int, bigint, text[])")
    op.execute("DROP FUNCTION tb_reserve_seats(bigint, bigint, bigint[], int, bigint, text[])")
    op.execute("DROP FUNCTION tb_reserve_places(bigint, bigint, int[], int[], int, bigint, text[])")
    op.execute("DROP FUNCTION tb_access_gate(bigint, int[], text[])")
    op.execute("DROP FUNCTION tb_hold_best(bigint, bigint, int, int, int, bigint)")
    op.execute("ALTER FUNCTION tb_hold_seats(bigint, bigint, bigint[], int, bigint) RENAME TO tb_reserve_seats")
    op.execute("ALTER FUNCTION tb_hold_places(bigint, bigint, int[], int[], int, bigint) RENAME TO tb_reserve_places")
    op.execute(_BEST_0012)
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
