-- The per-buyer rules, after tb_begin_reservation gave back the basket:
-- the limit, the cool-down, and the new hold's deadline. "Recent" is within
-- the event's cool-down; "overlapping" is the same seats, or for general
-- admission a tier in common.
--   * released or let expire recently, overlapping: refused until the
--     cool-down has passed (counted from the release, or from the deadline);
--   * given up recently by changing the selection (a basket replaced,
--     including the one this reservation replaces), overlapping: the new
--     hold keeps the earliest deadline among them, so the clock on those
--     seats never starts again; if that deadline has passed, refused.
CREATE OR REPLACE FUNCTION tb_buyer_rules(ev events, p_user bigint, p_count int, p_seats bigint[], p_tiers int[])
RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
    have int;
    window_start timestamptz := now() - make_interval(secs => ev.rehold_cooldown_seconds);
    deadline timestamptz := now() + make_interval(secs => (ev.hold_minutes * 60)::float8);
    recent record;
BEGIN
    -- One statement: what the buyer has (the buyer's lock was taken by
    -- tb_begin_reservation, before the basket) and their recent holds of
    -- this event that overlap the request (ix_holds_user_id).
    SELECT tb_buyer_count(p_user, ev.id) AS have,
           max(CASE WHEN h.status = 'expired' THEN h.expires_at ELSE h.ended_at END)
               FILTER (WHERE h.let_go) AS let_go_at,
           bool_or(h.status = 'expired') FILTER (WHERE h.let_go) AS expired,
           min(h.expires_at) FILTER (WHERE h.given_up) AS kept_deadline,
           max(h.ended_at) FILTER (WHERE h.given_up) AS replaced_at
    INTO recent
    FROM (
        SELECT h.status, h.expires_at, h.ended_at,
               h.end_reason IS DISTINCT FROM 'replaced'
                   AND CASE WHEN h.status = 'expired' THEN h.expires_at ELSE h.ended_at END >= window_start AS let_go,
               h.end_reason = 'replaced' AND h.ended_at >= window_start AS given_up
        FROM holds h
        WHERE h.user_id = p_user AND h.event_id = ev.id AND h.status IN ('released', 'expired')
          AND h.ended_at >= window_start
          AND CASE WHEN p_seats IS NOT NULL THEN h.unit_ids && p_seats
                   ELSE EXISTS (SELECT 1 FROM units u WHERE u.id = ANY(h.unit_ids) AND u.tier_id = ANY(p_tiers)) END
    ) h;
    have := recent.have;
    IF have + p_count > ev.per_buyer_limit THEN
        RAISE EXCEPTION USING ERRCODE = 'TB413', MESSAGE = 'buyer limit',
            DETAIL = json_build_object('limit', ev.per_buyer_limit, 'have', have)::text;
    END IF;
    IF recent.let_go_at IS NOT NULL AND ev.rehold_cooldown_seconds > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'TB429', MESSAGE = 'cool-down',
            DETAIL = json_build_object(
                'wait', greatest(1, ceil(extract(epoch FROM recent.let_go_at
                                                 + make_interval(secs => ev.rehold_cooldown_seconds) - now()))),
                'expired', recent.expired, 'seated', p_seats IS NOT NULL)::text;
    END IF;
    IF recent.kept_deadline IS NOT NULL THEN
        IF recent.kept_deadline <= now() THEN
            RAISE EXCEPTION USING ERRCODE = 'TB429', MESSAGE = 'cool-down',
                DETAIL = json_build_object(
                    'wait', greatest(1, ceil(extract(epoch FROM recent.replaced_at
                                                     + make_interval(secs => ev.rehold_cooldown_seconds) - now()))),
                    'expired', true, 'seated', p_seats IS NOT NULL)::text;
        END IF;
        deadline := least(deadline, recent.kept_deadline);
    END IF;
    RETURN deadline;
END
$$;
