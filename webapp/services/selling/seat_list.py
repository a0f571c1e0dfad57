"""The seat list: a hall read step by step (section, then row, then seat) for keyboard and screen-reader buyers.

Each step reads only what it shows, so its cost does not grow with the hall:
the sections step counts free seats per section up to `FREE_SEATS_SHOWN`
(a bounded probe each), a section's step counts free seats per row of that
section, and a row's step reads that row's seats. The counts walk the
partial index of free seats (`ix_units_free_seats`, migration 0019); the
row walks the unique index on a seat's position. Which rows and tiers a
section has comes from the hall's geometry, summed once per layout version.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.models import SEAT_PROPERTIES, Event, Tier, seat_label
from webapp.services.selling import hall_layout
from webapp.services.selling.recently_used import RecentlyUsed

# The sections step stops counting a section's free seats here ("100 or more
# free"): more says nothing a buyer needs, and counting all of them would make
# the step's cost grow with the hall.
FREE_SEATS_SHOWN = 100


@dataclass(frozen=True)
class _RowShape:
    label: str
    seats: int
    tier_ids: tuple[int, ...]


@dataclass(frozen=True)
class _SectionShape:
    name: str
    rows: tuple[_RowShape, ...]

    @property
    def seats(self) -> int:
        return sum(row.seats for row in self.rows)

    @property
    def tier_ids(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(t for row in self.rows for t in row.tier_ids))


_SHAPES: RecentlyUsed[hall_layout.LayoutKey, dict[str, _SectionShape]] = RecentlyUsed(kept=64)


def _shape(session: Session, event: Event) -> dict[str, _SectionShape]:
    """Sections in the map's drawing order, their rows front to back, and each row's tiers; per layout version."""
    key = hall_layout.layout_key(event)
    shape = _SHAPES.get(key)
    if shape is None:
        shape = {}
        for section in hall_layout.for_event(session, event).sections:
            rows = tuple(_RowShape(label, len(seats), tuple(dict.fromkeys(s.tier_id for s in seats)))
                         for label, seats in section.rows)
            shape[section.name] = _SectionShape(section.name, rows)
        _SHAPES.put(key, shape)
    return shape


@dataclass(frozen=True)
class Choice:
    """A section or a row the buyer may step into: what it is called, how many seats are free, at what prices."""

    name: str
    seats: int  # all its seats, free or not
    free: int  # free for the public now (capped at FREE_SEATS_SHOWN for a section)
    tiers: tuple[Tier, ...]  # the tiers of its seats, cheapest first

    @property
    def capped(self) -> bool:
        return self.free >= FREE_SEATS_SHOWN


@dataclass(frozen=True)
class ListedSeat:
    """One seat of a row, with its state as the buyer sees it."""

    id: int
    section: str
    row_label: str
    seat_number: int
    tier: Tier
    state: str  # available / taken / blocked / mine: the seat map's states
    # Seat properties ("wheelchair space", "aisle", …) when the venue records
    # them; drawn after the price in the seat's name.
    properties: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        return seat_label(self.section, self.row_label, self.seat_number)


def _visible(event: Event) -> dict[int, Tier]:
    """The seat tiers this buyer may see: the snapshot leaves out hidden tiers their codes do not unlock."""
    return {t.id: t for t in event.tiers if t.seated}


def _tiers(ids: Sequence[int], visible: dict[int, Tier]) -> tuple[Tier, ...]:
    return tuple(sorted((visible[i] for i in ids if i in visible), key=lambda t: (t.price_minor, t.sort_order)))


# `kept`: tiers the public cannot buy from while people wait for them
# (tb_waitlist_reserved_tiers), read in the same statement.
_KEPT = "WITH kept AS MATERIALIZED (SELECT tb_waitlist_reserved_tiers(:e) AS reserved)"
_FREE = ("u.event_id = :e AND u.status = 'available' AND u.seat_number IS NOT NULL"
         " AND u.tier_id = ANY(CAST(:tiers AS integer[])) AND NOT (u.tier_id = ANY(kept.reserved))")

_FREE_PER_SECTION = text(
    f"{_KEPT} SELECT s.name, (SELECT count(*) FROM (SELECT 1 FROM units u WHERE {_FREE} AND u.section = s.name"
    "   LIMIT :cap) f) AS free"
    " FROM kept, unnest(CAST(:sections AS text[])) AS s(name)"
)
_FREE_PER_ROW = text(
    f"{_KEPT} SELECT u.row_label, count(*) AS free FROM units u, kept WHERE {_FREE} AND u.section = :s"
    " GROUP BY u.row_label"
)
_ROW = text(
    f"{_KEPT} SELECT u.id, u.tier_id, u.seat_number, u.status::text AS status,"
    "  u.tier_id = ANY(kept.reserved) AS kept, h.user_id = CAST(:u AS integer) AS mine,"
    "  u.wheelchair, u.companion_for IS NOT NULL AS companion, u.restricted_view, u.aisle"
    " FROM kept, units u LEFT JOIN holds h ON h.id = u.hold_id"
    " WHERE u.event_id = :e AND u.section = :s AND u.row_label = :r AND u.seat_number IS NOT NULL"
    " ORDER BY u.pos_x, u.seat_number"
)


def sections(session: Session, event: Event) -> list[Choice]:
    """The hall's sections that sell seats this buyer may see, each with its free seats (up to FREE_SEATS_SHOWN)."""
    visible = _visible(event)
    shown = [s for s in _shape(session, event).values() if any(t in visible for t in s.tier_ids)]
    if not shown:
        return []
    params = {"e": event.id, "tiers": list(visible), "cap": FREE_SEATS_SHOWN, "sections": [s.name for s in shown]}
    free: dict[str, int] = dict(session.execute(_FREE_PER_SECTION, params).all())
    return [Choice(s.name, s.seats, free.get(s.name, 0), _tiers(s.tier_ids, visible)) for s in shown]


def section_rows(session: Session, event: Event, section: str) -> list[Choice] | None:
    """The rows of one section with their free seats; None for a section the hall has not (or the buyer may not see)."""
    visible = _visible(event)
    shape = _shape(session, event).get(section)
    if shape is None or not any(t in visible for t in shape.tier_ids):
        return None
    params = {"e": event.id, "s": section, "tiers": list(visible)}
    free: dict[str, int] = dict(session.execute(_FREE_PER_ROW, params).all())
    return [Choice(r.label, r.seats, free.get(r.label, 0), _tiers(r.tier_ids, visible))
            for r in shape.rows if any(t in visible for t in r.tier_ids)]


def row_seats(session: Session, event: Event, section: str, row: str, *,
              user_id: int | None = None) -> list[ListedSeat] | None:
    """One row's seats with their states for this buyer; None for a row the section has not."""
    shape = _shape(session, event).get(section)
    if shape is None or all(r.label != row for r in shape.rows):
        return None
    visible = _visible(event)
    seats = []
    for r in session.execute(_ROW, {"e": event.id, "s": section, "r": row, "u": user_id}).all():
        tier = visible.get(r.tier_id)
        if tier is None:
            continue  # a hidden tier the buyer's codes do not unlock: not theirs to see
        if r.status == "held" and r.mine:
            state = "mine"
        elif r.status == "blocked":
            state = "blocked"
        elif r.status != "available" or r.kept:
            state = "taken"
        else:
            state = "available"
        seats.append(ListedSeat(r.id, section, row, r.seat_number, tier, state,
                                tuple(SEAT_PROPERTIES[f].lower() for f in SEAT_PROPERTIES if getattr(r, f))))
    return seats or None


def neighbour_rows(session: Session, event: Event, section: str, row: str) -> tuple[str | None, str | None]:
    """The rows before and after this one in its section (those the buyer may see), for "previous" and "next"."""
    visible = _visible(event)
    shape = _shape(session, event).get(section)
    labels = [r.label for r in shape.rows if any(t in visible for t in r.tier_ids)] if shape is not None else []
    if row not in labels:
        return None, None
    at = labels.index(row)
    return (labels[at - 1] if at > 0 else None), (labels[at + 1] if at + 1 < len(labels) else None)
