-- A seat's rank for "best available" from the focal point: its distance to
-- (p_fx, p_fy) in seat-map positions, in hundredths of a seat. One formula
-- for the layout generator's INSERT and for tb_rank_seats, so a seat ranked
-- as it is written and one ranked later agree to the unit. IMMUTABLE and a
-- single expression: the planner inlines it into either statement.
CREATE OR REPLACE FUNCTION tb_seat_distance(p_x integer, p_y integer, p_fx numeric, p_fy numeric)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT round(100 * sqrt((p_x - p_fx) ^ 2 + (p_y - p_fy) ^ 2))::int
$$;
