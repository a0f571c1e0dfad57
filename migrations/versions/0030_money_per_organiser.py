"""money per organiser: invoice series per organiser, captures and card fingerprints on our payments,
a per-event limit per payment instrument, disputes that close and flag their order

- `organisers.invoice_prefix` / `credit_note_prefix`: what an organiser's
  invoice and credit-note numbers start with ("ACME-2026-"); a series is
  (organiser, prefix), so a new prefix starts a new series at 1.
- `invoice_series` is keyed by (organiser_id, series) and `invoices` carries
  its organiser: numbers are unique and gapless per organiser and series.
  Today's series move into the default organiser's, their prefixes gaining
  the separator the label printed ("INV" -> "INV-"), so every number already
  issued reads as before.
- `payment_attempts.captured_at`: when the gateway confirmed the capture, so
  the dashboard's money by state reads our rows for every gateway. Backfilled
  from the simulated gateway's ledger and Stripe's last known intent status.
- `payment_attempts.instrument`: the card's fingerprint (Stripe), counted per
  event against `events.per_instrument_limit` (NULL: no limit).
- `tiers.tax_inclusive`: false when the tier's price was entered net and
  the tax is added on top (services/money/tax.py); today's tiers include it.
- `organisers.stripe_*`: an organiser's own Stripe account: its publishable
  key, and the *names* of the environment variables that hold its secret
  key and webhook secret (secrets stay out of the database and its backups);
  unset, the install's account is used. `stripe_intents.account` notes the
  account each intent was made in (the variable's name; NULL: the
  install's), so an organiser changing accounts leaves its older payments
  to be captured and refunded where they were made.
- `payment_disputes.closed_at` and `orders.disputed_at`: a dispute closes
  (won or lost), and its order is flagged while it is open or lost.

Revision ID: 0030
Revises: 0028
"""
import sqlalchemy as sa
from alembic import op

revision = '0030'
down_revision = '0028'
branch_labels = None
depends_on = None

DEFAULT = "(SELECT id FROM organisers WHERE slug = 'default')"


def upgrade():
    op.add_column("organisers", sa.Column("invoice_prefix", sa.String(30), nullable=False, server_default="INV-"))
    op.add_column("organisers", sa.Column("credit_note_prefix", sa.String(30), nullable=False,
                                          server_default="CN-"))

    op.add_column("invoice_series", sa.Column("organiser_id", sa.Integer(),
                                              sa.ForeignKey("organisers.id", ondelete="CASCADE")))
    op.execute(f"UPDATE invoice_series SET organiser_id = {DEFAULT}, series = series || '-'")
    op.alter_column("invoice_series", "organiser_id", nullable=False)
    op.drop_constraint("pk_invoice_series", "invoice_series", type_="primary")
    op.create_primary_key("pk_invoice_series", "invoice_series", ["organiser_id", "series"])

    op.add_column("invoices", sa.Column("organiser_id", sa.Integer(),
                                        sa.ForeignKey("organisers.id", ondelete="CASCADE")))
    op.execute("UPDATE invoices i SET organiser_id = e.organiser_id, series = i.series || '-'"
               " FROM events e WHERE e.id = i.event_id")
    op.alter_column("invoices", "organiser_id", nullable=False)
    op.drop_constraint("uq_invoices_series_number", "invoices", type_="unique")
    op.create_unique_constraint("uq_invoices_organiser_series_number", "invoices",
                                ["organiser_id", "series", "number"])

    op.add_column("payment_attempts", sa.Column("captured_at", sa.DateTime(timezone=True)))
    op.add_column("payment_attempts", sa.Column("instrument", sa.String(64)))
    op.execute("UPDATE payment_attempts p SET captured_at = coalesce(p.completed_at, p.created_at)"
               " WHERE p.status = 'approved' AND (EXISTS (SELECT 1 FROM gateway_charges g"
               "  WHERE g.idempotency_key = p.idempotency_key AND g.status = 'captured')"
               " OR EXISTS (SELECT 1 FROM stripe_intents s WHERE s.idempotency_key = p.idempotency_key"
               "  AND s.last_status = 'succeeded'))")
    # What the per-instrument limit counts: approved payments of one card for one event.
    op.create_index("ix_payment_attempts_instrument", "payment_attempts", ["event_id", "instrument"],
                    postgresql_where=sa.text("instrument IS NOT NULL AND status = 'approved'"))
    op.add_column("events", sa.Column("per_instrument_limit", sa.Integer()))
    op.create_check_constraint("ck_events_per_instrument_limit_range", "events",
                               "per_instrument_limit IS NULL OR per_instrument_limit BETWEEN 1 AND 10000")

    op.add_column("payment_disputes", sa.Column("closed_at", sa.DateTime(timezone=True)))
    op.add_column("orders", sa.Column("disputed_at", sa.DateTime(timezone=True)))
    op.add_column("organisers", sa.Column("stripe_publishable_key", sa.String(200)))
    op.add_column("organisers", sa.Column("stripe_secret_key_env", sa.String(64)))
    op.add_column("organisers", sa.Column("stripe_webhook_secret_env", sa.String(64)))
    op.add_column("stripe_intents", sa.Column("account", sa.String(64)))
    op.add_column("tiers", sa.Column("tax_inclusive", sa.Boolean(), nullable=False, server_default=sa.text("true")))


def downgrade():
    op.drop_column("tiers", "tax_inclusive")
    op.drop_column("stripe_intents", "account")
    for column in ("stripe_webhook_secret_env", "stripe_secret_key_env", "stripe_publishable_key"):
        op.drop_column("organisers", column)
    op.drop_column("orders", "disputed_at")
    op.drop_column("payment_disputes", "closed_at")
    op.drop_constraint("ck_events_per_instrument_limit_range", "events", type_="check")
    op.drop_column("events", "per_instrument_limit")
    op.drop_index("ix_payment_attempts_instrument", table_name="payment_attempts")
    op.drop_column("payment_attempts", "instrument")
    op.drop_column("payment_attempts", "captured_at")

    # Back to one numbering per series for the whole install: only the default organiser's survive.
    op.execute(f"DELETE FROM invoice_series WHERE organiser_id <> {DEFAULT}")
    op.drop_constraint("uq_invoices_organiser_series_number", "invoices", type_="unique")
    op.execute("UPDATE invoices SET series = rtrim(series, '-')")
    op.create_unique_constraint("uq_invoices_series_number", "invoices", ["series", "number"])
    op.drop_column("invoices", "organiser_id")
    op.drop_constraint("pk_invoice_series", "invoice_series", type_="primary")
    op.execute("UPDATE invoice_series SET series = rtrim(series, '-')")
    op.create_primary_key("pk_invoice_series", "invoice_series", ["series"])
    op.drop_column("invoice_series", "organiser_id")
    op.drop_column("organisers", "credit_note_prefix")
    op.drop_column("organisers", "invoice_prefix")
