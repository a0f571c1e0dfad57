-- Fired by tb_webhook_order_confirmed (at the commit, once the order's tickets exist: migration 0024)
-- and tb_webhook_order_ended (migration 0009). Carries the order's answers and each ticket's attendee;
-- with no endpoint asking for the kind, the payload (a walk of the order's tickets) is not even built.
CREATE OR REPLACE FUNCTION tb_webhook_order() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text := CASE NEW.status WHEN 'confirmed' THEN 'order.confirmed' WHEN 'cancelled'
                 THEN 'order.cancelled' ELSE 'order.refunded' END;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.active AND kind = ANY(w.event_types)) THEN
        RETURN NULL;
    END IF;
    PERFORM tb_webhook(kind, NEW.event_id,
                       jsonb_build_object('order_id', NEW.id, 'event_id', NEW.event_id, 'user_id', NEW.user_id,
                                          'status', NEW.status, 'total_minor', NEW.total_minor,
                                          'currency', NEW.currency, 'reason', NEW.cancel_reason,
                                          'answers', NEW.answers,
                                          'tickets', coalesce((
                                              SELECT jsonb_agg(jsonb_build_object(
                                                         'ticket_id', k.id, 'unit_id', k.unit_id,
                                                         'attendee_name', k.attendee_name, 'answers', k.answers)
                                                     ORDER BY k.id)
                                              FROM tickets k WHERE k.order_id = NEW.id), '[]'::jsonb)));
    RETURN NULL;
END $$;
