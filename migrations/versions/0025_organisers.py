"""organisers: every event, webhook and API token belongs to one; teams with roles

`organisers`: the tenants of one install, each with a public page under its
own slug. `organiser_members`: a user's role in one organiser (owner,
manager, box_office, door, viewer), optionally limited to some of its
events (`event_ids`, NULL: all of them).

Today's data moves into one default organiser, with nothing lost: every
event and webhook endpoint is given to it, today's admins become its
owners, today's door staff its door members for the events they were
assigned, and admin API tokens carry it with the role `owner` (buyer
tokens carry none), and so does the audit log. tb_webhook sends an endpoint for all events only its
own organiser's. Codes, tiers, units, holds, orders, tickets, the
waiting list and the outbox hang off events and follow them.

Revision ID: 0025
Revises: 0016
Create Date: 2026-12-07 04:30:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.functions import current, frozen

revision = '0025'
down_revision = '0021'
branch_labels = None
depends_on = None

ROLES = "('owner', 'manager', 'box_office', 'door', 'viewer')"


def upgrade():
    op.create_table(
        "organisers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("slug", sa.String(60), nullable=False, unique=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]*$'", name=op.f("ck_organisers_slug_shape")),
    )
    op.create_table(
        "organiser_members",
        sa.Column("organiser_id", sa.Integer(), sa.ForeignKey("organisers.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("role", sa.String(12), nullable=False),
        sa.Column("event_ids", postgresql.ARRAY(sa.Integer())),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(f"role IN {ROLES}", name=op.f("ck_organiser_members_role")),
    )
    op.create_index("ix_organiser_members_user", "organiser_members", ["user_id", "organiser_id"])
    op.execute("INSERT INTO organisers (slug, name) VALUES ('default', 'Ticketbooth')")
    default = "(SELECT id FROM organisers WHERE slug = 'default')"

    for table in ("events", "webhook_endpoints"):
        op.add_column(table, sa.Column("organiser_id", sa.Integer(),
                                       sa.ForeignKey("organisers.id", ondelete="CASCADE")))
        op.execute(f"UPDATE {table} SET organiser_id = {default}")
        op.alter_column(table, "organiser_id", nullable=False)
        op.create_index(f"ix_{table}_organiser", table, ["organiser_id", "id"])

    op.add_column("audit_log", sa.Column("organiser_id", sa.Integer(),
                                         sa.ForeignKey("organisers.id", ondelete="CASCADE")))
    op.execute(f"UPDATE audit_log SET organiser_id = {default}")
    op.create_index("ix_audit_log_organiser_id", "audit_log", ["organiser_id"])

    op.add_column("api_tokens", sa.Column("organiser_id", sa.Integer(),
                                          sa.ForeignKey("organisers.id", ondelete="CASCADE")))
    op.add_column("api_tokens", sa.Column("role", sa.String(12)))
    op.execute(f"UPDATE api_tokens SET organiser_id = {default}, role = 'owner' WHERE scope = 'admin'")
    op.create_check_constraint(op.f("ck_api_tokens_admin_has_organiser"), "api_tokens",
                               f"(scope = 'admin') = (organiser_id IS NOT NULL AND role IN {ROLES})")

    op.execute(f"INSERT INTO organiser_members (organiser_id, user_id, role) "
               f"SELECT {default}, id, 'owner' FROM users WHERE is_admin")
    op.execute(f"INSERT INTO organiser_members (organiser_id, user_id, role, event_ids) "
               f"SELECT {default}, user_id, 'door', array_agg(event_id ORDER BY event_id) FROM door_assignments "
               f"WHERE user_id NOT IN (SELECT id FROM users WHERE is_admin) GROUP BY user_id")
    # An endpoint for all events hears only its own organiser's.
    op.execute(current("tb_webhook", "198f52046886"))


def downgrade():
    op.execute(frozen("tb_webhook", "0009"))
    op.drop_constraint(op.f("ck_api_tokens_admin_has_organiser"), "api_tokens")
    op.drop_column("api_tokens", "role")
    op.drop_column("api_tokens", "organiser_id")
    op.drop_index("ix_audit_log_organiser_id", table_name="audit_log")
    op.drop_column("audit_log", "organiser_id")
    for table in ("webhook_endpoints", "events"):
        op.drop_index(f"ix_{table}_organiser", table_name=table)
        op.drop_column(table, "organiser_id")
    op.drop_table("organiser_members")
    op.drop_table("organisers")
