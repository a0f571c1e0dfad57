"""attendees and questions: a name per ticket and the organiser's questions

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
down_revision = '0016'
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


    op.execute(current("tb_webhook_order", "a3607deed6c4"))
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
    op.drop_column("tickets", "answers")
    op.drop_column("tickets", "attendee_name")
    op.drop_column("orders", "answers")
    op.drop_column("holds", "answers")
    op.drop_index("ix_questions_event", table_name="questions")
    op.drop_table("questions")
    op.drop_constraint(op.f("ck_events_attendee_names_mode"), "events", type_="check")
    op.drop_column("events", "attendee_edit_until")
    op.drop_column("events", "attendee_names")
