"""hoarding: a per-event limit per buyer, and a cool-down before re-holding what was let go

Two columns on `events`, set by the admin:

  per_buyer_limit           tickets one buyer may have for the event at once,
                            across orders, live holds and places asked for
                            on the waiting list (default 10)
  rehold_cooldown_seconds   how long a buyer must wait before holding again
                            the seats (for general admission: the tier) they
                            released or let expire (default 60; 0 = none)

Both are enforced inside the reserve functions (as 0008 left them, with the
waiting room's admission check), replaced here with CREATE OR REPLACE (same
signatures), so the reserve stays one statement. New refusals, in the style of 0005:

  TB413 'buyer limit'   DETAIL {limit, have}: over the per-buyer limit
  TB429 'cool-down'     DETAIL {wait, expired, seated}: seconds left before
                        these seats (or this tier) may be held again

Serialisation: every reservation first takes a transaction-scoped advisory
lock on (event, buyer) (`tb_buyer_claims`), so one buyer's parallel reserves
(and waiting-list joins, which take the same lock) run one after another and
each counts what the previous one left. The lock comes before any row lock
(lock order: buyer, then the basket hold, then units, then the clock); buyers
never wait for each other on it.

A new basket that keeps seats of a basket it replaced a moment ago (or, for
general admission, the same tier) keeps that basket's deadline: otherwise
reserving the same seats again just before time runs out would hold them for
ever (see tb_buyer_rules).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 07:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


FUNCTIONS = r"""
-- What a buyer has for an event: valid tickets, units of live holds, and
-- places asked for on the waiting list (an offer, once made, is a hold).
-- (plpgsql, not sql: its plan is kept per connection, where a non-inlined
-- SQL function is planned again on every call of the reserve.)
CREATE FUNCTION tb_buyer_count(p_user bigint, p_event bigint) RETURNS int
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT count(*) FROM tickets k JOIN orders o ON o.id = k.order_id
            WHERE o.user_id = p_user AND o.event_id = p_event AND k.status = 'valid')
         + (SELECT coalesce(sum(cardinality(unit_ids)), 0) FROM holds
            WHERE user_id = p_user AND event_id = p_event AND status = 'active' AND expires_at > now())
         + (SELECT coalesce(sum(quantity), 0) FROM waitlist_entries
            WHERE user_id = p_user AND event_id = p_event AND status = 'waiting');
END
$$;

CREATE FUNCTION tb_buyer_claims(p_user bigint, p_event bigint) RETURNS int
LANGUAGE plpgsql AS $$
BEGIN
    -- The buyer's lock for this event, held to the end of the transaction
    -- (taken again by the same transaction, it does not wait). The one-key
    -- space of advisory locks is apart from the two-key one the waiting
    -- list uses; ids are 32-bit (integer columns).
    PERFORM pg_advisory_xact_lock((p_event << 32) | p_user);
    -- A statement of its own after the lock, so its snapshot sees what
    -- the buyer's previous reservation committed.
    RETURN tb_buyer_count(p_user, p_event);
END
$$;

-- The per-buyer rules, after tb_begin_reservation gave back the basket:
-- the limit, the cool-down, and the new hold's deadline. "Recent" is within
-- the event's cool-down; "overlapping" is the same seats, or for general
-- admission a tier in common.
--   * released or let expire recently, overlapping: refused until the
--     cool-down has passed (counted from the release, or from the deadline);
--   * given up recently by changing the selection (a basket replaced,
--     including the one this reservation replaces), overlapping: the new
--     hold keeps the earliest deadline among them, so the clock on those
--     seats never starts again; if that deadline has passed, refused.
CREATE FUNCTION tb_buyer_rules(ev events, p_user bigint, p_count int, p_seats bigint[], p_tiers int[])
RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
    have int;
    window_start timestamptz := now() - make_interval(secs => ev.rehold_cooldown_seconds);
    deadline timestamptz := now() + make_interval(secs => (ev.hold_minutes * 60)::float8);
    recent record;
BEGIN
    -- One statement: what the buyer has (the buyer's lock was taken by
    -- tb_begin_reservation, before the basket) and their recent holds of
    -- this event that overlap the request (ix_holds_user_id).
    SELECT tb_buyer_count(p_user, ev.id) AS have,
           max(CASE WHEN h.status = 'expired' THEN h.expires_at ELSE h.ended_at END)
               FILTER (WHERE h.let_go) AS let_go_at,
           bool_or(h.status = 'expired') FILTER (WHERE h.let_go) AS expired,
           min(h.expires_at) FILTER (WHERE h.given_up) AS kept_deadline,
           max(h.ended_at) FILTER (WHERE h.given_up) AS replaced_at
    INTO recent
    FROM (
        SELECT h.status, h.expires_at, h.ended_at,
               h.end_reason IS DISTINCT FROM 'replaced'
                   AND CASE WHEN h.status = 'expired' THEN h.expires_at ELSE h.ended_at END >= window_start AS let_go,
               h.end_reason = 'replaced' AND h.ended_at >= window_start AS given_up
        FROM holds h
        WHERE h.user_id = p_user AND h.event_id = ev.id AND h.status IN ('released', 'expired')
          AND h.ended_at >= window_start
          AND CASE WHEN p_seats IS NOT NULL THEN h.unit_ids && p_seats
                   ELSE EXISTS (SELECT 1 FROM units u WHERE u.id = ANY(h.unit_ids) AND u.tier_id = ANY(p_tiers)) END
    ) h;
    have := recent.have;
    IF have + p_count > ev.per_buyer_limit THEN
        RAISE EXCEPTION USING ERRCODE = 'TB413', MESSAGE = 'buyer limit',
            DETAIL = json_build_object('limit', ev.per_buyer_limit, 'have', have)::text;
    END IF;
    IF recent.let_go_at IS NOT NULL AND ev.rehold_cooldown_seconds > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'TB429', MESSAGE = 'cool-down',
            DETAIL = json_build_object(
                'wait', greatest(1, ceil(extract(epoch FROM recent.let_go_at
                                                 + make_interval(secs => ev.rehold_cooldown_seconds) - now()))),
                'expired', recent.expired, 'seated', p_seats IS NOT NULL)::text;
    END IF;
    IF recent.kept_deadline IS NOT NULL THEN
        IF recent.kept_deadline <= now() THEN
            RAISE EXCEPTION USING ERRCODE = 'TB429', MESSAGE = 'cool-down',
                DETAIL = json_build_object(
                    'wait', greatest(1, ceil(extract(epoch FROM recent.replaced_at
                                                     + make_interval(secs => ev.rehold_cooldown_seconds) - now()))),
                    'expired', true, 'seated', p_seats IS NOT NULL)::text;
        END IF;
        deadline := least(deadline, recent.kept_deadline);
    END IF;
    RETURN deadline;
END
$$;

-- As in 0008, with the buyer's lock taken first, and a basket whose time
-- had run out ended as expired (it was let go, not replaced).
CREATE OR REPLACE FUNCTION tb_begin_reservation(p_user bigint, p_event bigint, p_count int, p_session int,
                                                p_admission bigint)
RETURNS events
LANGUAGE plpgsql AS $$
DECLARE
    ev events;
    basket holds;
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
    IF ev.waiting_room AND NOT EXISTS (
            SELECT 1 FROM waiting_room_entries
            WHERE id = p_admission AND event_id = p_event AND user_id = p_user
              AND status = 'admitted' AND pass_until > now()) THEN
        -- The waiting room is on and this buyer holds no live pass of
        -- theirs (0008): the view checked the signature, this checks that
        -- the admission is still current by the database clock.
        RAISE EXCEPTION USING ERRCODE = 'TB403', MESSAGE = 'no pass';
    END IF;
    IF p_count > ev.per_order_limit THEN
        RAISE EXCEPTION USING ERRCODE = 'TB413', MESSAGE = 'limit',
            DETAIL = json_build_object('limit', ev.per_order_limit)::text;
    END IF;
    -- Lock order: the buyer's lock, then the basket, then units.
    PERFORM pg_advisory_xact_lock((p_event << 32) | p_user);
    SELECT * INTO basket FROM holds
    WHERE user_id = p_user AND event_id = p_event AND status = 'active' AND kind = 'purchase'
    FOR UPDATE;
    IF basket.id IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM waitlist_entries WHERE event_id = p_event AND status = 'waiting') THEN
            -- Its units must go to the line first: the offer engine's job.
            RAISE EXCEPTION USING ERRCODE = 'TB503', MESSAGE = 'basket with a line';
        END IF;
        UPDATE units SET status = 'available', hold_id = NULL WHERE hold_id = basket.id;
        IF basket.expires_at <= now() THEN
            UPDATE holds SET status = 'expired', ended_at = now(), end_reason = 'expired' WHERE id = basket.id;
        ELSE
            UPDATE holds SET status = 'released', ended_at = now(), end_reason = 'replaced' WHERE id = basket.id;
        END IF;
    END IF;
    RETURN ev;
END
$$;

CREATE OR REPLACE FUNCTION tb_reserve_places(p_user bigint, p_event bigint, p_tiers int[], p_counts int[], p_session int,
                                             p_admission bigint)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    ev events;
    deadline timestamptz;
    reserved int[];
    tier record;
    ids bigint[];
    taken bigint[] := '{}';
    prices int[] := '{}';
    total int := 0;
    currency text;
    hold bigint;
BEGIN
    ev := tb_begin_reservation(p_user, p_event, (SELECT sum(c)::int FROM unnest(p_counts) c), p_session,
                               p_admission);
    IF (SELECT count(*) FROM tiers WHERE event_id = p_event AND id = ANY(p_tiers) AND NOT seated)
            <> cardinality(p_tiers) THEN
        RAISE EXCEPTION USING ERRCODE = 'TB400', MESSAGE = 'Unknown ticket type for this event.';
    END IF;
    deadline := tb_buyer_rules(ev, p_user, (SELECT sum(c)::int FROM unnest(p_counts) c), NULL, p_tiers);
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
           total, currency, deadline
    FROM unnest(taken, prices) AS held(u, p)
    RETURNING id INTO hold;
    UPDATE units SET status = 'held', hold_id = hold WHERE id = ANY(taken);
    PERFORM tb_bump_inventory_clock(p_event);
    IF ev.waiting_room THEN
        -- The pass lasts at least as long as the hold it bought (0008).
        UPDATE waiting_room_entries SET pass_until = greatest(pass_until, h.expires_at)
        FROM holds h WHERE h.id = hold AND waiting_room_entries.id = p_admission;
    END IF;
    RETURN hold;
END
$$;

CREATE OR REPLACE FUNCTION tb_reserve_seats(p_user bigint, p_event bigint, p_seats bigint[], p_session int,
                                            p_admission bigint)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    ev events;
    deadline timestamptz;
    reserved int[];
    found_count int;
    named int;
    lost json;
    hold bigint;
BEGIN
    ev := tb_begin_reservation(p_user, p_event, cardinality(p_seats), p_session, p_admission);
    IF EXISTS (SELECT 1 FROM units u JOIN holds h ON h.id = u.hold_id
               WHERE u.id = ANY(p_seats) AND h.status = 'active' AND h.expires_at <= now()) THEN
        -- A seat whose hold ran out is free the moment someone asks, but
        -- expiring that hold is the offer engine's job (line first).
        RAISE EXCEPTION USING ERRCODE = 'TB503', MESSAGE = 'lapsed hold on a seat';
    END IF;
    deadline := tb_buyer_rules(ev, p_user, cardinality(p_seats), p_seats, NULL);
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
           sum(t.price_minor), min(t.currency), deadline
    FROM units u JOIN tiers t ON t.id = u.tier_id WHERE u.id = ANY(p_seats)
    RETURNING id INTO hold;
    UPDATE units SET status = 'held', hold_id = hold WHERE id = ANY(p_seats);
    PERFORM tb_bump_inventory_clock(p_event);
    IF ev.waiting_room THEN
        -- The pass lasts at least as long as the hold it bought (0008).
        UPDATE waiting_room_entries SET pass_until = greatest(pass_until, h.expires_at)
        FROM holds h WHERE h.id = hold AND waiting_room_entries.id = p_admission;
    END IF;
    RETURN hold;
END
$$;
"""


def upgrade():
    op.add_column("events", sa.Column("per_buyer_limit", sa.Integer, nullable=False, server_default="10"))
    op.add_column("events", sa.Column("rehold_cooldown_seconds", sa.Integer, nullable=False, server_default="60"))
    op.execute(FUNCTIONS)


def downgrade():
    # 0008's functions come back from its own text.
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("waiting_room_0008", Path(__file__).with_name("0008_waiting_room.py"))
    previous = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(previous)
    op.execute("DROP FUNCTION tb_reserve_seats(bigint, bigint, bigint[], int, bigint);"
               " DROP FUNCTION tb_reserve_places(bigint, bigint, int[], int[], int, bigint);"
               " DROP FUNCTION tb_begin_reservation(bigint, bigint, int, int, bigint);"
               " DROP FUNCTION tb_buyer_rules(events, bigint, int, bigint[], int[]);"
               " DROP FUNCTION tb_buyer_claims(bigint, bigint); DROP FUNCTION tb_buyer_count(bigint, bigint);")
    op.execute(previous.FUNCTIONS)
    op.drop_column("events", "rehold_cooldown_seconds")
    op.drop_column("events", "per_buyer_limit")
