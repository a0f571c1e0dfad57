"""attendees and questions, ticket transfers, the offline door

  events.attendee_names        whether the hold page asks each ticket's
                               attendee name: off, asked or required
  events.attendee_edit_until   until when a holder may change names and
                               answers after buying (NULL: until doors, the
                               event's start)
  questions                    the organiser's questions per event, or per
                               tier (tier_id): a kind (text, number, choice,
                               choices, checkbox, date), its options for the
                               choice kinds, required or not, asked once per
                               order or once per ticket
  holds.answers                what the buyer typed on the hold page, kept
                               with the hold when the payment starts, so an
                               order made later by the sweep has them too
  orders.answers               the answers asked once per order
  tickets.attendee_name,
  tickets.answers              the name and the answers asked per ticket

Transfers:

  events.transfers_enabled     holders may pass tickets on by e-mail
  events.transfers_until       until when (NULL: the event's start)
  tickets.holder_id            who holds the ticket after a transfer (NULL:
                               the order's buyer)
  tickets.transferred_at       when; a ticket is transferred once
  ticket_transfers             each offer: to whom, the hash of its link's
                               token, pending / accepted / withdrawn, and the
                               code the ticket had before (for the door)

The offline door:

  tickets.door_device,         the offline gate that let the ticket in first,
  tickets.door_device_at       by that device's clock
  door_duplicates              a ticket let in again at another offline gate:
                               which device, when by its clock, and the first

Webhooks carry them: order.confirmed now fires at the commit (a deferred
constraint trigger), once the order's tickets exist, with the order's answers
and each ticket's attendee; ticket.attendee_changed fires when a holder or an
organiser changes a name or an answer after buying.

Answers are JSON objects keyed by the question's id (as text); a question
deleted later leaves its answers readable under its id, never a dangling
foreign key that blocks the delete.

Revision ID: 0024
Revises: 0016
Create Date: 2026-12-07 03:30:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.functions import current, frozen

revision = '0024'
down_revision = '0022'
branch_labels = None
depends_on = None

KINDS = ("text", "number", "choice", "choices", "checkbox", "date")


def _in(values):
    return ", ".join(f"'{v}'" for v in values)


def upgrade():
    op.add_column("events", sa.Column("attendee_names", sa.String(10), nullable=False, server_default="off"))
    op.add_column("events", sa.Column("attendee_edit_until", sa.DateTime(timezone=True)))
    op.create_check_constraint(op.f("ck_events_attendee_names_mode"), "events",
                               "attendee_names IN ('off', 'asked', 'required')")
    op.create_table(
        "questions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("tier_id", sa.Integer()),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("options", postgresql.ARRAY(sa.String(100)), nullable=False, server_default="{}"),
        sa.Column("required", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("per_ticket", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("sort_order", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_questions")),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_questions_event_id_events"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tier_id"], ["tiers.id"], name=op.f("fk_questions_tier_id_tiers"),
                                ondelete="CASCADE"),
        sa.CheckConstraint(f"kind IN ({_in(KINDS)})", name=op.f("ck_questions_kind")),
        sa.CheckConstraint("(kind IN ('choice', 'choices')) = (cardinality(options) > 0)",
                           name=op.f("ck_questions_options_for_choices")),
    )
    op.create_index("ix_questions_event", "questions", ["event_id", "sort_order", "id"])
    op.add_column("holds", sa.Column("answers", postgresql.JSONB()))
    op.add_column("orders", sa.Column("answers", postgresql.JSONB(), nullable=False,
                                      server_default=sa.text("'{}'::jsonb")))
    op.add_column("tickets", sa.Column("attendee_name", sa.String(120)))
    op.add_column("tickets", sa.Column("answers", postgresql.JSONB(), nullable=False,
                                       server_default=sa.text("'{}'::jsonb")))


    op.add_column("events", sa.Column("transfers_enabled", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.add_column("events", sa.Column("transfers_until", sa.DateTime(timezone=True)))
    op.add_column("tickets", sa.Column("holder_id", sa.Integer()))
    op.add_column("tickets", sa.Column("transferred_at", sa.DateTime(timezone=True)))
    op.create_foreign_key(op.f("fk_tickets_holder_id_users"), "tickets", "users", ["holder_id"], ["id"])
    op.create_index("ix_tickets_holder", "tickets", ["holder_id"], postgresql_where=sa.text("holder_id IS NOT NULL"))
    op.create_table(
        "ticket_transfers",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), nullable=False),
        sa.Column("from_user_id", sa.Integer(), nullable=False),
        sa.Column("to_email", sa.String(254), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(10), nullable=False, server_default="pending"),
        sa.Column("to_user_id", sa.Integer()),
        sa.Column("old_code", sa.String(32)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_transfers")),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_ticket_transfers_event_id_events"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_transfers_ticket_id_tickets")),
        sa.ForeignKeyConstraint(["from_user_id"], ["users.id"], name=op.f("fk_ticket_transfers_from_user_id_users")),
        sa.ForeignKeyConstraint(["to_user_id"], ["users.id"], name=op.f("fk_ticket_transfers_to_user_id_users")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_ticket_transfers_token_hash")),
        sa.CheckConstraint("status IN ('pending', 'accepted', 'withdrawn')", name=op.f("ck_ticket_transfers_status")),
    )
    op.create_index("uq_ticket_transfers_one_pending", "ticket_transfers", ["ticket_id"], unique=True,
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_index("ix_ticket_transfers_ticket", "ticket_transfers", ["ticket_id", "id"])
    op.create_index("ix_ticket_transfers_old_code", "ticket_transfers", ["old_code"],
                    postgresql_where=sa.text("old_code IS NOT NULL"))
    op.add_column("tickets", sa.Column("door_device", sa.String(64)))
    op.add_column("tickets", sa.Column("door_device_at", sa.DateTime(timezone=True)))
    op.create_table(
        "door_duplicates",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("device_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_device", sa.String(64), nullable=False),
        sa.Column("first_device_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_door_duplicates")),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_door_duplicates_event_id_events"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_door_duplicates_ticket_id_tickets")),
        sa.UniqueConstraint("ticket_id", "device", "device_at", name=op.f("uq_door_duplicates_ticket_id")),
    )
    op.create_index("ix_door_duplicates_event", "door_duplicates", ["event_id", "id"])
    op.execute(current("tb_webhook_order", "843ece5b25bc"))
    op.execute(current("tb_webhook_attendee", "4bb4d7308c48"))
    op.execute("""
        DROP TRIGGER tb_webhook_order_confirmed ON orders;
        CREATE CONSTRAINT TRIGGER tb_webhook_order_confirmed AFTER INSERT ON orders
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
            WHEN (NEW.status = 'confirmed') EXECUTE FUNCTION tb_webhook_order();
        CREATE TRIGGER tb_webhook_attendee AFTER UPDATE OF attendee_name, answers ON tickets FOR EACH ROW
            WHEN (OLD.attendee_name IS DISTINCT FROM NEW.attendee_name OR OLD.answers IS DISTINCT FROM NEW.answers)
            EXECUTE FUNCTION tb_webhook_attendee();
    """)


def downgrade():
    op.execute("""
        DROP TRIGGER tb_webhook_attendee ON tickets; DROP FUNCTION tb_webhook_attendee();
        DROP TRIGGER tb_webhook_order_confirmed ON orders;
        CREATE TRIGGER tb_webhook_order_confirmed AFTER INSERT ON orders FOR EACH ROW
            WHEN (NEW.status = 'confirmed') EXECUTE FUNCTION tb_webhook_order();
    """)
    op.execute(frozen("tb_webhook_order", "0009"))
    op.drop_table("door_duplicates")
    op.drop_column("tickets", "door_device_at")
    op.drop_column("tickets", "door_device")
    op.drop_table("ticket_transfers")
    op.drop_index("ix_tickets_holder", table_name="tickets")
    op.drop_constraint(op.f("fk_tickets_holder_id_users"), "tickets", type_="foreignkey")
    op.drop_column("tickets", "transferred_at")
    op.drop_column("tickets", "holder_id")
    op.drop_column("events", "transfers_until")
    op.drop_column("events", "transfers_enabled")
    op.drop_column("tickets", "answers")
    op.drop_column("tickets", "attendee_name")
    op.drop_column("orders", "answers")
    op.drop_column("holds", "answers")
    op.drop_index("ix_questions_event", table_name="questions")
    op.drop_table("questions")
    op.drop_constraint(op.f("ck_events_attendee_names_mode"), "events", type_="check")
    op.drop_column("events", "attendee_edit_until")
    op.drop_column("events", "attendee_names")
