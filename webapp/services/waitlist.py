"""The waiting list: who is in line for what, and offers made from released units.

Released units go to the line first (invariant 4). `inventory` calls in here
whenever units come free, in the same transaction, so offers are made under
the same locks as the release.
"""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.models import Hold


def tiers_reserved_for_line(session: Session, event_id: int) -> set[int]:
    """Tiers the public cannot buy from because people are waiting for them.

    An entry for "any tier" (tier_id NULL) reserves every tier of the event.
    """
    rows = session.execute(
        text(
            "SELECT DISTINCT coalesce(w.tier_id, t.id) FROM waitlist_entries w"
            " JOIN tiers t ON t.event_id = w.event_id AND (w.tier_id IS NULL OR t.id = w.tier_id)"
            " WHERE w.event_id = :e AND w.status = 'waiting'"
        ),
        {"e": event_id},
    ).scalars()
    return set(rows)


def offer_released_units(session: Session, event_id: int) -> None:
    """Offer freshly released units to the people in line, in line order."""


def offer_ended(session: Session, hold: Hold) -> None:
    """An offer hold ended without a purchase: the entry lapses."""


def offer_accepted(session: Session, hold: Hold) -> None:
    """The person in line bought their offer: their entry is fulfilled."""
