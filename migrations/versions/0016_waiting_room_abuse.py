"""waiting room against abuse: a proof of work and a limit per address on joining, flagged clients; one "Reserve again"

The organiser's rules against a client that cheats, per room (the admin's
waiting-room form, services/waiting/waiting_room/settings.py):

  waiting_rooms.challenge_difficulty  the proof of work a join must carry: the
                                      most tries a browser may need (0: none)
  waiting_rooms.places_per_address    places one client address may take per
                                      minute (NULL: no limit)
  waiting_rooms.flagged_wait_forever  a flagged client (over that limit, a
                                      failed challenge, a forged place cookie)
                                      is kept in an endless wait instead of
                                      being told

`waiting_room_flags` counts what was flagged, per room and reason, for the
admin's panel. Sharded (`shard`, 0-7, picked at random by each write) so a
flood of refused joins does not queue on one row; the panel sums the shards.

`waiting_room_spent_challenges` remembers each solved challenge's salt until
the challenge expires, so one solution makes one place. UNLOGGED: it is
lost in a crash (a solution could then be used again until it expires, a
few minutes at most) and costs no WAL; it is used only when no Redis is
configured (REDIS_URL), where the rate limits live too.

`holds.taken_again_at`: when the hold page's "Reserve again" took a lapsed
hold's units again (checkout.reserve_again). Once per hold: a second lapse
is treated as any other, under the re-hold cool-down.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 09:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

REASONS = ("over_limit", "failed_challenge", "forged_cookie", "endless")


def upgrade():
    op.add_column("waiting_rooms", sa.Column("challenge_difficulty", sa.Integer(), nullable=False,
                                             server_default="0"))
    op.add_column("waiting_rooms", sa.Column("places_per_address", sa.Integer()))
    op.add_column("waiting_rooms", sa.Column("flagged_wait_forever", sa.Boolean(), nullable=False,
                                             server_default=sa.false()))
    op.create_check_constraint(op.f("ck_waiting_rooms_challenge_range"), "waiting_rooms",
                               "challenge_difficulty BETWEEN 0 AND 1000000")
    op.create_check_constraint(op.f("ck_waiting_rooms_places_per_address_range"), "waiting_rooms",
                               "places_per_address IS NULL OR places_per_address BETWEEN 1 AND 10000")
    op.create_table(
        "waiting_room_flags",
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("event_id", "reason", "shard", name=op.f("pk_waiting_room_flags")),
        sa.CheckConstraint("reason IN (%s)" % ", ".join(f"'{r}'" for r in REASONS),
                           name=op.f("ck_waiting_room_flags_reason")),
        sa.CheckConstraint("shard BETWEEN 0 AND 7", name=op.f("ck_waiting_room_flags_shard")),
    )
    op.execute("""
        CREATE UNLOGGED TABLE waiting_room_spent_challenges (
            salt varchar(64) PRIMARY KEY,
            expires_at timestamptz NOT NULL
        )
    """)
    op.create_index("ix_wr_spent_challenges_expiry", "waiting_room_spent_challenges", ["expires_at"])
    op.add_column("holds", sa.Column("taken_again_at", sa.DateTime(timezone=True)))


def downgrade():
    op.drop_column("holds", "taken_again_at")
    op.drop_table("waiting_room_spent_challenges")
    op.drop_table("waiting_room_flags")
    op.drop_constraint(op.f("ck_waiting_rooms_places_per_address_range"), "waiting_rooms", type_="check")
    op.drop_constraint(op.f("ck_waiting_rooms_challenge_range"), "waiting_rooms", type_="check")
    for name in ("flagged_wait_forever", "places_per_address", "challenge_difficulty"):
        op.drop_column("waiting_rooms", name)
