CREATE OR REPLACE FUNCTION tb_reserve_seats(p_user bigint, p_event bigint, p_seats bigint[], p_session int,
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
