"""refunds as rows with states, invoices and credit notes, tax rates per tier

  refunds            one refund of (part of) an order: requested, then
                     succeeded or failed, under its own idempotency key at
                     the gateway; retried by the sweep while requested
  refund_tickets     the tickets a refund gave back: a ticket at most once
                     (unique ticket_id)
  gateway_refunds    the simulated provider's ledger of refunds, one row per
                     refund key (a repeated key gives back nothing more)
  invoice_series     one counter row per series: the next number is taken
                     under this row's lock in the transaction that issues the
                     document, so numbers have no gaps and are never reused.
                     The series is a column ("series") so that it can later
                     be scoped per organiser.
  invoices           invoices and credit notes (kind); a credit note names
                     the invoice it corrects and the refund behind it
  tb_webhook_refund  the webhooks refund.succeeded and refund.failed, fired
                     when a refund settles (or is made settled: a cancel whose
                     fee kept everything)

  tiers.tax_rate_bp  the tier's tax rate in basis points (2000 = 20 %),
                     included in the price
  events.cancel_until_hours, cancel_fee_minor, cancel_fee_percent
                     the buyer's own cancel: allowed until N hours before the
                     start (NULL: until the start), keeping a fixed fee or a
                     percentage
  events.billing_required  the buyer must give a billing name and address
  orders.refunded_minor  what the order's refunds give back (requested or
                     succeeded; a failed one is taken off again), kept by the
                     refund service under the order's lock, so the order page
                     reads a number instead of summing rows
  orders.billing_name, billing_address, and the same on payment_attempts,
                     where checkout keeps them until the order is made

Revision ID: 0021
Revises: 0016
Create Date: 2026-12-07 03:30:00
"""
import sqlalchemy as sa
from alembic import op

from migrations.functions import current

revision = '0021'
down_revision = '0018'
branch_labels = None
depends_on = None


TRIGGERS = """
CREATE TRIGGER tb_webhook_refund_settled AFTER UPDATE OF state ON refunds FOR EACH ROW
    WHEN (OLD.state = 'requested' AND NEW.state IN ('succeeded', 'failed')) EXECUTE FUNCTION tb_webhook_refund();
CREATE TRIGGER tb_webhook_refund_kept AFTER INSERT ON refunds FOR EACH ROW
    WHEN (NEW.state = 'succeeded') EXECUTE FUNCTION tb_webhook_refund();
"""


def upgrade():
    op.add_column("tiers", sa.Column("tax_rate_bp", sa.Integer(), nullable=False, server_default="0"))
    op.create_check_constraint(op.f("ck_tiers_tax_rate_range"), "tiers", "tax_rate_bp BETWEEN 0 AND 10000")

    op.add_column("events", sa.Column("cancel_until_hours", sa.Integer()))
    op.add_column("events", sa.Column("cancel_fee_minor", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("events", sa.Column("cancel_fee_percent", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("events", sa.Column("billing_required", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_check_constraint(op.f("ck_events_cancel_policy"), "events",
                               "(cancel_until_hours IS NULL OR cancel_until_hours BETWEEN 0 AND 8760)"
                               " AND cancel_fee_minor >= 0 AND cancel_fee_percent BETWEEN 0 AND 100")

    op.add_column("orders", sa.Column("refunded_minor", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("orders", sa.Column("billing_name", sa.String(200)))
    op.add_column("orders", sa.Column("billing_address", sa.String(500)))
    op.add_column("payment_attempts", sa.Column("billing_name", sa.String(200)))
    op.add_column("payment_attempts", sa.Column("billing_address", sa.String(500)))

    op.create_table(
        "refunds",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("order_id", sa.BigInteger(), sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("state", sa.String(12), nullable=False, server_default="requested"),
        sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
        sa.Column("actor_id", sa.Integer(), sa.ForeignKey("users.id")),
        sa.Column("tries", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.String(200)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("amount_minor >= 0", name=op.f("ck_refunds_amount_not_negative")),
        sa.CheckConstraint("state IN ('requested', 'succeeded', 'failed')", name=op.f("ck_refunds_state")),
    )
    op.create_index("ix_refunds_order", "refunds", ["order_id"])
    op.create_index("ix_refunds_requested", "refunds", ["created_at"], postgresql_where=sa.text("state = 'requested'"))
    op.create_table(
        "refund_tickets",
        sa.Column("refund_id", sa.BigInteger(), sa.ForeignKey("refunds.id"), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), sa.ForeignKey("tickets.id"), nullable=False, unique=True),
        sa.PrimaryKeyConstraint("refund_id", "ticket_id", name=op.f("pk_refund_tickets")),
    )
    op.create_table(
        "gateway_refunds",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("idempotency_key", sa.String(80), nullable=False, unique=True),
        sa.Column("reference", sa.String(64), nullable=False, index=True),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    )
    op.create_table(
        "invoice_series",
        sa.Column("series", sa.String(40), primary_key=True),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("order_id", sa.BigInteger(), sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("series", sa.String(40), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("credits_invoice_id", sa.BigInteger(), sa.ForeignKey("invoices.id")),
        sa.Column("refund_id", sa.BigInteger(), sa.ForeignKey("refunds.id"), unique=True),
        sa.Column("gross_minor", sa.Integer(), nullable=False),
        # Net, tax and gross per tax rate, fixed when issued: [{"rate_bp", "net", "tax", "gross"}].
        sa.Column("lines", sa.dialects.postgresql.JSONB(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.UniqueConstraint("series", "number", name=op.f("uq_invoices_series_number")),
        sa.CheckConstraint("kind IN ('invoice', 'credit_note')", name=op.f("ck_invoices_kind")),
        sa.CheckConstraint("(kind = 'invoice') = (credits_invoice_id IS NULL)", name=op.f("ck_invoices_credit_link")),
    )
    op.create_index("ix_invoices_event", "invoices", ["event_id", "id"])
    op.create_index("ix_invoices_order", "invoices", ["order_id"])
    # The credit notes of an invoice: what its foreign key's checks and the checker look up.
    op.create_index("ix_invoices_credits", "invoices", ["credits_invoice_id"],
                    postgresql_where=sa.text("credits_invoice_id IS NOT NULL"))
    op.create_index("uq_invoices_one_per_order", "invoices", ["order_id"], unique=True,
                    postgresql_where=sa.text("kind = 'invoice'"))
    op.execute(current("tb_webhook_refund", "9be46dc7c8c3"))
    op.execute(TRIGGERS)


def downgrade():
    op.execute("DROP TRIGGER tb_webhook_refund_kept ON refunds; DROP TRIGGER tb_webhook_refund_settled ON refunds;"
               " DROP FUNCTION tb_webhook_refund()")
    op.drop_table("invoices")
    op.drop_table("invoice_series")
    op.drop_table("gateway_refunds")
    op.drop_table("refund_tickets")
    op.drop_table("refunds")
    op.drop_column("payment_attempts", "billing_address")
    op.drop_column("payment_attempts", "billing_name")
    op.drop_column("orders", "billing_address")
    op.drop_column("orders", "billing_name")
    op.drop_column("orders", "refunded_minor")
    op.drop_constraint(op.f("ck_events_cancel_policy"), "events")
    for column in ("billing_required", "cancel_fee_percent", "cancel_fee_minor", "cancel_until_hours"):
        op.drop_column("events", column)
    op.drop_constraint(op.f("ck_tiers_tax_rate_range"), "tiers")
    op.drop_column("tiers", "tax_rate_bp")
