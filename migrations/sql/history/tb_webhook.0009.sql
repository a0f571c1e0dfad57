-- One row per endpoint that wants this kind of event (for this event, or for all).
CREATE OR REPLACE FUNCTION tb_webhook(kind text, ev integer, data jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, body)
    SELECT w.id, ev, kind, jsonb_build_object(
               'type', kind, 'created_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               'data', data)::text
    FROM webhook_endpoints w
    WHERE w.active AND kind = ANY(w.event_types) AND (w.event_id IS NULL OR w.event_id = ev)
$$;
