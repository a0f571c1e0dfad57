"""waiting room: a number per place, and the room's served mark, so a position costs no count

Until now a place's position was the count of places still waiting ahead of
it, taken on every poll that found the room changed: O(n) per poll, O(n²)
per round of polls. Now:

  waiting_room_entries.number   the place's number in the room, dense and
                                unique per room, given by the admission pass
                                (under the room row's lock): at the sale start
                                to everyone who came early, in the order of
                                their secret random `line_key`, and after it to
                                each new place in order of arrival. NULL until
                                given.
  waiting_rooms.served          every number up to it was let in or stopped
                                waiting (the pass moves it past the first
                                waiting number's predecessor)
  waiting_rooms.issued          the highest number given
  waiting_rooms.left_count      numbers above `served` that stopped waiting
                                (left, moved to the back, merged at login);
                                so issued - served - left_count are waiting
  waiting_rooms.admit_rate      admissions per minute as measured, weighted
                                exponentially (a minute's time constant)
  waiting_rooms.conversion      the share of finished admissions that bought,
                                weighted exponentially
  waiting_rooms.rated_at        when the two were last brought up to date

A position is then number - served, less an estimate of the leavers ahead
(see webapp/services/waiting/waiting_room/positions.py).

Indexes: the admission walks the numbers from `served` on (unique per room);
the numbering walks the places still without one in `line_key` order, a
partial index that holds only those (everyone before the start, a second's
arrivals after it). The old order index over every place is no longer read.

Places already waiting in a room whose sale started are numbered here in
their `line_key` order.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 09:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("waiting_room_entries", sa.Column("number", sa.BigInteger()))
    for name in ("served", "issued", "left_count"):
        op.add_column("waiting_rooms", sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("waiting_rooms", sa.Column("admit_rate", sa.Float()))
    op.add_column("waiting_rooms", sa.Column("conversion", sa.Float()))
    op.add_column("waiting_rooms", sa.Column("rated_at", sa.DateTime(timezone=True)))
    op.create_check_constraint(op.f("ck_waiting_rooms_marks"), "waiting_rooms",
                               "served >= 0 AND left_count >= 0 AND served + left_count <= issued")
    op.execute("""
        UPDATE waiting_room_entries w SET number = o.n
        FROM (SELECT e.id, row_number() OVER (PARTITION BY e.event_id ORDER BY e.line_key, e.id) AS n
              FROM waiting_room_entries e JOIN waiting_rooms r ON r.event_id = e.event_id
              WHERE e.status = 'waiting' AND r.credited_at IS NOT NULL) o
        WHERE w.id = o.id
    """)
    op.execute("""
        UPDATE waiting_rooms r SET issued = n.top
        FROM (SELECT event_id, max(number) AS top FROM waiting_room_entries GROUP BY event_id) n
        WHERE n.event_id = r.event_id AND n.top IS NOT NULL
    """)
    op.create_index("uq_wr_entries_number", "waiting_room_entries", ["event_id", "number"], unique=True,
                    postgresql_where=sa.text("number IS NOT NULL"))
    op.create_index("ix_wr_entries_unnumbered", "waiting_room_entries", ["event_id", "line_key", "id"],
                    postgresql_where=sa.text("number IS NULL AND status = 'waiting'"))
    op.drop_index("ix_wr_entries_line", "waiting_room_entries")


def downgrade():
    op.create_index("ix_wr_entries_line", "waiting_room_entries", ["event_id", "line_key", "id"],
                    postgresql_include=["status"])
    op.drop_index("ix_wr_entries_unnumbered", "waiting_room_entries")
    op.drop_index("uq_wr_entries_number", "waiting_room_entries")
    op.drop_constraint(op.f("ck_waiting_rooms_marks"), "waiting_rooms", type_="check")
    for name in ("rated_at", "conversion", "admit_rate", "left_count", "issued", "served"):
        op.drop_column("waiting_rooms", name)
    op.drop_column("waiting_room_entries", "number")
