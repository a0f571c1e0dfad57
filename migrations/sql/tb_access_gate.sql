CREATE OR REPLACE FUNCTION tb_access_gate(p_event bigint, p_tiers int[], p_access text[]) RETURNS int
LANGUAGE plpgsql STABLE AS $$
-- The hidden tiers among p_tiers must each be unlocked by one of the buyer's
-- access codes, live now. Returns the code that unlocked them (NULL when
-- nothing asked for is hidden); refuses with TB402 otherwise.
DECLARE
    locked int[];
    unlocked_by int;
BEGIN
    SELECT array_agg(id) INTO locked FROM tiers WHERE event_id = p_event AND hidden AND id = ANY(p_tiers);
    IF locked IS NULL THEN
        RETURN NULL;
    END IF;
    IF EXISTS (
        SELECT 1 FROM unnest(locked) AS l(tier_id)
        WHERE NOT EXISTS (
            SELECT 1 FROM codes c
            WHERE c.event_id = p_event AND c.kind = 'access' AND c.active AND c.code = ANY(p_access)
              AND l.tier_id = ANY(c.tier_ids)
              AND (c.valid_from IS NULL OR c.valid_from <= now())
              AND (c.valid_until IS NULL OR now() < c.valid_until))) THEN
        RAISE EXCEPTION USING ERRCODE = 'TB402', MESSAGE = 'access code needed';
    END IF;
    SELECT min(c.id) INTO unlocked_by FROM codes c
    WHERE c.event_id = p_event AND c.kind = 'access' AND c.active AND c.code = ANY(p_access)
      AND c.tier_ids && locked;
    RETURN unlocked_by;
END
$$;
