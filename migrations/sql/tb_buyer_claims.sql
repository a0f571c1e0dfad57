CREATE OR REPLACE FUNCTION tb_buyer_claims(p_user bigint, p_event bigint) RETURNS int
LANGUAGE plpgsql AS $$
BEGIN
    -- The buyer's lock for this event, held to the end of the transaction
    -- (taken again by the same transaction, it does not wait). The one-key
    -- space of advisory locks is apart from the two-key one the waiting
    -- list uses; ids are 32-bit (integer columns).
    PERFORM pg_advisory_xact_lock((p_event << 32) | p_user);
    -- A statement of its own after the lock, so its snapshot sees what
    -- the buyer's previous reservation committed.
    RETURN tb_buyer_count(p_user, p_event);
END
$$;
