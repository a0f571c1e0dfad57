-- The per-event limit per client address (events.per_address_limit; NULL:
-- none), against one person holding a small event with many accounts. The
-- reserve's entry points call it before anything is locked but the access
-- gate's reads; p_addr is the client's address as the app trusts it (NULL:
-- no rule, e.g. loopback in tests). What an address has: the units of live
-- holds made from it (less the buyer's own basket, which this reservation
-- gives back) and the valid tickets of orders paid from such holds.
--
-- Under a transaction-scoped advisory lock per (event, address), taken
-- first of all the reserve's locks (then the buyer's, the basket, units):
-- so parallel reserves from one address count one after another, and the
-- limit holds under concurrency. The in-session road (inventory._prepare)
-- calls this with p_count 0 before the buyer's lock, for the same order.
--
-- The address reaches the new hold's row through holds.client_addr's
-- default, the transaction-local setting tb.client_addr set here (the
-- entry point clears it after its hold is made), so the functions that
-- insert holds need no parameter for it.
CREATE OR REPLACE FUNCTION tb_address_rules(p_user bigint, p_event bigint, p_addr inet, p_count int)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    lim int;
    have int;
BEGIN
    IF p_addr IS NULL THEN
        RETURN;
    END IF;
    -- Only an event on sale: the others are refused later by tb_begin_reservation,
    -- a draft as an unknown id, which this must not tell apart either.
    SELECT per_address_limit INTO lim FROM events WHERE id = p_event AND status = 'on_sale';
    IF lim IS NULL THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('tb address ' || p_event || ' ' || host(p_addr), 0));
    -- A statement of its own after the lock, so its snapshot sees what the
    -- address's previous reservation committed (ix_holds_event_client_addr).
    SELECT (SELECT coalesce(sum(cardinality(h.unit_ids)), 0) FROM holds h
            WHERE h.event_id = p_event AND h.client_addr = p_addr AND h.status = 'active'
              AND h.expires_at > now() AND NOT (h.user_id = p_user AND h.kind = 'purchase'))
         + (SELECT count(*) FROM holds h JOIN orders o ON o.hold_id = h.id JOIN tickets k ON k.order_id = o.id
            WHERE h.event_id = p_event AND h.client_addr = p_addr AND k.status = 'valid')
    INTO have;
    IF have + p_count > lim THEN
        RAISE EXCEPTION USING ERRCODE = 'TB413', MESSAGE = 'address limit',
            DETAIL = json_build_object('limit', lim, 'have', have)::text;
    END IF;
    PERFORM set_config('tb.client_addr', host(p_addr), true);
END
$$;
