"""organisers.default_locale: the language an organiser's pages speak to a buyer who has not chosen one

A buyer's own choice (the switcher) and their browser's come first
(webapp/i18n.py); this is the fallback on the organiser's event pages and
public page. Existing organisers speak English, as the shop did until now.

Revision ID: 0027
Revises: 0030
"""
import sqlalchemy as sa
from alembic import op

revision = '0027'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("organisers", sa.Column("default_locale", sa.String(8), nullable=False, server_default="en"))


def downgrade():
    op.drop_column("organisers", "default_locale")
