"""Editing an event's stock: units added, copied, removed, blocked and unblocked by the organiser.

Every unit that comes on sale here (created, added, copied, unblocked) is
offered to the waiting list first, by the function that frees it, so no
admin screen can forget the line. Capacities follow the unit rows in the
same transaction.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session

from webapp.models import Event, Tier, Unit, UnitStatus
from webapp.services.selling.inventory import waitlist_hook
from webapp.services.selling.inventory.clock import touch_inventory


def create_units_for_tier(session: Session, tier: Tier, seats: list[dict] | None = None) -> None:
    """Create the unit rows of a tier (given seats, or `capacity` GA places); the line gets them first."""
    if _insert_units(session, tier, seats):
        waitlist_hook.waitlist.offer_released_units(session, tier.event_id)


def _insert_units(session: Session, tier: Tier, seats: list[dict] | None) -> bool:
    if tier.seated:
        if not seats:
            return False
        session.execute(
            Unit.__table__.insert(),
            [dict(event_id=tier.event_id, tier_id=tier.id, status=UnitStatus.AVAILABLE.value, **s) for s in seats],
        )
        tier.capacity = (tier.capacity or 0) + len(seats)
    else:
        session.execute(
            text(
                "INSERT INTO units (event_id, tier_id, status)"
                " SELECT :e, :t, 'available' FROM generate_series(1, :n)"
            ),
            {"e": tier.event_id, "t": tier.id, "n": tier.capacity},
        )
    session.flush()
    touch_inventory(session, tier.event_id)
    return True


# Best first for "best available" (lower is better). "front_centre": across
# the whole venue, by distance to the event's focal point (the SQL function
# tb_rank_seats, which migration 0018 ran on older layouts too), so every
# seat of the event is ranked again; "row_order": these sections' rows front
# (smallest pos_y) to back, each left to right.
def rank_seats(session: Session, event_id: int, sections: list[str], order: str) -> None:
    """Set the best-first rank of seats (the layout generator's choice of order, or a moved focal point)."""
    if order == "front_centre":
        session.execute(text("SELECT tb_rank_seats(:e)"), {"e": event_id})
        return
    session.execute(text(
        "UPDATE units u SET best_rank = r.rank FROM ("
        " SELECT id, (dense_rank() OVER (ORDER BY pos_y) - 1) * 1000 + pos_x - min(pos_x) OVER across AS rank"
        " FROM units WHERE event_id = :e AND section = ANY(:sections) AND seat_number IS NOT NULL"
        " WINDOW across AS (PARTITION BY pos_y)) r WHERE u.id = r.id"),
        {"e": event_id, "sections": sections})


# The rank seats are written with (lower is better). "front_centre": the
# distance to the event's focal point (tb_seat_distance, as tb_rank_seats
# ranks), the default focal point taken over the venue's seats and these new
# ones; `rank_seats` then moves only the older seats whose rank the new
# extent changed. "row_order": rows front (smallest pos_y) to back across the
# sections laid out together, each left to right from the row's first seat
# position across them (`lo`).
_RANK_SEATS = {
    "front_centre": "tb_seat_distance(pos_x, pos_y, CAST(:fx AS numeric), CAST(:fy AS numeric))",
    "row_order": "row_rank * 1000 + pos_x - lo",
}
_FOCUS = text("SELECT fx, fy FROM tb_focal_point(:e, :lo_x, :hi_x, :front_y)")


def _focal_point(session: Session, event_id: int, blocks: list[SeatBlock]) -> tuple[Decimal, Decimal]:
    """Where "front_centre" measures from once these blocks are laid (tb_focal_point, with their extent added)."""
    point = session.execute(_FOCUS, {
        "e": event_id,
        "lo_x": min(b.origin_x for b in blocks),
        "hi_x": max(b.origin_x + b.seats_per_row - 1 for b in blocks),
        "front_y": min(b.origin_y for b in blocks),
    }).one()
    return point.fx, point.fy


@dataclass(frozen=True)
class SeatBlock:
    """A section's seats: `seats_per_row` seats in each row, from (origin_x, origin_y), front row first."""

    section: str
    seats_per_row: int
    origin_x: int
    origin_y: int
    rows: tuple[tuple[str, Tier], ...]  # each row's label and tier
    best_order: str = "front_centre"


def _insert_block(order: str) -> TextClause:
    # One statement per section, set-based, ranked as it is written: a
    # 60,000-seat stadium is sixty statements, not 60,000 rows built in Python
    # and sent one by one, nor a second pass that rewrites every seat.
    return text(
        "INSERT INTO units (event_id, tier_id, status, section, row_label, seat_number, pos_x, pos_y, best_rank)"
        " SELECT :e, tier_id, 'available', :section, row_label, seat_number, pos_x, pos_y,"
        f"        {_RANK_SEATS[order]}"
        " FROM (SELECT (CAST(:tiers AS integer[]))[r] AS tier_id, (CAST(:labels AS text[]))[r] AS row_label,"
        "              s AS seat_number, :x + s - 1 AS pos_x, :y + r - 1 AS pos_y,"
        "              (CAST(:row_ranks AS integer[]))[r] AS row_rank,"
        "              (CAST(:lo AS integer[]))[r] AS lo, (CAST(:hi AS integer[]))[r] AS hi"
        "       FROM generate_series(1, :rows) r CROSS JOIN generate_series(1, :seats) s) seat"
        " ORDER BY pos_y, pos_x"
    )


def _rows_across(blocks: list[SeatBlock]) -> dict[int, tuple[int, int, int]]:
    """Each row position of these blocks: (its rank front to back, its first and last seat position across them)."""
    spans: dict[int, tuple[int, int]] = {}
    for b in blocks:
        for y in range(b.origin_y, b.origin_y + len(b.rows)):
            lo, hi = spans.get(y, (b.origin_x, b.origin_x + b.seats_per_row - 1))
            spans[y] = (min(lo, b.origin_x), max(hi, b.origin_x + b.seats_per_row - 1))
    return {y: (rank, *spans[y]) for rank, y in enumerate(sorted(spans))}


def add_seats(session: Session, event_id: int, blocks: Iterable[SeatBlock]) -> int:
    """Create the numbered seats of several sections at once, ranked best first across the sections of the
    same order; the line is offered them once, at the end."""
    blocks = [b for b in blocks if b.rows and b.seats_per_row >= 1]
    created = 0
    for order in sorted({b.best_order for b in blocks}):
        group = [b for b in blocks if b.best_order == order]
        across = _rows_across(group)
        statement = _insert_block(order)
        fx, fy = _focal_point(session, event_id, blocks) if order == "front_centre" else (None, None)
        for b in group:
            rows = [across[y] for y in range(b.origin_y, b.origin_y + len(b.rows))]
            session.execute(statement, {
                "e": event_id, "section": b.section, "x": b.origin_x, "y": b.origin_y,
                "rows": len(b.rows), "seats": b.seats_per_row,
                "labels": [label for label, _ in b.rows], "tiers": [tier.id for _, tier in b.rows],
                "row_ranks": [r[0] for r in rows], "lo": [r[1] for r in rows], "hi": [r[2] for r in rows],
                "fx": fx, "fy": fy})
            for _, tier in b.rows:
                tier.capacity = (tier.capacity or 0) + b.seats_per_row
            created += len(b.rows) * b.seats_per_row
    if created:
        session.flush()
        touch_inventory(session, event_id)
        waitlist_hook.waitlist.offer_released_units(session, event_id)
    return created


def add_places(session: Session, tier: Tier, count: int) -> None:
    """Raise a general-admission tier's capacity by `count` places; people in line get them first."""
    session.execute(
        text("INSERT INTO units (event_id, tier_id, status)"
             " SELECT :e, :t, 'available' FROM generate_series(1, :n)"),
        {"e": tier.event_id, "t": tier.id, "n": count},
    )
    tier.capacity += count
    session.flush()
    touch_inventory(session, tier.event_id)
    waitlist_hook.waitlist.offer_released_units(session, tier.event_id)


def copy_units(session: Session, *, source_tier_id: int, tier: Tier) -> int:
    """Give a new tier the units of another, all free except blocked (house) seats, which stay blocked."""
    copied = session.execute(
        text(
            "INSERT INTO units (event_id, tier_id, status, section, row_label, seat_number, pos_x, pos_y)"
            " SELECT :e, :t, CASE WHEN status = 'blocked' THEN 'blocked' ELSE 'available' END,"
            " section, row_label, seat_number, pos_x, pos_y FROM units WHERE tier_id = :src ORDER BY id"
        ),
        {"e": tier.event_id, "t": tier.id, "src": source_tier_id},
    )
    tier.capacity = copied.rowcount  # type: ignore[attr-defined]  # a CursorResult; the stubs say Result
    session.flush()
    touch_inventory(session, tier.event_id)
    waitlist_hook.waitlist.offer_released_units(session, tier.event_id)
    return tier.capacity


def remove_places(session: Session, tier: Tier, count: int) -> int:
    """Delete `count` free general-admission places, or none; returns how many could go.

    Only free places go, never one a buyer is taking at this instant (SKIP
    LOCKED), and never one a cancelled ticket still points at.
    """
    ids = session.scalars(
        text(
            "SELECT id FROM units u WHERE tier_id = :t AND status = 'available'"
            " AND NOT EXISTS (SELECT 1 FROM tickets k WHERE k.unit_id = u.id)"
            " ORDER BY id DESC LIMIT :n FOR UPDATE SKIP LOCKED"
        ),
        {"t": tier.id, "n": count},
    ).all()
    if len(ids) < count:
        return len(ids)
    session.execute(text("DELETE FROM units WHERE id = ANY(:ids)"), {"ids": list(ids)})
    tier.capacity -= count
    session.flush()
    touch_inventory(session, tier.event_id)
    return count


def remove_units(session: Session, event: Event, unit_ids: list[int]) -> None:
    """Delete units the caller has locked and checked (free or blocked, never ticketed); capacities follow."""
    removed = session.execute(
        text("DELETE FROM units WHERE id = ANY(:ids) RETURNING tier_id"), {"ids": unit_ids}
    ).scalars().all()
    per_tier: dict[int, int] = {}
    for tier_id in removed:
        per_tier[tier_id] = per_tier.get(tier_id, 0) + 1
    for tier in event.tiers:
        if tier.id in per_tier:
            tier.capacity -= per_tier[tier.id]
    session.flush()
    touch_inventory(session, event.id)


def remove_tier_units(session: Session, tier: Tier) -> None:
    """Delete every unit of a tier that is about to be deleted (the caller checked none is sold or held)."""
    session.execute(text("DELETE FROM units WHERE tier_id = :t"), {"t": tier.id})
    touch_inventory(session, tier.event_id)


def block_seat(session: Session, unit: Unit) -> None:
    """Take an available seat (locked by the caller) off sale: a house seat, a broken seat."""
    unit.status = UnitStatus.BLOCKED
    session.flush()
    touch_inventory(session, unit.event_id)


def unblock_seat(session: Session, unit: Unit) -> None:
    """Give a blocked seat (locked by the caller) back; like any freed unit, the line comes first."""
    unit.status = UnitStatus.AVAILABLE
    session.flush()
    touch_inventory(session, unit.event_id)
    waitlist_hook.waitlist.offer_released_units(session, unit.event_id)
