"""The invariant checker: the promises of docs/design.md, verified from the rows.

Each check is one SQL query that returns the offending rows, so the checker
reads an event of any size in a handful of statements. It returns a list of
human-readable violations; an empty list means the event is consistent.
"""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

# (description, query returning offending rows) — every query takes :e.
CHECKS: list[tuple[str, str]] = [
    (
        "tier capacity differs from available + held + sold + blocked",
        "SELECT t.id, t.name, t.capacity, count(u.id) AS units FROM tiers t"
        " LEFT JOIN units u ON u.tier_id = t.id WHERE t.event_id = :e"
        " GROUP BY t.id HAVING count(u.id) <> t.capacity",
    ),
    (
        "held unit whose hold is not active, or not for this unit",
        "SELECT u.id, u.hold_id, h.status FROM units u JOIN holds h ON h.id = u.hold_id"
        " WHERE u.event_id = :e AND (h.status <> 'active' OR NOT (u.id = ANY(h.unit_ids)) OR h.event_id <> u.event_id)",
    ),
    (
        "active hold that does not own all of its units",
        "SELECT h.id, uid FROM holds h CROSS JOIN LATERAL unnest(h.unit_ids) AS uid"
        " LEFT JOIN units u ON u.id = uid"
        " WHERE h.event_id = :e AND h.status = 'active' AND (u.hold_id IS DISTINCT FROM h.id OR u.status <> 'held')",
    ),
    (
        "unit claimed by two active holds",
        "SELECT uid, array_agg(h.id) FROM holds h CROSS JOIN LATERAL unnest(h.unit_ids) AS uid"
        " WHERE h.event_id = :e AND h.status = 'active' GROUP BY uid HAVING count(*) > 1",
    ),
    (
        "sold unit without exactly one valid ticket",
        "SELECT u.id, count(t.id) FROM units u"
        " LEFT JOIN tickets t ON t.unit_id = u.id AND t.status = 'valid'"
        " WHERE u.event_id = :e AND u.status = 'sold' GROUP BY u.id HAVING count(t.id) <> 1",
    ),
    (
        "valid ticket on a unit that is not sold",
        "SELECT t.id, t.unit_id, u.status FROM tickets t JOIN units u ON u.id = t.unit_id"
        " WHERE t.event_id = :e AND t.status = 'valid' AND u.status <> 'sold'",
    ),
    (
        "valid ticket in an order that is not confirmed",
        "SELECT t.id, o.id, o.status FROM tickets t JOIN orders o ON o.id = t.order_id"
        " WHERE t.event_id = :e AND t.status = 'valid' AND o.status <> 'confirmed'",
    ),
    (
        "order without exactly one approved payment",
        "SELECT o.id, p.status FROM orders o LEFT JOIN payment_attempts p ON p.id = o.payment_attempt_id"
        " WHERE o.event_id = :e AND (p.id IS NULL OR p.status <> 'approved' OR p.hold_id <> o.hold_id)",
    ),
    (
        "approved payment without an order (a paid order was lost)",
        "SELECT p.id, p.hold_id FROM payment_attempts p LEFT JOIN orders o ON o.payment_attempt_id = p.id"
        " WHERE p.event_id = :e AND p.status = 'approved' AND o.id IS NULL",
    ),
    (
        # Money reserved or taken with no order to show for it. A pending
        # attempt is a checkout still deciding (its hold is kept for it).
        "charge authorised or captured at the gateway without an order",
        "SELECT p.id, g.reference, g.status FROM payment_attempts p"
        " JOIN gateway_charges g ON g.idempotency_key = p.idempotency_key"
        " WHERE p.event_id = :e AND (g.status = 'authorised' OR (g.status = 'captured' AND g.refunded_minor = 0))"
        " AND p.status NOT IN ('approved', 'pending')",
    ),
    (
        # The reverse: an order whose money the gateway never took or released.
        "confirmed order whose charge is not authorised or captured at the gateway",
        "SELECT o.id, g.status FROM orders o JOIN payment_attempts p ON p.id = o.payment_attempt_id"
        " LEFT JOIN gateway_charges g ON g.idempotency_key = p.idempotency_key"
        " WHERE o.event_id = :e AND o.status = 'confirmed' AND g.status IS DISTINCT FROM 'authorised'"
        " AND g.status IS DISTINCT FROM 'captured'"
        # Paid in person at the box office: no gateway holds its money (the next check).
        " AND p.in_person IS NULL"
        # Paid through Stripe: its side is read from Stripe (check_stripe_money).
        " AND NOT EXISTS (SELECT 1 FROM stripe_intents s WHERE s.idempotency_key = p.idempotency_key)",
    ),
    (
        # The box office (migration 0029): a door sale is paid in person and nothing else is; no gateway charge
        # stands behind an in-person payment, and a door sale is never refunded through one.
        "order whose channel and payment disagree (a door sale not paid in person, or paid in person with a"
        " gateway charge or a refund)",
        "SELECT o.id, o.channel, p.in_person FROM orders o JOIN payment_attempts p ON p.id = o.payment_attempt_id"
        " WHERE o.event_id = :e AND ((o.channel = 'box_office') <> (p.in_person IS NOT NULL)"
        " OR (p.in_person IS NOT NULL AND (EXISTS (SELECT 1 FROM gateway_charges g"
        "  WHERE g.idempotency_key = p.idempotency_key) OR o.refunded_minor <> 0)))",
    ),
    (
        # Invariant 5: one charge per hold.
        "hold with more than one live charge (authorised, or captured and not refunded)",
        "SELECT p.hold_id, array_agg(g.reference) FROM payment_attempts p"
        " JOIN gateway_charges g ON g.idempotency_key = p.idempotency_key"
        " WHERE p.event_id = :e AND (g.status = 'authorised' OR (g.status = 'captured' AND g.refunded_minor = 0))"
        " GROUP BY p.hold_id HAVING count(*) > 1",
    ),
    (
        # Sales stop at the sale end (by default the start), but a hold made
        # before it may be paid within its own window: so an order's hold
        # must predate the sale end, and its payment must have begun before
        # the hold's deadline (a slow bank may confirm it after either).
        "order sold after its event's sales ended (hold made at or after the sale end,"
        " or payment begun after the hold's deadline)",
        "SELECT o.id, h.created_at, coalesce(ev.sales_end_at, ev.starts_at) AS sales_end, p.created_at AS paid,"
        " h.expires_at FROM orders o JOIN holds h ON h.id = o.hold_id JOIN events ev ON ev.id = o.event_id"
        " JOIN payment_attempts p ON p.id = o.payment_attempt_id"
        " WHERE o.event_id = :e AND (h.created_at >= coalesce(ev.sales_end_at, ev.starts_at)"
        " OR p.created_at >= h.expires_at)",
    ),
    (
        # Tickets keep the price paid (void ones too), so they always add up to the order.
        "order whose total differs from the sum of its tickets' prices",
        "SELECT o.id, o.total_minor, sum(t.price_minor) FROM orders o JOIN tickets t ON t.order_id = o.id"
        " WHERE o.event_id = :e GROUP BY o.id, o.total_minor HAVING sum(t.price_minor) <> o.total_minor",
    ),
    (
        "converted hold without an order",
        "SELECT h.id FROM holds h LEFT JOIN orders o ON o.hold_id = h.id"
        " WHERE h.event_id = :e AND h.status = 'converted' AND o.id IS NULL",
    ),
    (
        "offered waiting-list entry without exactly one live offer",
        "SELECT w.id, count(h.id) FROM waitlist_entries w"
        " LEFT JOIN holds h ON h.waitlist_entry_id = w.id AND h.status = 'active' AND h.kind = 'offer'"
        " WHERE w.event_id = :e AND w.status = 'offered' GROUP BY w.id HAVING count(h.id) <> 1",
    ),
    (
        "live offer whose waiting-list entry is not in the offered state",
        "SELECT h.id, w.status FROM holds h LEFT JOIN waitlist_entries w ON w.id = h.waitlist_entry_id"
        " WHERE h.event_id = :e AND h.kind = 'offer' AND h.status = 'active'"
        " AND (w.id IS NULL OR w.status <> 'offered')",
    ),
    (
        "freed unit left to the public while someone waits for its tier (queue jump possible)",
        "SELECT u.tier_id, count(*) AS free_units, min(w.id) AS first_waiting FROM units u"
        " JOIN events ev ON ev.id = u.event_id"
        " JOIN tiers ut ON ut.id = u.tier_id"
        " JOIN waitlist_entries w ON w.event_id = u.event_id AND w.status = 'waiting'"
        "  AND (w.tier_id = u.tier_id OR (w.tier_id IS NULL AND NOT ut.hidden))"  # "any tier": the visible ones
        " WHERE u.event_id = :e AND u.status = 'available' AND ev.waitlist_partial_offers"
        " AND now() < coalesce(ev.sales_end_at, ev.starts_at)"  # the waiting list is served while sales are open
        " GROUP BY u.tier_id",
    ),
    (
        # The strict rule (see waitlist.py): an entry first in line for all
        # its tiers must have been offered once enough units are free there.
        "waiting entry first in line with enough free units, but no offer",
        "SELECT w.id, w.quantity, count(u.id) AS free_units FROM waitlist_entries w"
        " JOIN units u ON u.event_id = w.event_id AND u.status = 'available'"
        "  AND (u.tier_id = w.tier_id OR (w.tier_id IS NULL"
        "       AND NOT EXISTS (SELECT 1 FROM tiers ut WHERE ut.id = u.tier_id AND ut.hidden)))"
        " JOIN events ev ON ev.id = w.event_id AND now() < coalesce(ev.sales_end_at, ev.starts_at)"
        " WHERE w.event_id = :e AND w.status = 'waiting' AND NOT EXISTS ("
        "  SELECT 1 FROM waitlist_entries x WHERE x.event_id = w.event_id AND x.status = 'waiting'"
        "  AND x.id < w.id AND (x.tier_id IS NULL OR w.tier_id IS NULL OR x.tier_id = w.tier_id))"
        " GROUP BY w.id, w.quantity HAVING count(u.id) >= w.quantity",
    ),
    (
        "offer for more tickets than its waiting-list entry asked for",
        "SELECT h.id, cardinality(h.unit_ids), w.quantity FROM holds h JOIN waitlist_entries w"
        " ON w.id = h.waitlist_entry_id WHERE h.event_id = :e AND h.kind = 'offer'"
        " AND cardinality(h.unit_ids) > w.quantity",
    ),
    (
        "person with two live entries on the same waiting list",
        "SELECT user_id, count(*) FROM waitlist_entries WHERE event_id = :e AND status IN ('waiting', 'offered')"
        " GROUP BY user_id HAVING count(*) > 1",
    ),
    (
        # Codes (migration 0013): a use is a confirmed order or a live hold carrying the code.
        "discount code used more times than it allows",
        "SELECT c.id, c.code, c.max_uses, count(*) AS uses FROM codes c"
        " JOIN (SELECT code_id FROM orders WHERE event_id = :e AND status = 'confirmed'"
        "       UNION ALL SELECT code_id FROM holds WHERE event_id = :e AND status = 'active') x ON x.code_id = c.id"
        " WHERE c.event_id = :e AND c.max_uses IS NOT NULL GROUP BY c.id HAVING count(*) > c.max_uses",
    ),
    (
        "discount code used by one buyer more times than it allows per buyer",
        "SELECT c.id, c.code, x.user_id, count(*) AS uses FROM codes c"
        " JOIN (SELECT code_id, user_id FROM orders WHERE event_id = :e AND status = 'confirmed'"
        "       UNION ALL SELECT code_id, user_id FROM holds WHERE event_id = :e AND status = 'active') x"
        "  ON x.code_id = c.id"
        " WHERE c.event_id = :e AND c.per_buyer_max IS NOT NULL"
        " GROUP BY c.id, x.user_id HAVING count(*) > c.per_buyer_max",
    ),
    (
        "order total differs from the sum of its tickets' prices",
        "SELECT o.id, o.total_minor, sum(t.price_minor) FROM orders o JOIN tickets t ON t.order_id = o.id"
        " WHERE o.event_id = :e GROUP BY o.id HAVING o.total_minor <> sum(t.price_minor)",
    ),
    (
        "order's discount differs from its hold's",
        "SELECT o.id, o.code_id, o.discount_minor, h.code_id, h.discount_minor FROM orders o"
        " JOIN holds h ON h.id = o.hold_id WHERE o.event_id = :e"
        " AND (o.code_id IS DISTINCT FROM h.code_id OR o.discount_minor <> h.discount_minor)",
    ),
    (
        "live hold whose total is not its held prices less its discount",
        "SELECT h.id, h.total_minor, h.discount_minor FROM holds h"
        " WHERE h.event_id = :e AND h.status = 'active' AND h.unit_prices IS NOT NULL"
        " AND h.total_minor <> (SELECT sum(p) FROM unnest(h.unit_prices) p) - h.discount_minor",
    ),
    (
        # Invariant 9 (migration 0021): what is given back, asked for or made, never exceeds what was paid.
        "order whose refunds exceed what was paid for it",
        "SELECT o.id, o.total_minor, sum(r.amount_minor) FROM orders o JOIN refunds r ON r.order_id = o.id"
        " WHERE o.event_id = :e AND r.state <> 'failed' GROUP BY o.id HAVING sum(r.amount_minor) > o.total_minor",
    ),
    (
        "order whose kept refunded sum differs from its refunds (requested or succeeded)",
        "SELECT o.id, o.refunded_minor, coalesce(sum(r.amount_minor), 0) FROM orders o"
        " LEFT JOIN refunds r ON r.order_id = o.id AND r.state <> 'failed' WHERE o.event_id = :e"
        " GROUP BY o.id HAVING o.refunded_minor <> coalesce(sum(r.amount_minor), 0)",
    ),
    (
        "gateway charge that gave back more than it took",
        "SELECT g.reference, g.amount_minor, sum(gr.amount_minor) FROM payment_attempts p"
        " JOIN gateway_charges g ON g.idempotency_key = p.idempotency_key"
        " JOIN gateway_refunds gr ON gr.reference = g.reference"
        " WHERE p.event_id = :e GROUP BY g.reference, g.amount_minor HAVING sum(gr.amount_minor) > g.amount_minor",
    ),
    (
        "ticket refunded more than once, or refunded and still valid",
        "SELECT rt.ticket_id, count(*), min(t.status::text) FROM refund_tickets rt"
        " JOIN refunds r ON r.id = rt.refund_id JOIN tickets t ON t.id = rt.ticket_id WHERE r.event_id = :e"
        " GROUP BY rt.ticket_id HAVING count(*) > 1 OR bool_or(t.status = 'valid')",
    ),
    (
        # Paid = refunded (made) + pending + outstanding, with the gateway as the witness of "made":
        # what it gave back under our refunds' keys is exactly what we record as succeeded. The simulated
        # gateway's ledger witnesses the orders it took; check_stripe_money reads Stripe for the others.
        "order whose refunds made differ from what the gateway gave back under their keys",
        "SELECT o.id, coalesce(sum(r.amount_minor) FILTER (WHERE r.state = 'succeeded'), 0) AS ours,"
        " coalesce(sum(gr.amount_minor), 0) AS gateway FROM orders o JOIN refunds r ON r.order_id = o.id"
        " LEFT JOIN gateway_refunds gr ON gr.idempotency_key = r.idempotency_key"
        " WHERE o.event_id = :e AND r.state <> 'requested'"
        " AND EXISTS (SELECT 1 FROM payment_attempts p JOIN gateway_charges g ON g.idempotency_key = p.idempotency_key"
        "  WHERE p.id = o.payment_attempt_id)"
        " GROUP BY o.id HAVING coalesce(sum(r.amount_minor) FILTER (WHERE r.state = 'succeeded'"
        "  AND r.amount_minor > 0), 0) <> coalesce(sum(gr.amount_minor), 0)",
    ),
    (
        "refunded order with tickets still valid, or confirmed order with nothing left paid and no valid ticket",
        "SELECT o.id, o.status FROM orders o WHERE o.event_id = :e AND ("
        " (o.status = 'refunded' AND EXISTS (SELECT 1 FROM tickets t WHERE t.order_id = o.id AND t.status = 'valid'))"
        " OR (o.status = 'confirmed' AND NOT EXISTS"
        "     (SELECT 1 FROM tickets t WHERE t.order_id = o.id AND t.status = 'valid')))",
    ),
    (
        # Invoice numbers: no gap and none twice in an organiser's series (the unique index forbids twice).
        "invoice series with a gap in its numbers",
        "SELECT i.organiser_id, i.series, count(*), s.last_number FROM invoices i JOIN invoice_series s"
        " ON s.organiser_id = i.organiser_id AND s.series = i.series"
        " WHERE (i.organiser_id, i.series) IN (SELECT organiser_id, series FROM invoices WHERE event_id = :e)"
        " GROUP BY i.organiser_id, i.series, s.last_number"
        " HAVING count(*) <> s.last_number OR max(i.number) <> s.last_number",
    ),
    (
        # Charged = the order's total = its tickets' gross prices (checked above) = its invoice's gross lines.
        "order charged a different amount than its total",
        "SELECT o.id, o.total_minor, p.amount_minor FROM orders o"
        " JOIN payment_attempts p ON p.id = o.payment_attempt_id"
        " WHERE o.event_id = :e AND p.amount_minor <> o.total_minor",
    ),
    (
        "invoice or credit note whose lines do not add up (net + tax = gross per line, the lines' gross = the"
        " document's), or invoice whose gross is not its order's total",
        "SELECT i.id FROM invoices i JOIN orders o ON o.id = i.order_id WHERE i.event_id = :e AND ("
        " (i.kind = 'invoice' AND i.gross_minor <> o.total_minor)"
        " OR i.gross_minor <> (SELECT coalesce(sum((l ->> 'gross')::int), 0) FROM jsonb_array_elements(i.lines) l)"
        " OR EXISTS (SELECT 1 FROM jsonb_array_elements(i.lines) l"
        "  WHERE (l ->> 'net')::int + (l ->> 'tax')::int <> (l ->> 'gross')::int))",
    ),
    (
        "credit note that does not correct an invoice of its order, or credits more than the invoice",
        "SELECT c.id, c.gross_minor, i.id FROM invoices c LEFT JOIN invoices i ON i.id = c.credits_invoice_id"
        " WHERE c.event_id = :e AND c.kind = 'credit_note' AND (i.id IS NULL OR i.order_id <> c.order_id"
        " OR i.kind <> 'invoice' OR (SELECT sum(x.gross_minor) FROM invoices x WHERE x.credits_invoice_id = i.id)"
        "  > i.gross_minor)",
    ),
]


def check_event(session: Session, event_id: int) -> list[str]:
    """Every violation of invariants 1 and 2 (and the order/offer links) for an event."""
    violations: list[str] = []
    for description, query in CHECKS:
        rows = session.execute(text(query), {"e": event_id}).all()
        for row in rows[:20]:
            violations.append(f"{description}: {tuple(row)}")
        if len(rows) > 20:
            violations.append(f"{description}: … and {len(rows) - 20} more")
    return violations


_STRIPE_INTENTS = text(
    "SELECT s.intent_id, p.id AS attempt_id, p.hold_id, p.status, o.status AS order_status,"
    " (SELECT coalesce(sum(r.amount_minor), 0) FROM refunds r WHERE r.order_id = o.id AND r.state = 'succeeded')"
    "  AS refunds_made,"
    " o.id IS NOT NULL AND EXISTS (SELECT 1 FROM refunds r WHERE r.order_id = o.id) AS refunded_by_rows"
    " FROM stripe_intents s JOIN payment_attempts p ON p.idempotency_key = s.idempotency_key"
    " LEFT JOIN orders o ON o.payment_attempt_id = p.id WHERE p.event_id = :e"
)


def check_stripe_money(session: Session, event_id: int, fetch_intent) -> list[str]:
    """Invariant 5 on Stripe's side of an event's payments, read from Stripe (`fetch_intent(id)` -> the intent).

    No money authorised or kept without an order, no order without money, one live charge per hold.
    """
    violations: list[str] = []
    live_by_hold: dict[int, list[str]] = {}
    for row in session.execute(_STRIPE_INTENTS, {"e": event_id}).all():
        if row.intent_id is None:
            continue
        intent = fetch_intent(row.intent_id)
        charge = intent.get("latest_charge") or {}
        refunded = isinstance(charge, dict) and int(charge.get("amount_refunded") or 0) > 0
        live = intent["status"] == "requires_capture" or (intent["status"] == "succeeded" and not refunded)
        if live:
            live_by_hold.setdefault(row.hold_id, []).append(row.intent_id)
            if row.status not in ("approved", "pending"):
                violations.append(f"Stripe intent {row.intent_id} {intent['status']} without an order"
                                  f" (attempt {row.attempt_id} {row.status})")
        given_back = int(charge.get("amount_refunded") or 0) if isinstance(charge, dict) else 0
        if row.refunded_by_rows and intent["status"] == "succeeded" and given_back != row.refunds_made:
            violations.append(f"order of attempt {row.attempt_id}: refunds made {row.refunds_made},"
                              f" Stripe gave back {given_back}")
        if row.order_status == "confirmed" and intent["status"] not in ("requires_capture", "succeeded"):
            violations.append(f"confirmed order of attempt {row.attempt_id} whose intent is {intent['status']}")
    violations += [f"hold {hold_id} with more than one live Stripe charge: {ids}"
                   for hold_id, ids in live_by_hold.items() if len(ids) > 1]
    return violations
