-- Best available: chooses the seats, then holds them through tb_hold_seats so
-- that every rule of a seat reserve is that function's and is not repeated.
-- p_count seats in all, p_wheelchair of them wheelchair spaces, each with the
-- companion seat tied to it (so 2 * p_wheelchair <= p_count); p_section, if
-- given, keeps to one section. Seats rank by units.best_rank (tb_rank_seats:
-- the distance to the event's focal point, across the whole venue).
CREATE OR REPLACE FUNCTION tb_hold_best(p_user bigint, p_event bigint, p_tier int, p_count int, p_session int,
                                        p_admission bigint, p_wheelchair int DEFAULT 0, p_section text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    run record;
    pair record;
    got bigint[];
    got_x int[];
    busy bigint[] := '{}';  -- seats another buyer holds locked, as pos_y * 1000000 + pos_x
    chosen bigint[] := '{}';
    pairs int := coalesce(p_wheelchair, 0);
    wanted int := p_count - 2 * coalesce(p_wheelchair, 0);
    avoid_orphans boolean;
    pool int;
    orphan boolean;
BEGIN
    IF p_count IS NULL OR p_count < 1 OR p_count > 100 THEN
        RAISE EXCEPTION USING ERRCODE = 'TB400', MESSAGE = 'Choose how many seats you want.';
    END IF;
    IF pairs < 0 OR wanted < 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'TB400',
            MESSAGE = 'Each wheelchair space comes with a companion seat: ask for two seats per wheelchair space.';
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
    SELECT e.avoid_orphans INTO avoid_orphans FROM events e WHERE e.id = p_event;

    -- Wheelchair spaces, best first, each locked together with its companion
    -- seat in one try: both or neither (a try that gets one is rolled back,
    -- which drops its lock), so no wheelchair space is held without its
    -- companion, and a pair another buyer is taking is skipped, not waited for.
    IF pairs > 0 THEN
        FOR pair IN
            SELECT w.id AS space, c.id AS companion
            FROM units w JOIN units c ON c.companion_for = w.id AND c.event_id = p_event
            WHERE w.tier_id = p_tier AND w.wheelchair AND w.status = 'available' AND c.status = 'available'
              AND (p_section IS NULL OR w.section = p_section)
            ORDER BY w.best_rank, w.id
        LOOP
            BEGIN
                SELECT array_agg(id ORDER BY id) INTO got FROM (
                    SELECT id FROM units WHERE id IN (pair.space, pair.companion) AND status = 'available'
                    ORDER BY id FOR UPDATE SKIP LOCKED
                ) locked;
                IF cardinality(got) = 2 THEN
                    chosen := chosen || got;
                    EXIT WHEN cardinality(chosen) = 2 * pairs;
                ELSE
                    RAISE EXCEPTION USING ERRCODE = 'TB000';
                END IF;
            EXCEPTION WHEN SQLSTATE 'TB000' THEN
                NULL;
            END;
        END LOOP;
        IF cardinality(chosen) < 2 * pairs THEN
            -- Only when short: a section the tier has no seats in is bad input, not "none left".
            IF p_section IS NOT NULL AND NOT EXISTS (SELECT 1 FROM units WHERE event_id = p_event
                                                     AND section = p_section AND tier_id = p_tier) THEN
                RAISE EXCEPTION USING ERRCODE = 'TB400', MESSAGE = 'This tier has no seats in that section.';
            END IF;
            RAISE EXCEPTION USING ERRCODE = 'TB410', MESSAGE = 'short',
                DETAIL = json_build_object('tier', (SELECT name FROM tiers WHERE id = p_tier)
                                                   || ' wheelchair spaces with a companion seat',
                                           'wanted', pairs, 'left', cardinality(chosen) / 2, 'waitlist', false,
                                           'due', false)::text;
        END IF;
    END IF;

    -- The other seats: runs of `wanted` free seats side by side in one row
    -- (the same pos_y, consecutive pos_x: sections are laid out with gaps
    -- between them), best (lowest summed rank) first. Wheelchair spaces and
    -- companion seats are kept for those who ask for them.
    --
    -- The runs are looked for among the `pool` best free seats (an index walk
    -- of ix_units_best_available), a pool eight times larger each pass, the
    -- last pass all of them: so the usual request reads a few hundred seats
    -- whatever the venue's size. A run that would leave one free seat alone
    -- between taken ones or at the end of a row is passed over while the
    -- event avoids orphan seats, until the last pass, which takes it if
    -- nothing else is left. Integers only, so no text sorts. A seat another
    -- buyer has just locked still reads as available here; the SKIP LOCKED
    -- below finds out, and later runs through that seat are not tried again.
    pool := greatest(64, 16 * wanted);
    WHILE wanted > 0 LOOP
        FOR run IN
            -- Two branches, one of which runs (its condition on p_section is a one-time filter), so that
            -- a plan made once walks the right index: ix_units_best_available, or for one section
            -- ix_units_best_in_section, not the whole venue's ranking filtered by section.
            WITH best AS (
                (SELECT u.pos_y, u.pos_x, coalesce(u.best_rank, 1000000) AS rank
                 FROM units u
                 WHERE p_section IS NULL AND u.tier_id = p_tier AND u.status = 'available'
                   AND u.seat_number IS NOT NULL AND u.pos_x IS NOT NULL AND u.pos_y IS NOT NULL
                   AND NOT u.wheelchair AND u.companion_for IS NULL
                 ORDER BY u.best_rank, u.id
                 LIMIT pool)
                UNION ALL
                (SELECT u.pos_y, u.pos_x, coalesce(u.best_rank, 1000000) AS rank
                 FROM units u
                 WHERE u.tier_id = p_tier AND u.section = p_section AND u.status = 'available'
                   AND u.seat_number IS NOT NULL AND u.pos_x IS NOT NULL AND u.pos_y IS NOT NULL
                   AND NOT u.wheelchair AND u.companion_for IS NULL
                 ORDER BY u.best_rank, u.id
                 LIMIT pool)
            ), free AS (
                SELECT pos_y, pos_x, rank, pos_x - row_number() OVER (PARTITION BY pos_y ORDER BY pos_x) AS gap
                FROM best
            ), windows AS (
                SELECT pos_y, pos_x, sum(rank) OVER w AS score, count(*) OVER w AS n
                FROM free
                WINDOW w AS (PARTITION BY pos_y, gap ORDER BY pos_x ROWS BETWEEN CURRENT ROW AND wanted - 1 FOLLOWING)
            )
            SELECT pos_y, pos_x FROM windows WHERE n = wanted ORDER BY score, pos_y, pos_x
        LOOP
            CONTINUE WHEN busy && array(SELECT run.pos_y * 1000000::bigint + x
                                        FROM generate_series(run.pos_x, run.pos_x + wanted - 1) x);
            IF avoid_orphans AND pool IS NOT NULL THEN
                -- A free seat just beside the run, with no free seat beyond it.
                SELECT bool_or(tb_free_seat(p_event, run.pos_y, side.x)
                               AND NOT tb_free_seat(p_event, run.pos_y, side.x + side.step)) INTO orphan
                FROM (VALUES (run.pos_x - 1, -1), (run.pos_x + wanted, 1)) side(x, step);
                CONTINUE WHEN orphan;
            END IF;
            BEGIN
                SELECT array_agg(id ORDER BY id), array_agg(pos_x) INTO got, got_x FROM (
                    -- event_id first: a probe of ix_units_position, not a walk of the tier.
                    SELECT id, pos_x FROM units
                    WHERE event_id = p_event AND pos_y = run.pos_y
                      AND pos_x BETWEEN run.pos_x AND run.pos_x + wanted - 1
                      AND tier_id = p_tier AND status = 'available' AND seat_number IS NOT NULL
                    ORDER BY id FOR UPDATE SKIP LOCKED
                ) locked;
                IF cardinality(got) = wanted THEN
                    chosen := chosen || got;
                    wanted := 0;
                    EXIT;
                END IF;
                busy := busy || array(SELECT run.pos_y * 1000000::bigint + x
                                      FROM generate_series(run.pos_x, run.pos_x + wanted - 1) x
                                      WHERE x <> ALL(coalesce(got_x, '{}')));
                -- Give back the part of the run this attempt locked.
                RAISE EXCEPTION USING ERRCODE = 'TB000';
            EXCEPTION WHEN SQLSTATE 'TB000' THEN
                NULL;
            END;
        END LOOP;
        EXIT WHEN pool IS NULL;
        pool := CASE WHEN pool < 100000 THEN pool * 8 END;
    END LOOP;
    IF wanted > 0 THEN
        -- No run free: the best seats one by one, not together.
        SELECT array_agg(id ORDER BY id) INTO got FROM (
            SELECT id FROM units
            WHERE tier_id = p_tier AND status = 'available' AND seat_number IS NOT NULL
              AND NOT wheelchair AND companion_for IS NULL AND (p_section IS NULL OR section = p_section)
            ORDER BY best_rank, id LIMIT wanted FOR UPDATE SKIP LOCKED
        ) best;
        IF coalesce(cardinality(got), 0) < wanted THEN
            IF p_section IS NOT NULL AND NOT EXISTS (SELECT 1 FROM units WHERE event_id = p_event
                                                     AND section = p_section AND tier_id = p_tier) THEN
                RAISE EXCEPTION USING ERRCODE = 'TB400', MESSAGE = 'This tier has no seats in that section.';
            END IF;
            RAISE EXCEPTION USING ERRCODE = 'TB410', MESSAGE = 'short',
                DETAIL = json_build_object('tier', (SELECT name FROM tiers WHERE id = p_tier), 'wanted', p_count,
                                           'left', coalesce(cardinality(got), 0) + cardinality(chosen),
                                           'waitlist', (SELECT waitlist_enabled FROM events WHERE id = p_event),
                                           'due', EXISTS (SELECT 1 FROM units u JOIN holds h ON h.id = u.hold_id
                                                          WHERE u.tier_id = p_tier AND h.status = 'active'
                                                            AND h.expires_at <= now()))::text;
        END IF;
        chosen := chosen || got;
    END IF;
    RETURN tb_hold_seats(p_user, p_event, chosen, p_session, p_admission);
END
$$;
