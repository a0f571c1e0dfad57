"""reserve in one round trip: SQL functions for the grab, and a layout version

A reservation used to cost eight statements (event, tiers, basket, line,
grab, hold insert, unit update, clock bump) plus BEGIN and COMMIT, each a
round trip with its own Python around it. These functions do the same work,
under the same locks in the same order, inside PostgreSQL: one statement,
which is also its own transaction when the caller runs it in autocommit.

They are inventory's, like every other write to `units`: only
`webapp/services/selling/inventory.py` calls them. A refusal raises an error with a
`TBnnn` SQLSTATE (so everything the function did is rolled back) and a JSON
DETAIL that inventory turns into the buyer's message:

  TB404 no such event            TB409 not on sale, or its sale ended ("ended")
  TB401 the buyer's session was ended (`p_session`, the version the cookie
        claims, is no longer `users.session_version`; NULL skips the check)
  TB400 bad request (message)    TB413 over the per-order limit
  TB410 not enough left          TB423 seats taken
  TB503 needs preparation: a basket to give back while people wait in line,
        or a lapsed hold still on a requested seat; inventory does that part
        in Python (the waiting list's offer engine) and calls again.

`events.layout_version` changes whenever what a seat map draws changes
(seats added, removed or moved; a tier renamed, repriced or recoloured), by
trigger, so the map's static markup can be cached per version and no writer
can forget to say so.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 05:00:00
"""
import sqlalchemy as sa
from alembic import op

from migrations.functions import current, frozen

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


TRIGGERS = [
    ("units", "INSERT", "NEW"), ("units", "DELETE", "OLD"),
    ("tiers", "INSERT", "NEW"), ("tiers", "DELETE", "OLD"), ("tiers", "UPDATE", "NEW"),
]


def upgrade():
    op.add_column("events", sa.Column("layout_version", sa.BigInteger, nullable=False, server_default="1"))
    # The price paid is the price held: tickets take it from here, not from the tier at payment time.
    op.add_column("holds", sa.Column("unit_prices", sa.ARRAY(sa.Integer)))
    # As this revision created them: frozen copies of the ones changed since.
    for function in (frozen("tb_line_reserved_tiers", "0005"), current("tb_bump_inventory_clock", "381b1f377095"),
                     frozen("tb_begin_reservation", "0005"), frozen("tb_reserve_places", "0005"),
                     frozen("tb_reserve_seats", "0005"), current("tb_bump_layout_version_of_row", "fc37c9c612ef"),
                     current("tb_bump_layout_version", "08eee116524f")):
        op.execute(function)
    for table, verb, side in TRIGGERS:
        op.execute(
            f"CREATE TRIGGER tb_layout_{table}_{verb.lower()} AFTER {verb} ON {table}"
            f" REFERENCING {side} TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION tb_bump_layout_version()"
        )
    # Unit status changes (the hot path) do not touch the layout, so the
    # UPDATE trigger on units is limited to the columns the map draws; such a
    # trigger cannot have a transition table, hence per row (moving seats is
    # rare admin work).
    op.execute(
        "CREATE TRIGGER tb_layout_units_update AFTER UPDATE OF tier_id, section, row_label, seat_number, pos_x, pos_y"
        " ON units FOR EACH ROW EXECUTE FUNCTION tb_bump_layout_version_of_row()"
    )


def downgrade():
    for table, verb, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER tb_layout_{table}_{verb.lower()} ON {table}")
    op.execute("DROP TRIGGER tb_layout_units_update ON units")
    op.execute(
        "DROP FUNCTION tb_bump_layout_version(); DROP FUNCTION tb_bump_layout_version_of_row(); DROP FUNCTION tb_reserve_seats(bigint, bigint, bigint[], int);"
        " DROP FUNCTION tb_reserve_places(bigint, bigint, int[], int[], int);"
        " DROP FUNCTION tb_begin_reservation(bigint, bigint, int, int);"
        " DROP FUNCTION tb_bump_inventory_clock(bigint); DROP FUNCTION tb_line_reserved_tiers(bigint);"
    )
    op.drop_column("holds", "unit_prices")
    op.drop_column("events", "layout_version")
