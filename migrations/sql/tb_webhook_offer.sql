-- Fired by tb_webhook_offer (migration 0009).
CREATE OR REPLACE FUNCTION tb_webhook_offer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tb_webhook('waitlist.offered', NEW.event_id,
                       jsonb_build_object('hold_id', NEW.id, 'event_id', NEW.event_id, 'user_id', NEW.user_id,
                                          'waitlist_entry_id', NEW.waitlist_entry_id,
                                          'quantity', cardinality(NEW.unit_ids), 'expires_at', NEW.expires_at));
    RETURN NULL;
END $$;
