-- Best first for "best available", across the whole venue: each seat's
-- distance to the event's focal point (events.focal_x, focal_y, in seat-map
-- positions; by default the centre front: the middle of the widest extent
-- of the seats, one row in front of the first), in hundredths of a seat.
-- Side blocks of any width then rank by where their seats are, not by where
-- they sit within their block. Called by the layout generator and when the
-- organiser moves the focal point; migration 0018 ranks older layouts so.
CREATE OR REPLACE FUNCTION tb_rank_seats(p_event bigint)
RETURNS void
LANGUAGE sql AS $$
    -- MATERIALIZED: the extent is one aggregate over the event's seats, to be
    -- computed once. Inlined, a planner that thinks the event has few seats
    -- (statistics from before its layout was written, in the same transaction)
    -- may put it inside a nested loop and run it again for every seat.
    WITH extent AS MATERIALIZED (
        SELECT (min(pos_x) + max(pos_x)) / 2.0 AS centre_x, min(pos_y) - 1.0 AS front_y
        FROM units WHERE event_id = p_event AND seat_number IS NOT NULL AND pos_x IS NOT NULL
    ), focus AS MATERIALIZED (
        SELECT coalesce(e.focal_x, x.centre_x) AS fx, coalesce(e.focal_y, x.front_y) AS fy
        FROM events e, extent x WHERE e.id = p_event
    )
    UPDATE units u SET best_rank = round(100 * sqrt((u.pos_x - f.fx) ^ 2 + (u.pos_y - f.fy) ^ 2))::int
    FROM focus f
    WHERE u.event_id = p_event AND u.seat_number IS NOT NULL AND u.pos_x IS NOT NULL AND u.pos_y IS NOT NULL
      AND u.best_rank IS DISTINCT FROM round(100 * sqrt((u.pos_x - f.fx) ^ 2 + (u.pos_y - f.fy) ^ 2))::int
$$;
