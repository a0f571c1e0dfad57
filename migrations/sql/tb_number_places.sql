-- The places of an event's waiting room still without a number, numbered
-- on from p_issued in `line_key` order (the draw, then arrival), at most
-- p_batch of them; returns how many. The caller holds the room row's lock,
-- taken before this statement starts, so it sees every number given before
-- it: the admission pass, and a join after the start (tb_number_arrival).
CREATE OR REPLACE FUNCTION tb_number_places(p_event bigint, p_issued bigint, p_batch integer) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    numbered integer;
BEGIN
    WITH todo AS (
        SELECT id, row_number() OVER (ORDER BY line_key, id) AS k
        FROM (SELECT id, line_key FROM waiting_room_entries
              WHERE event_id = p_event AND number IS NULL AND status = 'waiting'
              ORDER BY line_key, id LIMIT p_batch) s
    ), done AS (
        UPDATE waiting_room_entries w SET number = p_issued + todo.k FROM todo WHERE w.id = todo.id RETURNING 1
    )
    SELECT count(*) INTO numbered FROM done;
    RETURN numbered;
END
$$;
