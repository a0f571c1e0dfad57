"""Creating events, tiers and seat layouts (the inventory they sell)."""
from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from webapp.models import Event, EventStatus, Tier
from webapp.services import organiser_scope
from webapp.services.selling import inventory


def create_event(session: Session, *, title: str, venue: str, starts_at: datetime, description: str = "",
                 image_url: str | None = None, hold_minutes: float = 8, per_order_limit: int = 8,
                 status: EventStatus = EventStatus.DRAFT, organiser_id: int | None = None, **extra) -> Event:
    """A new event of `organiser_id`; by default the organiser the session is scoped to, else the first one."""
    if organiser_id is None:
        organiser_id = organiser_scope.organiser_for_new_rows(session)
    event = Event(organiser_id=organiser_id, title=title, venue=venue, starts_at=starts_at, description=description,
                  image_url=image_url, hold_minutes=hold_minutes, per_order_limit=per_order_limit, status=status,
                  **extra)
    session.add(event)
    session.flush()
    return event


def _add_tier(session: Session, event: Event, **fields) -> Tier:
    tier = Tier(event_id=event.id, **fields)
    session.add(tier)
    session.flush()
    return tier


def add_general_tier(session: Session, event: Event, *, name: str, price_minor: int, capacity: int,
                     currency: str = "EUR", colour: str = "#3b82f6", sort_order: int = 0,
                     hidden: bool = False) -> Tier:
    """A general-admission tier with its `capacity` places (offered to the waiting list first).

    `hidden`: sold only with an access code (codes.py).
    """
    tier = _add_tier(session, event, name=name, price_minor=price_minor, capacity=capacity, currency=currency,
                     colour=colour, seated=False, sort_order=sort_order, hidden=hidden)
    inventory.create_units_for_tier(session, tier)
    return tier


def add_seated_tier(session: Session, event: Event, *, name: str, price_minor: int, currency: str = "EUR",
                    colour: str = "#3b82f6", sort_order: int = 0) -> Tier:
    """A seat tier with no seats yet: the layout generator adds them."""
    return _add_tier(session, event, name=name, price_minor=price_minor, capacity=0, currency=currency,
                     colour=colour, seated=True, sort_order=sort_order)


def copy_tier(session: Session, event: Event, source: Tier) -> Tier:
    """A tier like `source` for another event, with a copy of its units (house seats stay blocked)."""
    tier = _add_tier(session, event, name=source.name, price_minor=source.price_minor, currency=source.currency,
                     colour=source.colour, seated=source.seated, sort_order=source.sort_order, capacity=0,
                     hidden=source.hidden)
    tier.tax_rate_bp, tier.tax_inclusive = source.tax_rate_bp, source.tax_inclusive  # the gross price, taxed alike
    inventory.copy_units(session, source_tier_id=source.id, tier=tier)
    return tier


def row_labels(count: int, start: str = "A") -> list[str]:
    """A, B, … Z, AA, AB, … (skipping I and O, which read as 1 and 0)."""
    letters = [c for c in string.ascii_uppercase if c not in "IO"]
    labels: list[str] = []
    first = letters.index(start) if start in letters else 0
    n = first
    while len(labels) < count:
        label, k = "", n
        while True:
            label = letters[k % len(letters)] + label
            k = k // len(letters) - 1
            if k < 0:
                break
        labels.append(label)
        n += 1
    return labels


@dataclass(frozen=True)
class SectionSpec:
    """A block of seats: `rows` rows of `seats_per_row`, tiered by row range."""

    name: str
    rows: int
    seats_per_row: int
    origin_x: int
    origin_y: int
    # (first row index, last row index inclusive, tier) — rows not covered
    # fall to the last tier given.
    tier_by_rows: tuple[tuple[int, int, Tier], ...]
    first_row_label: str = "A"
    # Best first for "best available": "front_centre" (nearest the event's
    # focal point first, across the whole venue: by default the centre front)
    # or "row_order" (these sections front to back, left to right).
    best_order: str = "front_centre"


BEST_ORDERS = {"front_centre": "Nearest the focal point", "row_order": "Front rows first, left to right"}


def _row_tiers(spec: SectionSpec) -> list[Tier]:
    """Each row's tier: the first range that covers it, else the last tier given."""
    return [next((t for lo, hi, t in spec.tier_by_rows if lo <= r <= hi), spec.tier_by_rows[-1][2])
            for r in range(spec.rows)]


def plan_section(spec: SectionSpec) -> list[tuple[Tier, dict]]:
    """Every seat of the section with its tier and position, nothing written.

    The layout editor's preview draws exactly what `generate_section` creates.
    """
    seats: list[tuple[Tier, dict]] = []
    for r, (label, tier) in enumerate(zip(row_labels(spec.rows, spec.first_row_label), _row_tiers(spec))):
        for s in range(spec.seats_per_row):
            seats.append((tier, dict(section=spec.name, row_label=label, seat_number=s + 1,
                                     pos_x=spec.origin_x + s, pos_y=spec.origin_y + r)))
    return seats


def generate_section(session: Session, event: Event, spec: SectionSpec) -> int:
    """Create one seat unit per position in the section; returns the count."""
    return generate_sections(session, event, [spec])


def generate_sections(session: Session, event: Event, specs: list[SectionSpec]) -> int:
    """Create the seats of several sections in one go (offered to the line once); returns the count.

    One INSERT per section, set-based in SQL: generating a stadium takes seconds, not minutes.
    """
    blocks = [inventory.SeatBlock(spec.name, spec.seats_per_row, spec.origin_x, spec.origin_y,
                                  tuple(zip(row_labels(spec.rows, spec.first_row_label), _row_tiers(spec))),
                                  spec.best_order)
              for spec in specs]
    created = inventory.add_seats(session, event.id, blocks)
    if any(spec.best_order == "front_centre" for spec in specs):
        # Nearest the focal point is a rank across the whole venue: the new seats move the others' too.
        inventory.rank_seats(session, event.id, [], "front_centre")
    return created
