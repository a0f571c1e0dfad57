-- Best available: chooses the seats, then holds them through tb_hold_seats so
-- that every rule of a seat reserve is that function's and is not repeated.
CREATE OR REPLACE FUNCTION tb_hold_best(p_user bigint, p_event bigint, p_tier int, p_count int, p_session int,
                                        p_admission bigint)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    run record;
    got bigint[];
    got_x int[];
    busy bigint[] := '{}';  -- seats another buyer holds locked, as pos_y * 1000000 + pos_x
    chosen bigint[];
BEGIN
    IF p_count IS NULL OR p_count < 1 OR p_count > 100 THEN
        RAISE EXCEPTION USING ERRCODE = 'TB400', MESSAGE = 'Choose how many seats you want.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM tiers WHERE id = p_tier AND event_id = p_event AND seated) THEN
        RAISE EXCEPTION USING ERRCODE = 'TB400', MESSAGE = 'Choose one of this event''s seat tiers.';
    END IF;
    -- The buyer's lock before any seat's, as in every reserve function.
    PERFORM pg_advisory_xact_lock((p_event << 32) | p_user);
    IF p_tier = ANY(tb_waitlist_reserved_tiers(p_event)) THEN
        RAISE EXCEPTION USING ERRCODE = 'TB410', MESSAGE = 'short',
            DETAIL = json_build_object('tier', (SELECT name FROM tiers WHERE id = p_tier), 'wanted', p_count,
                                       'left', 0, 'waitlist', (SELECT waitlist_enabled FROM events WHERE id = p_event),
                                       'due', false)::text;
    END IF;
    -- Runs of p_count free seats side by side in one row (the same pos_y,
    -- consecutive pos_x: sections are laid out with gaps between them), best
    -- (lowest summed rank) first. Integers only, so no text sorts: about
    -- 2 ms on a 1,008-seat hall. A seat another buyer has just locked still
    -- reads as available here; the SKIP LOCKED below finds out, and later
    -- runs through that seat are not tried again.
    FOR run IN
        WITH free AS (
            SELECT u.pos_y, u.pos_x, coalesce(u.best_rank, 1000000) AS rank,
                   u.pos_x - row_number() OVER (PARTITION BY u.pos_y ORDER BY u.pos_x) AS gap
            FROM units u
            WHERE u.tier_id = p_tier AND u.status = 'available' AND u.seat_number IS NOT NULL
              AND u.pos_x IS NOT NULL AND u.pos_y IS NOT NULL
        ), windows AS (
            SELECT pos_y, pos_x, sum(rank) OVER w AS score, count(*) OVER w AS n
            FROM free
            WINDOW w AS (PARTITION BY pos_y, gap ORDER BY pos_x ROWS BETWEEN CURRENT ROW AND p_count - 1 FOLLOWING)
        )
        SELECT pos_y, pos_x FROM windows WHERE n = p_count ORDER BY score, pos_y, pos_x
    LOOP
        CONTINUE WHEN busy && array(SELECT run.pos_y * 1000000::bigint + x
                                    FROM generate_series(run.pos_x, run.pos_x + p_count - 1) x);
        BEGIN
            SELECT array_agg(id ORDER BY id), array_agg(pos_x) INTO got, got_x FROM (
                SELECT id, pos_x FROM units
                WHERE tier_id = p_tier AND pos_y = run.pos_y AND pos_x BETWEEN run.pos_x AND run.pos_x + p_count - 1
                  AND status = 'available' AND seat_number IS NOT NULL
                ORDER BY id FOR UPDATE SKIP LOCKED
            ) locked;
            IF cardinality(got) = p_count THEN
                chosen := got;
                EXIT;
            END IF;
            busy := busy || array(SELECT run.pos_y * 1000000::bigint + x
                                  FROM generate_series(run.pos_x, run.pos_x + p_count - 1) x
                                  WHERE x <> ALL(coalesce(got_x, '{}')));
            -- Give back the part of the run this attempt locked.
            RAISE EXCEPTION USING ERRCODE = 'TB000';
        EXCEPTION WHEN SQLSTATE 'TB000' THEN
            NULL;
        END;
    END LOOP;
    IF chosen IS NULL THEN
        -- No run free: the best seats one by one, not together.
        SELECT array_agg(id ORDER BY id) INTO chosen FROM (
            SELECT id FROM units
            WHERE tier_id = p_tier AND status = 'available' AND seat_number IS NOT NULL
            ORDER BY coalesce(best_rank, 1000000), id LIMIT p_count FOR UPDATE SKIP LOCKED
        ) best;
        IF coalesce(cardinality(chosen), 0) < p_count THEN
            RAISE EXCEPTION USING ERRCODE = 'TB410', MESSAGE = 'short',
                DETAIL = json_build_object('tier', (SELECT name FROM tiers WHERE id = p_tier), 'wanted', p_count,
                                           'left', coalesce(cardinality(chosen), 0),
                                           'waitlist', (SELECT waitlist_enabled FROM events WHERE id = p_event),
                                           'due', EXISTS (SELECT 1 FROM units u JOIN holds h ON h.id = u.hold_id
                                                          WHERE u.tier_id = p_tier AND h.status = 'active'
                                                            AND h.expires_at <= now()))::text;
        END IF;
    END IF;
    RETURN tb_hold_seats(p_user, p_event, chosen, p_session, p_admission);
END
$$;
