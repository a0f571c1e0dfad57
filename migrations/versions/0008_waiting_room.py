"""the waiting room: per-event settings, the line, and the reserve's pass check

`waiting_rooms` holds an event's room settings and the state of admission
(one row per event: the admission pass locks it with SKIP LOCKED, so any
number of hosts may run the pass and only one admits at a time).
`waiting_room_entries` is the line: one place per account (or per signed
anonymous token) per event, ordered by `line_key`, a secret random draw
(negative) for everyone who joined before the sale start and the arrival
time in microseconds (positive) after it.

`events.waiting_room` is true while the room guards the event (on, and the
gate not opened to everyone): the reserve functions already read the event
row, so they check the buyer's admission with no extra round trip. They are
recreated here with one more argument, `p_admission` (the admission the
buyer's signed pass names), and refuse with TB403 when the room is on and
that admission is not this buyer's, current by the database clock. A hold
made under a pass extends the pass to the hold's expiry.

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-02 07:20:00
"""
import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0006'
branch_labels = None
depends_on = None

OLD_SIGNATURES = (
    "tb_reserve_seats(bigint, bigint, bigint[], int)",
    "tb_reserve_places(bigint, bigint, int[], int[], int)",
    "tb_begin_reservation(bigint, bigint, int, int)",
)
NEW_SIGNATURES = (
    "tb_reserve_seats(bigint, bigint, bigint[], int, bigint)",
    "tb_reserve_places(bigint, bigint, int[], int[], int, bigint)",
    "tb_begin_reservation(bigint, bigint, int, int, bigint)",
)

FUNCTIONS = r"""
CREATE FUNCTION tb_begin_reservation(p_user bigint, p_event bigint, p_count int, p_session int,
                                     p_admission bigint)
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
    IF ev.waiting_room AND NOT EXISTS (
            SELECT 1 FROM waiting_room_entries
            WHERE id = p_admission AND event_id = p_event AND user_id = p_user
              AND status = 'admitted' AND pass_until > now()) THEN
        -- The waiting room is on and this buyer holds no live pass of
        -- theirs: the view checked the signature, this checks that the
        -- admission is still current by the database clock (it ended when
        -- the buyer left, or its time ran out).
        RAISE EXCEPTION USING ERRCODE = 'TB403', MESSAGE = 'no pass';
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

CREATE FUNCTION tb_reserve_places(p_user bigint, p_event bigint, p_tiers int[], p_counts int[], p_session int,
                                  p_admission bigint)
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
    ev := tb_begin_reservation(p_user, p_event, (SELECT sum(c)::int FROM unnest(p_counts) c), p_session,
                               p_admission);
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
    IF ev.waiting_room THEN
        -- The pass lasts at least as long as the hold it bought.
        UPDATE waiting_room_entries SET pass_until = greatest(pass_until, h.expires_at)
        FROM holds h WHERE h.id = hold AND waiting_room_entries.id = p_admission;
    END IF;
    RETURN hold;
END
$$;

CREATE FUNCTION tb_reserve_seats(p_user bigint, p_event bigint, p_seats bigint[], p_session int,
                                 p_admission bigint)
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
    ev := tb_begin_reservation(p_user, p_event, cardinality(p_seats), p_session, p_admission);
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
    IF ev.waiting_room THEN
        -- The pass lasts at least as long as the hold it bought.
        UPDATE waiting_room_entries SET pass_until = greatest(pass_until, h.expires_at)
        FROM holds h WHERE h.id = hold AND waiting_room_entries.id = p_admission;
    END IF;
    RETURN hold;
END
$$;

"""


def upgrade():
    op.add_column("events", sa.Column("waiting_room", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "waiting_rooms",
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("sale_starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("admit_per_minute", sa.Integer()),
        sa.Column("max_shoppers", sa.Integer()),
        sa.Column("pass_minutes", sa.Numeric(6, 2), nullable=False, server_default="10"),
        sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("gate_open", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("sold_out", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("version", sa.BigInteger(), nullable=False, server_default="1"),
        sa.Column("credit", sa.Float(), nullable=False, server_default="0"),
        sa.Column("credited_at", sa.DateTime(timezone=True)),
        sa.Column("last_pass_at", sa.DateTime(timezone=True)),
        sa.Column("admitted_total", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("admit_per_minute IS NULL OR admit_per_minute BETWEEN 1 AND 100000",
                           name="ck_waiting_rooms_rate_range"),
        sa.CheckConstraint("max_shoppers IS NULL OR max_shoppers BETWEEN 1 AND 100000",
                           name="ck_waiting_rooms_cap_range"),
        sa.CheckConstraint("admit_per_minute IS NOT NULL OR max_shoppers IS NOT NULL",
                           name="ck_waiting_rooms_rate_or_cap"),
        sa.CheckConstraint("pass_minutes > 0 AND pass_minutes <= 60", name="ck_waiting_rooms_pass_range"),
    )
    op.create_table(
        "waiting_room_entries",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE")),
        sa.Column("anon_token", sa.String(64)),
        sa.Column("line_key", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False, server_default="waiting"),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("admitted_at", sa.DateTime(timezone=True)),
        sa.Column("pass_until", sa.DateTime(timezone=True)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('waiting', 'admitted', 'done', 'left')", name="ck_wr_entries_status"),
        sa.CheckConstraint("user_id IS NOT NULL OR anon_token IS NOT NULL", name="ck_wr_entries_owner"),
    )
    # One place per account, and per anonymous token, per event (whatever its state).
    op.create_index("uq_wr_entries_user", "waiting_room_entries", ["event_id", "user_id"], unique=True,
                    postgresql_where=sa.text("user_id IS NOT NULL"))
    op.create_index("uq_wr_entries_anon", "waiting_room_entries", ["event_id", "anon_token"], unique=True,
                    postgresql_where=sa.text("anon_token IS NOT NULL"))
    # The line: position counts and the admission grab walk this, index only.
    op.create_index("ix_wr_entries_line", "waiting_room_entries", ["event_id", "line_key", "id"],
                    postgresql_include=["status"])
    op.create_index("ix_wr_entries_admitted", "waiting_room_entries", ["event_id"],
                    postgresql_where=sa.text("status = 'admitted'"))
    op.execute("DROP FUNCTION " + "; DROP FUNCTION ".join(OLD_SIGNATURES))
    op.execute(FUNCTIONS)


def _functions_of_0005() -> str:
    path = Path(__file__).with_name("0005_reserve_functions.py")
    spec = importlib.util.spec_from_file_location("tb_migration_0005", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = module.FUNCTIONS
    return text[text.index("CREATE FUNCTION tb_begin_reservation"):text.index("CREATE FUNCTION tb_bump_layout_version_of_row")]


def downgrade():
    op.execute("DROP FUNCTION " + "; DROP FUNCTION ".join(NEW_SIGNATURES))
    op.execute(_functions_of_0005())
    op.drop_table("waiting_room_entries")
    op.drop_table("waiting_rooms")
    op.drop_column("events", "waiting_room")
