-- What a buyer has for an event: valid tickets, units of live holds, and
-- places asked for on the waiting list (an offer, once made, is a hold).
-- Orders a box-office clerk sold at the door (sold_by, 0029) are not the
-- clerk's own: they never count towards the clerk's limit.
-- (plpgsql, not sql: its plan is kept per connection, where a non-inlined
-- SQL function is planned again on every call of the reserve.)
CREATE OR REPLACE FUNCTION tb_buyer_count(p_user bigint, p_event bigint) RETURNS int
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT count(*) FROM tickets k JOIN orders o ON o.id = k.order_id
            WHERE o.user_id = p_user AND o.event_id = p_event AND k.status = 'valid' AND o.sold_by IS NULL)
         + (SELECT coalesce(sum(cardinality(unit_ids)), 0) FROM holds
            WHERE user_id = p_user AND event_id = p_event AND status = 'active' AND expires_at > now())
         + (SELECT coalesce(sum(quantity), 0) FROM waitlist_entries
            WHERE user_id = p_user AND event_id = p_event AND status = 'waiting');
END
$$;
