-- Whether the seat at this position is free for anyone asking for ordinary
-- seats (wheelchair spaces and companion seats are sold apart): what the
-- orphan-seat rule of tb_hold_best reads beside a run. An index probe on
-- ix_units_position.
CREATE OR REPLACE FUNCTION tb_free_seat(p_event bigint, p_y int, p_x int)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM units
                   WHERE event_id = p_event AND pos_y = p_y AND pos_x = p_x AND seat_number IS NOT NULL
                     AND status = 'available' AND NOT wheelchair AND companion_for IS NULL)
$$;
