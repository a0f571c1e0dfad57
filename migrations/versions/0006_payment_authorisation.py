"""the simulated gateway authorises, captures and voids

A charge in the gateway's ledger now says where the money stands:
`authorised` (the issuer approved and reserved the amount), `captured` (taken),
`voided` (released; nothing was taken) or `declined`. A key voided before any
authorisation reached the gateway leaves a `voided` row, so an authorisation
that turns up later under that key is refused: "void" is a definitive answer
even while a charge is still in flight.

Charges made before this revision were authorised and captured in one call:
approved ones become `captured`, the rest `declined`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 07:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('gateway_charges', sa.Column('status', sa.String(20), nullable=True))
    op.execute("UPDATE gateway_charges SET status = CASE WHEN outcome = 'approved' THEN 'captured' ELSE 'declined' END")
    op.alter_column('gateway_charges', 'status', nullable=False)
    op.create_check_constraint(
        op.f('ck_gateway_charges_gateway_charge_status'), 'gateway_charges', "status IN ('authorised', 'captured', 'voided', 'declined')")
    op.add_column('gateway_charges', sa.Column('captured_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('gateway_charges', sa.Column('voided_at', sa.DateTime(timezone=True), nullable=True))
    # The sweep looks for authorisations never captured (a crash between the order and the capture).
    op.create_index('ix_gateway_charges_authorised', 'gateway_charges', ['created_at'],
                    postgresql_where=sa.text("status = 'authorised'"))


def downgrade():
    op.drop_index('ix_gateway_charges_authorised', table_name='gateway_charges')
    op.drop_column('gateway_charges', 'voided_at')
    op.drop_column('gateway_charges', 'captured_at')
    op.drop_constraint(op.f('ck_gateway_charges_gateway_charge_status'), 'gateway_charges', type_='check')
    op.drop_column('gateway_charges', 'status')
