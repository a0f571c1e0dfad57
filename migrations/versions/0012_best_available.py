"""best available seats: a best-first rank per seat, and tb_reserve_best

`units.best_rank` orders a tier's seats best first (lower is better). The
layout generator sets it (by default centre seats of front rows first); seats
laid out before this migration get that default here.

tb_reserve_best(user, event, tier, count, session, admission) finds the best
`count` free seats of the tier, adjacent in one row where such a run exists,
locks them with FOR UPDATE SKIP LOCKED and holds them through
tb_reserve_seats in the same transaction, so every rule of a seat reserve
(sales window, waiting-room pass, per-order and per-buyer limits, cool-down,
the waiting list's claim, one basket) is that function's and is not
repeated. Two buyers asking at once take different seats and neither waits
for the other: a run whose seats another transaction has locked is skipped.
Each attempt at a run is a plpgsql sub-block, rolled back when it could lock
only part of the run, so a failed attempt keeps no seat locked.

Lock order, as the other reserve functions: the buyer's advisory lock first
(taken here before any seat, again in tb_begin_reservation, where it is
already held), then the basket, then units.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 12:35:00
"""
import sqlalchemy as sa
from alembic import op

from migrations.functions import frozen

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# The default best-first order of seats laid out before this migration, as
# the generator's "front_centre" (inventory.rank_seats): rows front (smallest
# pos_y) to back, and in each row across all sections from the middle outwards.
DEFAULT_RANKS = """
UPDATE units u SET best_rank = r.rank
FROM (
    SELECT id, (dense_rank() OVER (PARTITION BY event_id ORDER BY pos_y) - 1) * 1000
               + abs(2 * pos_x - (min(pos_x) OVER across + max(pos_x) OVER across)) AS rank
    FROM units WHERE seat_number IS NOT NULL AND pos_x IS NOT NULL
    WINDOW across AS (PARTITION BY event_id, pos_y)
) r
WHERE u.id = r.id
"""


def upgrade():
    op.add_column('units', sa.Column('best_rank', sa.Integer(), nullable=True))
    op.execute(DEFAULT_RANKS)
    op.create_index('ix_units_best_available', 'units', ['tier_id', 'best_rank', 'id'],
                    postgresql_where=sa.text("status = 'available' AND seat_number IS NOT NULL"))
    # Frozen: 0013 moves this body to tb_hold_best and gives the name to an access gate.
    op.execute(frozen("tb_reserve_best", "0012"))


def downgrade():
    op.execute("DROP FUNCTION IF EXISTS tb_reserve_best(bigint, bigint, int, int, int, bigint)")
    op.drop_index('ix_units_best_available', table_name='units')
    op.drop_column('units', 'best_rank')
