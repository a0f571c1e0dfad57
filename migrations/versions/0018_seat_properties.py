"""seat properties and best available across the venue: wheelchair spaces with companion seats, no orphan seats

Seat properties on `units` (the admin sets them by range on the layout page):

  wheelchair        a wheelchair space
  companion_for     a companion seat, tied to this wheelchair space (one each)
  restricted_view   the view of the stage is partly blocked
  aisle             on an aisle

Best available (tb_reserve_best / tb_hold_best) takes a wheelchair count and
a section as well: each wheelchair space is locked together with its
companion seat in one try, both or neither, under the same FOR UPDATE SKIP
LOCKED as the other seats, in the same statement. Seats rank across the
whole venue by their distance to the event's focal point (`events.focal_x`,
`focal_y`; NULL: the centre front), set by tb_rank_seats: older layouts are
ranked so here. `events.avoid_orphans` (default on): a run that would leave
one free seat alone is taken only when nothing else is left; tb_free_seat
reads the seats beside a run, through `ix_units_position`; best available
within one section walks `ix_units_best_in_section`.

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-07 03:30:00
"""
import sqlalchemy as sa
from alembic import op

from migrations.functions import current, frozen

revision = '0018'
down_revision = '0024'
branch_labels = None
depends_on = None

# Each with the digest of its current text (see migrations/functions.py).
FUNCTIONS = {"tb_free_seat": "5c662d884d05", "tb_hold_best": "414adb7c085f",
             "tb_reserve_best": "e91b3a33dee3"}

PROPERTIES = ("wheelchair", "companion_for", "restricted_view", "aisle")
# 0005's trigger, per row because limited to the columns the map draws.
LAYOUT_COLUMNS = "tier_id, section, row_label, seat_number, pos_x, pos_y"
LAYOUT_TRIGGER = ("CREATE TRIGGER tb_layout_units_update AFTER UPDATE OF {columns}"
                  " ON units FOR EACH ROW EXECUTE FUNCTION tb_bump_layout_version_of_row()")


def upgrade():
    op.add_column("units", sa.Column("wheelchair", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("units", sa.Column("companion_for", sa.BigInteger(),
                                     sa.ForeignKey("units.id", ondelete="SET NULL", name="fk_units_companion_for")))
    op.add_column("units", sa.Column("restricted_view", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("units", sa.Column("aisle", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_check_constraint(op.f("ck_units_companion_not_wheelchair"), "units",
                               "NOT (wheelchair AND companion_for IS NOT NULL)")
    op.create_index("uq_units_companion_for", "units", ["companion_for"], unique=True,
                    postgresql_where=sa.text("companion_for IS NOT NULL"))
    op.create_index("ix_units_wheelchair", "units", ["tier_id", "best_rank", "id"],
                    postgresql_where=sa.text("wheelchair AND status = 'available'"))
    op.create_index("ix_units_position", "units", ["event_id", "pos_y", "pos_x"],
                    postgresql_where=sa.text("seat_number IS NOT NULL"))
    op.create_index("ix_units_best_in_section", "units", ["tier_id", "section", "best_rank", "id"],
                    postgresql_where=sa.text("status = 'available' AND seat_number IS NOT NULL"))
    op.add_column("events", sa.Column("focal_x", sa.Numeric(8, 2, asdecimal=False)))
    op.add_column("events", sa.Column("focal_y", sa.Numeric(8, 2, asdecimal=False)))
    op.add_column("events", sa.Column("avoid_orphans", sa.Boolean(), nullable=False, server_default=sa.true()))

    # The seat map draws the properties: changing one moves the layout version.
    op.execute("DROP TRIGGER tb_layout_units_update ON units")
    op.execute(LAYOUT_TRIGGER.format(columns=LAYOUT_COLUMNS + ", " + ", ".join(PROPERTIES)))
    op.execute("DROP FUNCTION tb_reserve_best(bigint, bigint, int, int, int, bigint, text[], inet)")
    op.execute("DROP FUNCTION tb_hold_best(bigint, bigint, int, int, int, bigint)")
    for name, digest in FUNCTIONS.items():
        op.execute(current(name, digest))
    op.execute(frozen("tb_rank_seats", "0018"))  # 0026 computes its focal point once
    op.execute("SELECT tb_rank_seats(id) FROM events")


def downgrade():
    op.execute("DROP FUNCTION tb_reserve_best(bigint, bigint, int, int, int, bigint, text[], inet, int, text)")
    op.execute("DROP FUNCTION tb_hold_best(bigint, bigint, int, int, int, bigint, int, text)")
    op.execute("DROP FUNCTION tb_rank_seats(bigint)")
    op.execute(frozen("tb_hold_best", "0014"))
    op.execute(frozen("tb_reserve_best", "0022"))
    op.execute("DROP FUNCTION tb_free_seat(bigint, int, int)")
    op.execute("DROP TRIGGER tb_layout_units_update ON units")
    op.execute(LAYOUT_TRIGGER.format(columns=LAYOUT_COLUMNS))
    for column in ("avoid_orphans", "focal_y", "focal_x"):
        op.drop_column("events", column)
    op.drop_index("ix_units_best_in_section", table_name="units")
    op.drop_index("ix_units_position", table_name="units")
    op.drop_index("ix_units_wheelchair", table_name="units")
    op.drop_index("uq_units_companion_for", table_name="units")
    for column in reversed(PROPERTIES):
        op.drop_column("units", column)
