CREATE OR REPLACE FUNCTION tb_line_reserved_tiers(p_event bigint) RETURNS int[]
LANGUAGE sql STABLE AS $$
    -- Tiers the public cannot buy from because people wait for them; an
    -- entry for "any tier" (tier_id NULL) reserves every tier of the event
    -- but the hidden ones (sold only with an access code).
    SELECT coalesce(array_agg(DISTINCT coalesce(w.tier_id, t.id)), '{}')
    FROM waitlist_entries w
    JOIN tiers t ON t.event_id = w.event_id AND (w.tier_id IS NULL OR t.id = w.tier_id)
    WHERE w.event_id = p_event AND w.status = 'waiting'
      AND (w.tier_id IS NOT NULL OR NOT t.hidden)
$$;
