-- Where "best available" measures from: the organiser's point
-- (events.focal_x, focal_y) or, by default, the centre front of the seats:
-- the middle of their widest extent, one row in front of the first. The
-- p_add_* arguments widen that extent by seats not yet written (the layout
-- generator ranks a section as it inserts it, so the section counts before
-- it exists); NULL adds nothing. Used by tb_rank_seats and the generator.
CREATE OR REPLACE FUNCTION tb_focal_point(p_event bigint, p_add_lo_x integer, p_add_hi_x integer,
                                          p_add_front_y integer)
RETURNS TABLE (fx numeric, fy numeric)
LANGUAGE sql STABLE AS $$
    WITH extent AS MATERIALIZED (
        SELECT least(min(pos_x), p_add_lo_x) AS lo_x, greatest(max(pos_x), p_add_hi_x) AS hi_x,
               least(min(pos_y), p_add_front_y) AS front_y
        FROM units WHERE event_id = p_event AND seat_number IS NOT NULL AND pos_x IS NOT NULL
    )
    SELECT coalesce(e.focal_x, (x.lo_x + x.hi_x) / 2.0), coalesce(e.focal_y, x.front_y - 1.0)
    FROM events e, extent x WHERE e.id = p_event
$$;
