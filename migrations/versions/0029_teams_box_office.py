"""teams, the rest: the box office's sales, invitations as rows, a mail sender per organiser, door members only

`orders.channel` says where an order was sold (`online`, `box_office`) and
`orders.sold_by` which clerk sold it at the door; `orders.buyer_email` is
the address the clerk typed for the tickets (optional: a walk-in may take
the printed page). `payment_attempts.in_person` is how a box-office sale
was paid (`cash`, `terminal`): no gateway was asked. tb_buyer_count no
longer counts a clerk's sales as the clerk's own purchases.

`organiser_invitations`: each invitation mailed, so an owner sees the
pending ones and can withdraw one; the signed link names its row.

`organisers.mail_from_name` / `mail_reply_to`: the display name and
Reply-To of every mail about the organiser's events (the envelope stays the
install's own address).

`door_assignments` is gone: every assignment becomes (or widens) a door
member of the event's organiser, limited to the events assigned.

Revision ID: 0029
Revises: 0033
Create Date: 2026-12-07 06:45:00
"""
import sqlalchemy as sa
from alembic import op

from migrations.functions import current, frozen

revision = '0029'
down_revision = '0033'
branch_labels = None
depends_on = None

ROLES = "('owner', 'manager', 'box_office', 'door', 'viewer')"


def upgrade():
    op.add_column("orders", sa.Column("channel", sa.String(12), nullable=False, server_default="online"))
    op.add_column("orders", sa.Column("sold_by", sa.Integer(), sa.ForeignKey("users.id")))
    op.add_column("orders", sa.Column("buyer_email", sa.String(254)))
    op.create_check_constraint(op.f("ck_orders_channel"), "orders", "channel IN ('online', 'box_office')")
    op.create_check_constraint(op.f("ck_orders_box_office_has_clerk"), "orders",
                               "(channel = 'box_office') = (sold_by IS NOT NULL)")
    op.add_column("payment_attempts", sa.Column("in_person", sa.String(8)))
    op.create_check_constraint(op.f("ck_payment_attempts_in_person"), "payment_attempts",
                               "in_person IN ('cash', 'terminal')")
    op.execute(current("tb_buyer_count", "72d68890ef5b"))

    op.add_column("organisers", sa.Column("mail_from_name", sa.String(120)))
    op.add_column("organisers", sa.Column("mail_reply_to", sa.String(254)))

    op.create_table(
        "organiser_invitations",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("organiser_id", sa.Integer(), sa.ForeignKey("organisers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("role", sa.String(12), nullable=False),
        sa.Column("invited_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(f"role IN {ROLES}", name=op.f("ck_organiser_invitations_role")),
    )
    op.create_index("ix_organiser_invitations_pending", "organiser_invitations", ["organiser_id", "id"],
                    postgresql_where=sa.text("accepted_at IS NULL AND revoked_at IS NULL"))

    # Door staff become door members of the event's organiser, for the events they were assigned; a door
    # member limited to some events gains the others. Platform administrators check in everywhere already,
    # and a member with a wider role keeps it.
    op.execute(
        "INSERT INTO organiser_members (organiser_id, user_id, role, event_ids)"
        " SELECT e.organiser_id, d.user_id, 'door', array_agg(DISTINCT d.event_id ORDER BY d.event_id)"
        " FROM door_assignments d JOIN events e ON e.id = d.event_id JOIN users u ON u.id = d.user_id"
        " WHERE NOT u.is_admin GROUP BY e.organiser_id, d.user_id"
        " ON CONFLICT (organiser_id, user_id) DO UPDATE SET event_ids ="
        "  (SELECT array_agg(DISTINCT x ORDER BY x) FROM unnest(organiser_members.event_ids || excluded.event_ids) x)"
        " WHERE organiser_members.role = 'door' AND organiser_members.event_ids IS NOT NULL")
    op.drop_table("door_assignments")


def downgrade():
    op.create_table(
        'door_assignments',
        sa.Column('event_id', sa.Integer(), sa.ForeignKey('events.id', ondelete='CASCADE'), nullable=False),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('users.id', ondelete='CASCADE'), nullable=False),
        sa.Column('assigned_by', sa.Integer(), sa.ForeignKey('users.id', ondelete='SET NULL')),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('event_id', 'user_id', name='pk_door_assignments'),
    )
    op.create_index('ix_door_assignments_user', 'door_assignments', ['user_id', 'event_id'])
    op.execute("INSERT INTO door_assignments (event_id, user_id) SELECT DISTINCT unnest(event_ids), user_id"
               " FROM organiser_members WHERE role = 'door' AND event_ids IS NOT NULL")
    op.drop_table("organiser_invitations")
    op.drop_column("organisers", "mail_reply_to")
    op.drop_column("organisers", "mail_from_name")
    op.execute(frozen("tb_buyer_count", "0010"))
    op.drop_constraint(op.f("ck_payment_attempts_in_person"), "payment_attempts")
    op.drop_column("payment_attempts", "in_person")
    op.drop_constraint(op.f("ck_orders_box_office_has_clerk"), "orders")
    op.drop_constraint(op.f("ck_orders_channel"), "orders")
    op.drop_column("orders", "buyer_email")
    op.drop_column("orders", "sold_by")
    op.drop_column("orders", "channel")
