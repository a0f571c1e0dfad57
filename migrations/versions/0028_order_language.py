"""the language a buyer used, remembered for what is sent to them later

`orders.locale` (copied from `payment_attempts.locale`, set by the buyer's
request that pays, so a provider's webhook confirming the payment does not
choose the language), `waitlist_entries.locale` (the request that joined),
`waiting_room_entries.notify_locale` (the request that asked for the turn
mail) and `outbox_messages.locale`: each mail, PDF and `.ics` is rendered in
the language stored with it, even by the worker, outside any request.
Existing rows are English, the only language there was.

Revision ID: 0028
Revises: 0029
"""
import sqlalchemy as sa
from alembic import op

revision = '0028'
down_revision = '0029'
branch_labels = None
depends_on = None

COLUMNS = (("orders", "locale"), ("payment_attempts", "locale"), ("waitlist_entries", "locale"),
           ("waiting_room_entries", "notify_locale"), ("outbox_messages", "locale"))


def upgrade():
    # A constant default: PostgreSQL adds such a column without rewriting the table.
    for table, column in COLUMNS:
        op.add_column(table, sa.Column(column, sa.String(8), nullable=False, server_default="en"))


def downgrade():
    for table, column in reversed(COLUMNS):
        op.drop_column(table, column)
