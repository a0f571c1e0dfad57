-- Fired by the statement-level tb_layout_* triggers on units and tiers (migration 0005).
CREATE OR REPLACE FUNCTION tb_bump_layout_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Statement-level: a generated section of 1,000 seats bumps once.
    UPDATE events SET layout_version = layout_version + 1
    WHERE id IN (SELECT DISTINCT event_id FROM changed);
    RETURN NULL;
END
$$;
