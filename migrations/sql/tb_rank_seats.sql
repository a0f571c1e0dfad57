-- Best first for "best available", across the whole venue: each seat's
-- distance to the event's focal point (tb_focal_point), by tb_seat_distance.
-- Side blocks of any width then rank by where their seats are, not by where
-- they sit within their block. Called when the organiser moves the focal
-- point and when a layout grows; migration 0018 ranked older layouts so.
CREATE OR REPLACE FUNCTION tb_rank_seats(p_event bigint)
RETURNS void
LANGUAGE sql AS $$
    -- MATERIALIZED: the focal point is one aggregate over the event's seats,
    -- to be computed once. Inlined, a planner that thinks the event has few
    -- seats (statistics from before its layout was written, in the same
    -- transaction) may run it again for every seat.
    WITH focus AS MATERIALIZED (SELECT fx, fy FROM tb_focal_point(p_event, NULL, NULL, NULL))
    UPDATE units u SET best_rank = tb_seat_distance(u.pos_x, u.pos_y, f.fx, f.fy)
    FROM focus f
    WHERE u.event_id = p_event AND u.seat_number IS NOT NULL AND u.pos_x IS NOT NULL AND u.pos_y IS NOT NULL
      AND u.best_rank IS DISTINCT FROM tb_seat_distance(u.pos_x, u.pos_y, f.fx, f.fy)
$$;
