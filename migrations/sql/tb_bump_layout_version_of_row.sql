-- Fired by tb_layout_units_update (migration 0005), per row: a trigger limited
-- to some columns cannot have the transition table the statement-level one reads.
CREATE OR REPLACE FUNCTION tb_bump_layout_version_of_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE events SET layout_version = layout_version + 1 WHERE id = NEW.event_id;
    RETURN NULL;
END
$$;
