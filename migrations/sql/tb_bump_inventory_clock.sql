CREATE OR REPLACE FUNCTION tb_bump_inventory_clock(p_event bigint) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO inventory_clock (event_id, shard, version) VALUES (p_event, floor(random() * 8)::int, 1)
    ON CONFLICT (event_id, shard) DO UPDATE SET version = inventory_clock.version + 1
$$;
