"""What is left, held and sold, and what the waiting list keeps: counts for display.

Always computed from the unit rows, never kept as a second truth that could
drift from them. The statements' columns are also parts of the event page's
one read (`catalog.read_event_page`), hence kept apart from their statements.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.services.selling.inventory.clock import read_once


@dataclass(frozen=True)
class TierCounts:
    tier_id: int
    capacity: int
    available: int
    held: int
    sold: int
    blocked: int


TIER_COUNTS_SQL = (
    "SELECT t.id, t.capacity,"
    " count(*) FILTER (WHERE u.status = 'available') AS available,"
    " count(*) FILTER (WHERE u.status = 'held') AS held,"
    " count(*) FILTER (WHERE u.status = 'sold') AS sold,"
    " count(*) FILTER (WHERE u.status = 'blocked') AS blocked"
    # The join names the event too, so the units are read through the index
    # that leads with event_id: joined on the tier alone, the planner scanned
    # every unit of every event (49 ms for a 1,008-seat hall beside a 60,000-seat stadium).
    " FROM tiers t LEFT JOIN units u ON u.tier_id = t.id AND u.event_id = t.event_id"
    " WHERE t.event_id = :e GROUP BY t.id, t.capacity"
)
_TIER_COUNTS = text(TIER_COUNTS_SQL)


def tier_counts(session: Session, event_id: int) -> dict[int, TierCounts]:
    """Each tier's units by state, read once per unit of work."""
    return read_once(session, ("tier_counts", event_id), lambda: {
        r.id: TierCounts(*r) for r in session.execute(_TIER_COUNTS, {"e": event_id}).all()})


def tiers_kept_for_waitlist(session: Session, event_id: int) -> set[int]:
    """Tiers the public cannot buy from because people are on the waiting list for them.

    An entry for "any tier" (tier_id NULL) keeps every tier of the event.
    """
    return set(read_once(session, ("waitlist_kept", event_id), lambda: session.execute(
        text("SELECT tb_waitlist_reserved_tiers(:e)"), {"e": event_id}).scalar_one()))


# The waiting list's three figures for an event.
WAITLIST_FIGURES_COLUMNS = (
    " (SELECT json_object_agg(tier_id, n) FROM (SELECT u.tier_id, count(*) AS n FROM units u"
    "   JOIN holds h ON h.id = u.hold_id WHERE u.event_id = :e AND h.kind = 'offer' GROUP BY u.tier_id) o) AS offered,"
    " (SELECT json_object_agg(coalesce(tier_id, 0), json_build_array(people, tickets)) FROM ("
    "   SELECT tier_id, count(*) AS people, sum(quantity) AS tickets FROM waitlist_entries"
    "   WHERE event_id = :e AND status = 'waiting' GROUP BY tier_id) w) AS waiting,"
    " (SELECT count(*) FROM waitlist_entries WHERE event_id = :e AND status = 'offered') AS offers_out"
)
_WAITLIST_FIGURES = text("SELECT" + WAITLIST_FIGURES_COLUMNS)


@dataclass(frozen=True)
class WaitlistFigures:
    offered: dict | None  # tier id (as text) -> units held as offers
    waiting: dict | None  # tier id (as text, 0 = any) -> [people, tickets]
    offers_out: int


def waitlist_figures(session: Session, event_id: int) -> WaitlistFigures:
    """Units held as offers, people and tickets waiting per tier, and offers out."""
    return read_once(session, ("waitlist_figures", event_id), lambda: WaitlistFigures(
        *session.execute(_WAITLIST_FIGURES, {"e": event_id}).one()))
