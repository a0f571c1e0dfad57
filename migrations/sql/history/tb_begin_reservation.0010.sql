-- The event's sale state and the buyer's basket, shared by the reserve
-- functions. Lock order: the buyer's advisory lock, then the basket's hold
-- row, then its units; the caller then locks the units it takes, and bumps
-- the clock last. A basket whose time had run out ends as expired: it was
-- let go, not replaced, and the cool-down counts it so.
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
