"""The per-event limit per payment instrument: tickets one card may pay for, whichever accounts use it.

The instrument is the card's fingerprint as the provider reports it (Stripe's
`card.fingerprint`, the same for one card number in every account); the
simulated gateway has none, so the limit applies under Stripe only. It is
checked when an authorisation comes back approved, before its order is made
and before the capture: over the limit, the authorisation is voided and the
buyer told why (the hold stays, so another card may pay for it).

Two checkouts of the same card for the same event must not both pass on the
same count: a transaction-scoped advisory lock on (event, instrument) makes
the second wait until the first's order is committed (and counted) or not.
"""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

CODE = "instrument_limit"

_LIMIT = text("SELECT per_instrument_limit FROM events WHERE id = :e")
_LOCK = text("SELECT pg_advisory_xact_lock(:e, hashtext(:f))")
# Tickets still valid in this event's orders paid by this card (ix_payment_attempts_instrument).
_PAID_WITH = text(
    "SELECT count(*) FROM payment_attempts p"
    " JOIN orders o ON o.payment_attempt_id = p.id JOIN tickets t ON t.order_id = o.id AND t.status = 'valid'"
    " WHERE p.event_id = :e AND p.instrument = :f AND p.status = 'approved'")


def refusal(session: Session, *, event_id: int, instrument: str | None, tickets: int) -> str | None:
    """Why this card may not pay for `tickets` more tickets of the event (None: it may). Locks until commit."""
    if not instrument:
        return None
    limit = session.execute(_LIMIT, {"e": event_id}).scalar()
    if limit is None:
        return None
    session.execute(_LOCK, {"e": event_id, "f": instrument})
    paid = session.execute(_PAID_WITH, {"e": event_id, "f": instrument}).scalar_one()
    if paid + tickets <= limit:
        return None
    # Kept under payment_attempts.decline_message's 200 characters.
    return (f"This card has already paid for {paid} ticket{'s' if paid != 1 else ''} to this event; the organiser"
            f" allows {limit} per card. Nothing was charged: choose fewer tickets or use another card.")
