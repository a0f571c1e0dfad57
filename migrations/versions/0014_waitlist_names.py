"""waitlist: tb_line_reserved_tiers becomes tb_waitlist_reserved_tiers

"Line" named two ideas: the waiting list (people waiting for freed tickets)
and the waiting room. Each now has its own word, "waitlist" and "waiting
room"; the function that lists the tiers held back for the waiting list
takes the first. No other function or trigger used "line".

The functions that call it are reloaded from their current text: plpgsql
looks a called function up by name when it runs, so they would otherwise
fail on the old name. What they do is unchanged.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 09:00:00
"""
from alembic import op

from migrations.functions import current, frozen

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

# Each with the digest of its current text (see migrations/functions.py).
CALLERS = {"tb_hold_places": "6550aaab42e8", "tb_hold_seats": "750a4ac4a4d4"}


def upgrade():
    op.execute("ALTER FUNCTION tb_line_reserved_tiers(bigint) RENAME TO tb_waitlist_reserved_tiers")
    # The same body; loaded so that this migration, the newest to define it,
    # is the one that reads its file.
    op.execute(current("tb_waitlist_reserved_tiers", "9893edf3c2da"))
    for name, digest in CALLERS.items():
        op.execute(current(name, digest))
    # Frozen: 0018 ranks across the venue, avoids orphan seats and sells wheelchair spaces with companions.
    op.execute(frozen("tb_hold_best", "0014"))


def downgrade():
    op.execute("ALTER FUNCTION tb_waitlist_reserved_tiers(bigint) RENAME TO tb_line_reserved_tiers")
    op.execute(frozen("tb_hold_best", "0013"))
    # 0013 made these by renaming 0010's reserve functions; so again, as the
    # text of that version is stored once, under its first name.
    for old, new, args in (("tb_reserve_places", "tb_hold_places", "bigint, bigint, int[], int[], int, bigint"),
                           ("tb_reserve_seats", "tb_hold_seats", "bigint, bigint, bigint[], int, bigint")):
        op.execute(f"DROP FUNCTION {new}({args})")
        op.execute(frozen(old, "0010"))
        op.execute(f"ALTER FUNCTION {old}({args}) RENAME TO {new}")
