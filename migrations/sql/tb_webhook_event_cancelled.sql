-- Fired by tb_webhook_event_cancelled (migration 0009).
CREATE OR REPLACE FUNCTION tb_webhook_event_cancelled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tb_webhook('event.cancelled', NEW.id,
                       jsonb_build_object('event_id', NEW.id, 'title', NEW.title, 'starts_at', NEW.starts_at));
    RETURN NULL;
END $$;
