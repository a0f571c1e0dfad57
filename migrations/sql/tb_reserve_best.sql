-- The reserve's entry point: the access gate first, so the database itself
-- refuses a hidden tier, then the limit per client address (tb_address_rules),
-- then tb_hold_best; the hold records the access code that let it through,
-- and the address (holds.client_addr, from the setting the rule made).
CREATE OR REPLACE FUNCTION tb_reserve_best(p_user bigint, p_event bigint, p_tier int, p_count int, p_session int,
                                           p_admission bigint, p_access text[], p_addr inet,
                                           p_wheelchair int DEFAULT 0, p_section text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    unlocked_by int := tb_access_gate(p_event, ARRAY[p_tier], p_access);
    hold bigint;
BEGIN
    PERFORM tb_address_rules(p_user, p_event, p_addr, p_count);
    hold := tb_hold_best(p_user, p_event, p_tier, p_count, p_session, p_admission, p_wheelchair, p_section);
    PERFORM set_config('tb.client_addr', '', true);
    IF unlocked_by IS NOT NULL THEN
        UPDATE holds SET access_code_id = unlocked_by WHERE id = hold;
    END IF;
    RETURN hold;
END
$$;
