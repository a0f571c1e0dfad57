"""reserve in one round trip: SQL functions for the grab, and a layout version

A reservation used to cost eight statements (event, tiers, basket, line,
grab, hold insert, unit update, clock bump) plus BEGIN and COMMIT, each a
round trip with its own Python around it. These functions do the same work,
under the same locks in the same order, inside PostgreSQL: one statement,
which is also its own transaction when the caller runs it in autocommit.

They are inventory's, like every other write to `units`: only
`webapp/services/selling/inventory.py` calls them. A refusal raises an error with a
`TBnnn` SQLSTATE (so everything the function did is rolled back) and a JSON
DETAIL that inventory turns into the buyer's message:

  TB404 no such event            TB409 not on sale, or its sale ended ("ended")
  TB401 the buyer's session was ended (`p_session`, the version the cookie
        claims, is no longer `users.session_version`; NULL skips the check)
  TB400 bad request (message)    TB413 over the per-order limit
  TB410 not enough left          TB423 seats taken
  TB503 needs preparation: a basket to give back while people wait in line,
        or a lapsed hold still on a requested seat; inventory does that part
        in Python (the waiting list's offer engine) and calls again.

`events.layout_version` changes whenever what a seat map draws changes
(seats added, removed or moved; a tier renamed, repriced or recoloured), by
trigger, so the map's static markup can be cached per version and no writer
can forget to say so.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 05:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


FUNCTIONS = r"""
CREATE FUNCTION tb_line_reserved_tiers(p_event bigint) RETURNS int[]
LANGUAGE sql STABLE AS $$
    -- Tiers the public cannot buy from because people wait for them; an
    -- entry for "any tier" (tier_id NULL) reserves every tier of the event.
    SELECT coalesce(array_agg(DISTINCT coalesce(w.tier_id, t.id)), '{}')
    FROM waitlist_entries w
    JOIN tiers t ON t.event_id = w.event_id AND (w.tier_id IS NULL OR t.id = w.tier_id)
    WHERE w.event_id = p_event AND w.status = 'waiting'
$$;

CREATE FUNCTION tb_bump_inventory_clock(p_event bigint) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO inventory_clock (event_id, shard, version) VALUES (p_event, floor(random() * 8)::int, 1)
    ON CONFLICT (event_id, shard) DO UPDATE SET version = inventory_clock.version + 1
$$;

-- The event's sale state and the buyer's basket, shared by both grabs.
-- Lock order: the basket's hold row first, then its units; the caller then
-- locks the units it takes, and bumps the clock last.
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
    prices int[] := '{}';
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
        prices := prices || array_fill(tier.price_minor, ARRAY[tier.n]);
        total := total + tier.price_minor * tier.n;
        currency := coalesce(currency, tier.currency);
    END LOOP;
    INSERT INTO holds (event_id, user_id, kind, status, unit_ids, unit_prices, total_minor, currency, expires_at)
    SELECT p_event, p_user, 'purchase', 'active', array_agg(u ORDER BY u), array_agg(p ORDER BY u),
           total, currency, now() + make_interval(secs => (ev.hold_minutes * 60)::float8)
    FROM unnest(taken, prices) AS held(u, p)
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
    INSERT INTO holds (event_id, user_id, kind, status, unit_ids, unit_prices, total_minor, currency, expires_at)
    SELECT p_event, p_user, 'purchase', 'active', array_agg(u.id ORDER BY u.id), array_agg(t.price_minor ORDER BY u.id),
           sum(t.price_minor), min(t.currency), now() + make_interval(secs => (ev.hold_minutes * 60)::float8)
    FROM units u JOIN tiers t ON t.id = u.tier_id WHERE u.id = ANY(p_seats)
    RETURNING id INTO hold;
    UPDATE units SET status = 'held', hold_id = hold WHERE id = ANY(p_seats);
    PERFORM tb_bump_inventory_clock(p_event);
    RETURN hold;
END
$$;

CREATE FUNCTION tb_bump_layout_version_of_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE events SET layout_version = layout_version + 1 WHERE id = NEW.event_id;
    RETURN NULL;
END
$$;

CREATE FUNCTION tb_bump_layout_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Statement-level: a generated section of 1,000 seats bumps once.
    UPDATE events SET layout_version = layout_version + 1
    WHERE id IN (SELECT DISTINCT event_id FROM changed);
    RETURN NULL;
END
$$;
"""

TRIGGERS = [
    ("units", "INSERT", "NEW"), ("units", "DELETE", "OLD"),
    ("tiers", "INSERT", "NEW"), ("tiers", "DELETE", "OLD"), ("tiers", "UPDATE", "NEW"),
]


def upgrade():
    op.add_column("events", sa.Column("layout_version", sa.BigInteger, nullable=False, server_default="1"))
    # The price paid is the price held: tickets take it from here, not from the tier at payment time.
    op.add_column("holds", sa.Column("unit_prices", sa.ARRAY(sa.Integer)))
    op.execute(FUNCTIONS)
    for table, verb, side in TRIGGERS:
        op.execute(
            f"CREATE TRIGGER tb_layout_{table}_{verb.lower()} AFTER {verb} ON {table}"
            f" REFERENCING {side} TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION tb_bump_layout_version()"
        )
    # Unit status changes (the hot path) do not touch the layout, so the
    # UPDATE trigger on units is limited to the columns the map draws; such a
    # trigger cannot have a transition table, hence per row (moving seats is
    # rare admin work).
    op.execute(
        "CREATE TRIGGER tb_layout_units_update AFTER UPDATE OF tier_id, section, row_label, seat_number, pos_x, pos_y"
        " ON units FOR EACH ROW EXECUTE FUNCTION tb_bump_layout_version_of_row()"
    )


def downgrade():
    for table, verb, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER tb_layout_{table}_{verb.lower()} ON {table}")
    op.execute("DROP TRIGGER tb_layout_units_update ON units")
    op.execute(
        "DROP FUNCTION tb_bump_layout_version(); DROP FUNCTION tb_bump_layout_version_of_row(); DROP FUNCTION tb_reserve_seats(bigint, bigint, bigint[], int);"
        " DROP FUNCTION tb_reserve_places(bigint, bigint, int[], int[], int);"
        " DROP FUNCTION tb_begin_reservation(bigint, bigint, int, int);"
        " DROP FUNCTION tb_bump_inventory_clock(bigint); DROP FUNCTION tb_line_reserved_tiers(bigint);"
    )
    op.drop_column("holds", "unit_prices")
    op.drop_column("events", "layout_version")
