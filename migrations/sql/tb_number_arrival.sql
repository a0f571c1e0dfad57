-- A place that joined after the sale start, numbered by its own join: the
-- page learns its number from the join's answer and never asks for it.
-- Only once the admission pass has opened the room (`credited_at`), so the
-- draw's places are numbered ahead of every arrival. Numbers whatever else
-- waits for one (in line order, at most 1,000, so a join never carries a
-- big backlog) and returns p_entry's number, or NULL.
-- The room row's lock is waited for 20 ms at most: other joins hold it for
-- a statement and its commit each, so a join waits behind a few of them,
-- never behind a long pass or for a lock it would time out on. A join that
-- gives up leaves its place to the next pass, and its page asks as before.
CREATE OR REPLACE FUNCTION tb_number_arrival(p_event bigint, p_entry bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    issued_before bigint;
    numbered integer;
    patience text := current_setting('lock_timeout');
BEGIN
    BEGIN
        PERFORM set_config('lock_timeout', '20ms', true);
        SELECT issued INTO issued_before FROM waiting_rooms
        WHERE event_id = p_event AND enabled AND NOT gate_open AND credited_at IS NOT NULL
          AND now() >= sale_starts_at
        FOR UPDATE;
    EXCEPTION WHEN lock_not_available THEN
        RETURN NULL;
    END;
    PERFORM set_config('lock_timeout', patience, true);
    IF issued_before IS NULL THEN
        RETURN NULL;
    END IF;
    numbered := tb_number_places(p_event, issued_before, 1000);
    IF numbered > 0 THEN
        -- What someone waiting sees changed (their number came): the status's ETag moves, as the pass's does.
        UPDATE waiting_rooms SET issued = issued + numbered, version = version + 1 WHERE event_id = p_event;
    END IF;
    RETURN (SELECT number FROM waiting_room_entries WHERE id = p_entry AND event_id = p_event);
END
$$;
