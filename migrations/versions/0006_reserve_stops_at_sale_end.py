"""the reserve statement checks the sale end and the buyer's session itself

Since 0005 an event has a sale end (`sales_end_at`, by default its start)
and a user a `session_version` that logout and a password reset bump. Both
are checked inside the one statement a reservation is, by the database's
clock, so the hot path still costs one round trip:

  TB409 "ended"          sales for this event have ended
  TB401 "session ended"  the cookie's session version is no longer the
                         user's (`p_session`; NULL skips the check, for
                         callers that authenticated otherwise)

A hold made before the sale end keeps its own window to be paid (checkout
does not ask this).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 05:40:00
"""
import re

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_DROP_NEW = (
    "DROP FUNCTION tb_reserve_places(bigint, bigint, int[], int[], int);"
    " DROP FUNCTION tb_reserve_seats(bigint, bigint, bigint[], int);"
    " DROP FUNCTION tb_begin_reservation(bigint, bigint, int, int);"
)
_DROP_OLD = (
    "DROP FUNCTION tb_reserve_places(bigint, bigint, int[], int[]);"
    " DROP FUNCTION tb_reserve_seats(bigint, bigint, bigint[]);"
    " DROP FUNCTION tb_begin_reservation(bigint, bigint, int);"
)

FUNCTIONS = r"""
CREATE FUNCTION tb_begin_reservation(p_user bigint, p_event bigint, p_count int, p_session int)
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
    IF p_session IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM users WHERE id = p_user AND session_version = p_session) THEN
        -- The buyer's session was ended (logout elsewhere, password reset).
        RAISE EXCEPTION USING ERRCODE = 'TB401', MESSAGE = 'session ended';
    END IF;
    IF ev.status <> 'on_sale' THEN
        RAISE EXCEPTION USING ERRCODE = 'TB409', MESSAGE = 'not on sale';
    END IF;
    IF now() >= coalesce(ev.sales_end_at, ev.starts_at) THEN
        RAISE EXCEPTION USING ERRCODE = 'TB409', MESSAGE = 'ended';
    END IF;
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

CREATE FUNCTION tb_reserve_places(p_user bigint, p_event bigint, p_tiers int[], p_counts int[], p_session int)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    ev events;
    reserved int[];
    tier record;
    wanted int;
    ids bigint[];
    taken bigint[] := '{}';
    total int := 0;
    currency text;
    hold bigint;
BEGIN
    ev := tb_begin_reservation(p_user, p_event, (SELECT sum(c)::int FROM unnest(p_counts) c), p_session);
    IF (SELECT count(*) FROM tiers WHERE event_id = p_event AND id = ANY(p_tiers) AND NOT seated)
            <> cardinality(p_tiers) THEN
        RAISE EXCEPTION USING ERRCODE = 'TB400', MESSAGE = 'Unknown ticket type for this event.';
    END IF;
    reserved := tb_line_reserved_tiers(p_event);
    FOR tier IN
        SELECT t.id, t.name, t.price_minor, t.currency, c.n
        FROM unnest(p_tiers, p_counts) AS c(tier_id, n) JOIN tiers t ON t.id = c.tier_id
        ORDER BY t.id
    LOOP
        IF tier.id = ANY(reserved) THEN
            RAISE EXCEPTION USING ERRCODE = 'TB410', MESSAGE = 'reserved for the line',
                DETAIL = json_build_object('tier', tier.name, 'wanted', tier.n, 'left', 0,
                                           'waitlist', ev.waitlist_enabled, 'due', false)::text;
        END IF;
        -- Walks ix_units_available; SKIP LOCKED, so buyers never wait for
        -- each other: each takes different rows.
        SELECT array_agg(id) INTO ids FROM (
            SELECT id FROM units WHERE tier_id = tier.id AND status = 'available'
            ORDER BY id LIMIT tier.n FOR UPDATE SKIP LOCKED
        ) grab;
        IF coalesce(cardinality(ids), 0) < tier.n THEN
            -- What we could lock just now is exactly what is left to sell,
            -- unless holds ran out without the sweep noticing yet ("due").
            RAISE EXCEPTION USING ERRCODE = 'TB410', MESSAGE = 'not enough left',
                DETAIL = json_build_object(
                    'tier', tier.name, 'wanted', tier.n, 'left', coalesce(cardinality(ids), 0),
                    'waitlist', ev.waitlist_enabled,
                    'due', EXISTS (SELECT 1 FROM holds WHERE event_id = p_event AND status = 'active'
                                   AND expires_at <= now()))::text;
        END IF;
        taken := taken || ids;
        total := total + tier.price_minor * tier.n;
        currency := coalesce(currency, tier.currency);
    END LOOP;
    INSERT INTO holds (event_id, user_id, kind, status, unit_ids, total_minor, currency, expires_at)
    VALUES (p_event, p_user, 'purchase', 'active', (SELECT array_agg(u ORDER BY u) FROM unnest(taken) u),
            total, currency, now() + make_interval(secs => (ev.hold_minutes * 60)::float8))
    RETURNING id INTO hold;
    UPDATE units SET status = 'held', hold_id = hold WHERE id = ANY(taken);
    PERFORM tb_bump_inventory_clock(p_event);
    RETURN hold;
END
$$;

CREATE FUNCTION tb_reserve_seats(p_user bigint, p_event bigint, p_seats bigint[], p_session int)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    ev events;
    reserved int[];
    found_count int;
    named int;
    lost json;
    total int;
    currency text;
    hold bigint;
BEGIN
    ev := tb_begin_reservation(p_user, p_event, cardinality(p_seats), p_session);
    IF EXISTS (SELECT 1 FROM units u JOIN holds h ON h.id = u.hold_id
               WHERE u.id = ANY(p_seats) AND h.status = 'active' AND h.expires_at <= now()) THEN
        -- A seat whose hold ran out is free the moment someone asks, but
        -- expiring that hold is the offer engine's job (line first).
        RAISE EXCEPTION USING ERRCODE = 'TB503', MESSAGE = 'lapsed hold on a seat';
    END IF;
    reserved := tb_line_reserved_tiers(p_event);
    -- Lock exactly the requested rows, in id order (no deadlocks between
    -- buyers whose picks overlap), then check every one.
    WITH locked AS (
        SELECT u.id, u.status, u.tier_id, u.section, u.row_label, u.seat_number
        FROM units u WHERE u.id = ANY(p_seats) AND u.event_id = p_event
        ORDER BY u.id FOR UPDATE
    )
    SELECT count(*), count(seat_number),
           json_agg(json_build_object('id', id, 'section', section, 'row', row_label, 'seat', seat_number)
                    ORDER BY id) FILTER (WHERE status <> 'available' OR tier_id = ANY(reserved))
    INTO found_count, named, lost FROM locked;
    IF found_count <> cardinality(p_seats) OR named <> found_count THEN
        RAISE EXCEPTION USING ERRCODE = 'TB400', MESSAGE = 'Some of the selected seats do not exist at this event.';
    END IF;
    IF lost IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'TB423', MESSAGE = 'seats taken', DETAIL = lost::text;
    END IF;
    SELECT sum(t.price_minor), min(t.currency) INTO total, currency
    FROM units u JOIN tiers t ON t.id = u.tier_id WHERE u.id = ANY(p_seats);
    INSERT INTO holds (event_id, user_id, kind, status, unit_ids, total_minor, currency, expires_at)
    VALUES (p_event, p_user, 'purchase', 'active', (SELECT array_agg(s ORDER BY s) FROM unnest(p_seats) s),
            total, currency, now() + make_interval(secs => (ev.hold_minutes * 60)::float8))
    RETURNING id INTO hold;
    UPDATE units SET status = 'held', hold_id = hold WHERE id = ANY(p_seats);
    PERFORM tb_bump_inventory_clock(p_event);
    RETURN hold;
END
$$;
"""


def upgrade():
    op.execute(_DROP_OLD)
    op.execute(FUNCTIONS)


def downgrade():
    # Back to 0003's functions, which know neither the sale end nor sessions.
    op.execute(_DROP_NEW)
    old = FUNCTIONS.replace(", p_session int)", ")").replace(", p_session);", ");")
    old = re.sub(r"    IF p_session IS NOT NULL.*?END IF;\n", "", old, flags=re.S)
    old = re.sub(r"    IF now\(\) >= coalesce\(ev.sales_end_at.*?END IF;\n", "", old, flags=re.S)
    op.execute(old)
