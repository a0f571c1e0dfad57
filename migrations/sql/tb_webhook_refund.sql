-- Fired by tb_webhook_refund_settled and tb_webhook_refund_kept (migration 0021): a refund, whole or in
-- part, made (refund.succeeded) or refused for good (refund.failed).
CREATE OR REPLACE FUNCTION tb_webhook_refund() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tb_webhook('refund.' || NEW.state, NEW.event_id,
                       jsonb_build_object('refund_id', NEW.id, 'order_id', NEW.order_id, 'event_id', NEW.event_id,
                                          'amount_minor', NEW.amount_minor, 'currency', NEW.currency,
                                          'state', NEW.state, 'reason', NEW.reason,
                                          'ticket_ids', (SELECT coalesce(jsonb_agg(rt.ticket_id ORDER BY rt.ticket_id),
                                                                         '[]'::jsonb)
                                                         FROM refund_tickets rt WHERE rt.refund_id = NEW.id)));
    RETURN NULL;
END $$;
