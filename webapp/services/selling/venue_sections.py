"""A big venue's overview: its sections as shapes, with what each has left and what it costs.

A stadium's seat map is too big for one page (60,000 seats drew 18.6 MB), so
a venue over the threshold opens on its sections and shows seats one
section at a time. The overview's figures are counted from the unit rows
(they are never a second source of truth), once per inventory version per
process: every buyer looking at the overview between two changes shares one
count, and the count is keyed by the version read from PostgreSQL, so it can
never show an older state than the clock says.
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.models import Event
from webapp.services.selling import hall_layout, inventory
from webapp.services.selling.recently_used import RecentlyUsed


@dataclass(frozen=True)
class SectionFigures:
    """One section on the overview: where it is drawn, what is left in it and its prices."""

    number: int  # from 1, in drawing order: the section page's address
    name: str
    x: int  # its box on the venue plan, in seat positions
    y: int
    width: int
    height: int
    seats: int  # for sale to this buyer (seats of tiers their codes do not unlock left out)
    available: int
    prices: tuple[int, ...]  # the prices of its tiers, lowest first
    currency: str

    @property
    def share_left(self) -> float:
        return self.available / self.seats if self.seats else 0.0


@dataclass(frozen=True)
class VenueOverview:
    sections: list[SectionFigures]
    width: int  # the plan's size, in seat positions
    height: int


# The count per section, tier and state, of every unit of the event (general
# admission under no section). This reads the whole event once per inventory
# version (see the module's docstring), never once per request: the
# overview's figures and the event's tier counts both follow from it.
_SECTION_COUNTS = text(
    "SELECT section, tier_id, count(*) AS seats,"
    " count(*) FILTER (WHERE status = 'available') AS available,"
    " count(*) FILTER (WHERE status = 'held') AS held,"
    " count(*) FILTER (WHERE status = 'sold') AS sold,"
    " count(*) FILTER (WHERE status = 'blocked') AS blocked"
    " FROM units WHERE event_id = :e GROUP BY section, tier_id"
)
Counts = dict[tuple[str | None, int], tuple[int, int, int, int, int]]
_COUNTS: RecentlyUsed[tuple, Counts] = RecentlyUsed(kept=64)


def _section_counts(session: Session, event: Event) -> Counts:
    """(section, tier) -> (seats, available, held, sold, blocked), counted once per inventory version."""
    version = inventory.inventory_version(session, event.id)
    key = (hall_layout.layout_key(event), version)
    counts = _COUNTS.get(key)
    if counts is None:
        # Read after the version: these rows or newer, and newer rows carry a
        # newer version, so no key ever shows older figures than it names.
        counts = {(r.section, r.tier_id): (r.seats, r.available, r.held, r.sold, r.blocked)
                  for r in session.execute(_SECTION_COUNTS, {"e": event.id})}
        _COUNTS.put(key, counts)
    return counts


def tier_counts(session: Session, event: Event) -> dict[int, inventory.TierCounts]:
    """Each tier's units by state, from the counts kept per inventory version (the big venue's event page)."""
    by_tier: dict[int, list[int]] = {}
    for (_, tier_id), (_, *states) in _section_counts(session, event).items():
        total = by_tier.setdefault(tier_id, [0, 0, 0, 0])
        for i, n in enumerate(states):
            total[i] += n
    return {t.id: inventory.TierCounts(t.id, t.capacity, *by_tier.get(t.id, (0, 0, 0, 0))) for t in event.tiers}


def is_large(session: Session, event: Event, threshold: int) -> bool:
    """Whether the venue opens on its overview: a seated event with more seats than `threshold`."""
    return event.is_seated and hall_layout.for_event(session, event).seat_count > threshold


def overview(session: Session, event: Event) -> VenueOverview:
    """Every section with its place on the plan, its seats left for the public and its price range."""
    layout = hall_layout.for_event(session, event)
    counts = _section_counts(session, event)
    tiers = {t.id: t for t in event.tiers}  # the buyer's: hidden tiers only when unlocked
    kept = inventory.tiers_kept_for_waitlist(session, event.id)  # the public sees these sold out
    figures = []
    for number, section in enumerate(layout.sections, 1):
        seats = available = 0
        prices: set[int] = set()
        for tier_id, tier in tiers.items():
            n, free, *_ = counts.get((section.name, tier_id), (0, 0))
            if n:
                seats += n
                available += 0 if tier_id in kept else free
                prices.add(tier.price_minor)
        currency = next((t.currency for t in tiers.values()), "EUR")
        figures.append(SectionFigures(number, section.name, section.min_x, section.min_y, section.width,
                                      section.height, seats, available, tuple(sorted(prices)), currency))
    width = max((s.x + s.width for s in figures), default=1)
    height = max((s.y + s.height for s in figures), default=1)
    return VenueOverview(figures, width, height)


def section_tier_ids(session: Session, event: Event, number: int) -> Collection[int]:
    """The tiers that have seats in this section (for its page's legend)."""
    section = hall_layout.for_event(session, event).section(number)
    if section is None:
        return ()
    return {seat.tier_id for _, row in section.rows for seat in row}
