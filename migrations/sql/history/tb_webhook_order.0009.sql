-- Fired by tb_webhook_order_confirmed and tb_webhook_order_ended (migration 0009).
CREATE OR REPLACE FUNCTION tb_webhook_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tb_webhook(CASE NEW.status WHEN 'confirmed' THEN 'order.confirmed' WHEN 'cancelled'
                       THEN 'order.cancelled' ELSE 'order.refunded' END, NEW.event_id,
                       jsonb_build_object('order_id', NEW.id, 'event_id', NEW.event_id, 'user_id', NEW.user_id,
                                          'status', NEW.status, 'total_minor', NEW.total_minor,
                                          'currency', NEW.currency, 'reason', NEW.cancel_reason));
    RETURN NULL;
END $$;
