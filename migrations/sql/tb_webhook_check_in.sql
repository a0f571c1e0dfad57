-- Fired by tb_webhook_check_in (migration 0009).
CREATE OR REPLACE FUNCTION tb_webhook_check_in() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tb_webhook('ticket.checked_in', NEW.event_id,
                       jsonb_build_object('ticket_id', NEW.id, 'order_id', NEW.order_id, 'event_id', NEW.event_id,
                                          'checked_in_at', NEW.checked_in_at));
    RETURN NULL;
END $$;
