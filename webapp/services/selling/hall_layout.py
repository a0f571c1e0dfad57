"""Where a hall's seats are: rows, sections and tiers as the seat map draws them.

The geometry of a big hall is read once per layout version and kept: the map's
markup (webapp/shop/hall.py) is drawn from it, and a buyer's seat states use it
to hide the seats of tiers their codes do not unlock.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.models import SEAT_PROPERTIES, Event, Tier, seat_label
from webapp.services.selling.event_snapshots import event_snapshot
from webapp.services.selling.recently_used import RecentlyUsed


@dataclass(frozen=True)
class SeatView:
    id: int
    tier_id: int
    section: str
    row_label: str
    seat_number: int
    x: int
    y: int
    status: str  # available / taken / blocked / mine
    # Its properties, by name (SEAT_PROPERTIES), in that order.
    features: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return seat_label(self.section, self.row_label, self.seat_number)

    @property
    def feature_words(self) -> str:
        """How its accessible name says its properties (", wheelchair space, aisle seat"), or nothing."""
        return "".join(", " + SEAT_PROPERTIES[f].lower() for f in self.features)


@dataclass
class SectionView:
    name: str
    rows: list[tuple[str, list[SeatView]]]
    min_x: int
    min_y: int
    width: int
    height: int = 1

    @property
    def seat_count(self) -> int:
        return sum(len(seats) for _, seats in self.rows)


_SEATS = text(
    "SELECT id, tier_id, section, row_label, seat_number, pos_x, pos_y, status,"
    " wheelchair, companion_for IS NOT NULL AS companion, restricted_view, aisle FROM units"
    " WHERE event_id = :e AND seat_number IS NOT NULL"
    "   AND (CAST(:section AS text) IS NULL OR section = CAST(:section AS text))"
    " ORDER BY section, pos_y, pos_x"
)


def seat_rows(session: Session, event_id: int, section: str | None = None) -> list[SeatView]:
    """Every seat of the event (or of one `section`), with its stored status, in drawing order within a section."""
    return [SeatView(r.id, r.tier_id, r.section, r.row_label, r.seat_number, r.pos_x, r.pos_y, r.status,
                     tuple(f for f in SEAT_PROPERTIES if getattr(r, f)))
            for r in session.execute(_SEATS, {"e": event_id, "section": section}).all()]


def group_sections(seats: list[SeatView]) -> list[SectionView]:
    """Seats grouped by section and row, sections drawn top to bottom, left to right, as the hall is laid out."""
    by_section: dict[str, dict[str, list[SeatView]]] = {}
    for seat in seats:
        by_section.setdefault(seat.section, {}).setdefault(seat.row_label, []).append(seat)
    sections = []
    for name, by_row in by_section.items():
        flat = [v for row in by_row.values() for v in row]
        min_x, min_y = min(v.x for v in flat), min(v.y for v in flat)
        sections.append(SectionView(name, list(by_row.items()), min_x, min_y, max(v.x for v in flat) - min_x + 1,
                                    max(v.y for v in flat) - min_y + 1))
    sections.sort(key=lambda v: (v.min_y, v.min_x))
    return sections


LayoutKey = tuple[int, datetime, int]


@dataclass(frozen=True)
class HallLayout:
    """One version of a hall's layout, shared by every buyer (hidden tiers included)."""

    sections: list[SectionView]  # drawing order: bands by top row, each band left to right
    tiers: Sequence[Tier]  # every tier of the event, hidden ones too
    seats_by_tier: dict[int, list[int]]
    section_by_seat: dict[int, tuple[int, int]]  # seat id -> its section's number (from 1, drawing order), its part
    features: tuple[str, ...] = ()  # the seat properties some seat has, in SEAT_PROPERTIES' order

    @property
    def seat_count(self) -> int:
        return len(self.section_by_seat)

    def section(self, number: int) -> SectionView | None:
        """A section by its number, as section pages are addressed (from 1, in drawing order)."""
        return self.sections[number - 1] if 1 <= number <= len(self.sections) else None

    def seats_of_section(self, name: str) -> list[int]:
        return [seat.id for section in self.sections if section.name == name for _, row in section.rows for seat in row]

    def section_of(self, seat_ids: Collection[int]) -> tuple[int, int] | None:
        """The section (its number) and part the first of these seats (of this hall) is in."""
        return next((self.section_by_seat[i] for i in seat_ids if i in self.section_by_seat), None)

    def part(self, number: int, part: int) -> SectionView | None:
        """Part `part` (from 1) of a section: all of it when it fits one page, else a run of whole rows."""
        section = self.section(number)
        if section is None:
            return None
        per = rows_per_part(section)
        rows = section.rows[(part - 1) * per:part * per] if part >= 1 else []
        if not rows:
            return None
        if len(rows) == len(section.rows):
            return section
        top = min(seat.y for _, row in rows for seat in row)
        bottom = max(seat.y for _, row in rows for seat in row)
        return SectionView(section.name, rows, section.min_x, top, section.width, bottom - top + 1)


    @property
    def section_names(self) -> tuple[str, ...]:
        """Sections are numbered from 1 in this order: the map's #section-<n>, a big venue's section pages."""
        return tuple(section.name for section in self.sections)

    def seats_of(self, tier_ids: Collection[int]) -> list[int]:
        return [seat for tier in tier_ids for seat in self.seats_by_tier.get(tier, ())]


# A page of seats: a section with more is shown in parts of whole rows, so a
# section page stays under about 300 KB of HTML (about 263 bytes a seat).
SECTION_PAGE_SEATS = 1_000


def rows_per_part(section: SectionView) -> int:
    widest = max((len(row) for _, row in section.rows), default=1)
    return max(1, SECTION_PAGE_SEATS // widest)


def parts_of(section: SectionView) -> list[tuple[str, str]]:
    """The first and last row label of each part of the section (one part when it fits a page)."""
    per = rows_per_part(section)
    return [(section.rows[i][0], section.rows[min(i + per, len(section.rows)) - 1][0])
            for i in range(0, len(section.rows), per)]


def layout_key(event: Event) -> LayoutKey:
    """The version of what the event's seat map draws, for caches of its geometry or markup.

    The layout version is read from PostgreSQL with the event (a trigger bumps
    it whenever what the map draws changes), so a cache under this key can
    never draw a layout that is not the current one. The creation time too:
    ids and versions start again in a rebuilt database (tests truncate with
    RESTART IDENTITY), creation times do not.
    """
    return (event.id, event.created_at, event.layout_version)


_LAYOUTS: RecentlyUsed[LayoutKey, HallLayout] = RecentlyUsed(kept=64)


def for_event(session: Session, event: Event) -> HallLayout:
    """The hall's layout, read once per layout version."""
    key = layout_key(event)
    layout = _LAYOUTS.get(key)
    if layout is None:
        layout = _read_layout(session, event)
        _LAYOUTS.put(key, layout)
    return layout


def _read_layout(session: Session, event: Event) -> HallLayout:
    sections = group_sections(seat_rows(session, event.id))
    # Every tier, hidden ones too: the geometry is shared by all buyers (the map hides what is locked).
    # Always the snapshot's read-only tiers, never a session's models: an
    # admin page reads the layout with the event's models, and what it keeps
    # here is drawn later for buyers, after that session has ended.
    full = event_snapshot(session, event.id)
    seats_by_tier: dict[int, list[int]] = {}
    section_by_seat: dict[int, tuple[int, int]] = {}
    found: set[str] = set()
    for number, section in enumerate(sections, 1):
        per = rows_per_part(section)
        for r, (_, row) in enumerate(section.rows):
            for seat in row:
                seats_by_tier.setdefault(seat.tier_id, []).append(seat.id)
                section_by_seat[seat.id] = (number, r // per + 1)
                found.update(seat.features)
    return HallLayout(sections, full.tiers if full is not None else event.tiers, seats_by_tier, section_by_seat,
                      tuple(f for f in SEAT_PROPERTIES if f in found))


def section_names(session: Session, event: Event) -> tuple[str, ...]:
    """The hall's sections in drawing order, from the same cached geometry as the map."""
    return for_event(session, event).section_names
