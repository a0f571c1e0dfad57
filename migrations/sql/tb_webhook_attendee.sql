-- Fired by tb_webhook_attendee (migration 0024): a ticket's attendee name or answers changed after buying.
CREATE OR REPLACE FUNCTION tb_webhook_attendee() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tb_webhook('ticket.attendee_changed', NEW.event_id,
                       jsonb_build_object('ticket_id', NEW.id, 'order_id', NEW.order_id, 'event_id', NEW.event_id,
                                          'attendee_name', NEW.attendee_name, 'answers', NEW.answers));
    RETURN NULL;
END $$;
