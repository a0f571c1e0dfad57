"""seat list: a partial index of free seats by section and row

The step-through seat list (webapp/services/selling/seat_list.py) counts free
seats per row of one section, and probes each section for up to 100 free
seats. Both walk this index, holding only free seats, by (event, section,
row, tier): an index-only read of the seats counted, whatever the size of the
hall. A reserve takes seats out of the index's predicate, so it adds no index
entry; a seat freed again adds one.

Revision ID: 0019
Revises: 0016
Create Date: 2026-12-07 03:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_units_free_seats", "units", ["event_id", "section", "row_label", "tier_id"],
                    postgresql_where=sa.text("status = 'available' AND seat_number IS NOT NULL"))


def downgrade():
    op.drop_index("ix_units_free_seats", table_name="units")
