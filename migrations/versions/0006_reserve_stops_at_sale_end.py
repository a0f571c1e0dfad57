"""reservations stop at the event's sale end, in the reserve statement itself

The reserve functions of 0003 check the event's status; since 0005 an event
also has a sale end (`sales_end_at`, by default its start). The check is in
the one statement a reservation is, by the database's clock, and refuses with
TB409 and the words "ended". A hold made before the end keeps its own window
to be paid (checkout does not ask this).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 06:10:00
"""
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_BODY = r"""
CREATE OR REPLACE FUNCTION tb_begin_reservation(p_user bigint, p_event bigint, p_count int)
RETURNS events
LANGUAGE plpgsql AS $$
DECLARE
    ev events;
    basket bigint;
BEGIN
    SELECT * INTO ev FROM events WHERE id = p_event;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'TB404', MESSAGE = 'No such event.';
    END IF;
    IF ev.status <> 'on_sale' THEN
        RAISE EXCEPTION USING ERRCODE = 'TB409', MESSAGE = 'not on sale';
    END IF;
    {sale_end}
    IF p_count > ev.per_order_limit THEN
        RAISE EXCEPTION USING ERRCODE = 'TB413', MESSAGE = 'limit',
            DETAIL = json_build_object('limit', ev.per_order_limit)::text;
    END IF;
    SELECT id INTO basket FROM holds
    WHERE user_id = p_user AND event_id = p_event AND status = 'active' AND kind = 'purchase'
    FOR UPDATE;
    IF basket IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM waitlist_entries WHERE event_id = p_event AND status = 'waiting') THEN
            -- Its units must go to the line first: the offer engine's job.
            RAISE EXCEPTION USING ERRCODE = 'TB503', MESSAGE = 'basket with a line';
        END IF;
        UPDATE units SET status = 'available', hold_id = NULL WHERE hold_id = basket;
        UPDATE holds SET status = 'released', ended_at = now(), end_reason = 'replaced' WHERE id = basket;
    END IF;
    RETURN ev;
END
$$;
"""

_SALE_END = """IF now() >= coalesce(ev.sales_end_at, ev.starts_at) THEN
        RAISE EXCEPTION USING ERRCODE = 'TB409', MESSAGE = 'ended';
    END IF;"""


def upgrade():
    op.execute(_BODY.replace("{sale_end}", _SALE_END))


def downgrade():
    op.execute(_BODY.replace("{sale_end}", ""))
