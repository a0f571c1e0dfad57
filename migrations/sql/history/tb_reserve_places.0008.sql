CREATE OR REPLACE FUNCTION tb_reserve_places(p_user bigint, p_event bigint, p_tiers int[], p_counts int[], p_session int,
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
