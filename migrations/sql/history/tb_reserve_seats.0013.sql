-- The reserve's entry point: the access gate first, so the database itself
-- refuses a hidden tier, then tb_hold_seats; the hold records the access code
-- that let it through.
CREATE OR REPLACE FUNCTION tb_reserve_seats(p_user bigint, p_event bigint, p_seats bigint[], p_session int,
                                            p_admission bigint, p_access text[])
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    unlocked_by int := tb_access_gate(p_event, ARRAY(SELECT DISTINCT tier_id FROM units WHERE id = ANY(p_seats) AND event_id = p_event), p_access);
    hold bigint := tb_hold_seats(p_user, p_event, p_seats, p_session, p_admission);
BEGIN
    IF unlocked_by IS NOT NULL THEN
        UPDATE holds SET access_code_id = unlocked_by WHERE id = hold;
    END IF;
    RETURN hold;
END
$$;
