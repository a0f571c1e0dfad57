"""Seat properties: wheelchair spaces, companion seats, restricted view, aisle; set by range.

A companion seat is tied to one wheelchair space of its row (a unique index
says one each), and best available sells the two together (tb_hold_best).
A range names seats by section, row and seat numbers, as the buyer reads
them; one that reaches past the layout is refused whole, naming what is
missing, so nothing is half set.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.models import SEAT_PROPERTIES
from webapp.services.errors import InvalidRequest
from webapp.services.selling.inventory.clock import touch_inventory

_MOST_SEATS_AT_ONCE = 500


@dataclass(frozen=True)
class SeatRange:
    """Seats `first` to `last` (numbers, inclusive) of one row of one section."""

    section: str
    row_label: str
    first: int
    last: int

    @property
    def words(self) -> str:
        seats = f"seat {self.first}" if self.first == self.last else f"seats {self.first}–{self.last}"
        return f"{self.section}, row {self.row_label}, {seats}"


def set_seat_property(session: Session, event_id: int, seats: SeatRange, prop: str, on: bool) -> int:
    """Give the seats of a range a property, or take it away; returns how many seats changed."""
    if prop not in SEAT_PROPERTIES:
        raise InvalidRequest(f"There is no seat property “{prop}”; choose one of: {', '.join(SEAT_PROPERTIES)}.")
    if seats.first < 1 or seats.last < seats.first:
        raise InvalidRequest("Give the seats as a range from the lower seat number to the higher.")
    if seats.last - seats.first >= _MOST_SEATS_AT_ONCE:
        raise InvalidRequest(f"Set at most {_MOST_SEATS_AT_ONCE} seats at once.")
    rows = session.execute(text(
        "SELECT id, seat_number, pos_x, wheelchair, companion_for FROM units"
        " WHERE event_id = :e AND section = :s AND row_label = :r AND seat_number BETWEEN :a AND :b"
        " ORDER BY id FOR UPDATE"),
        {"e": event_id, "s": seats.section, "r": seats.row_label, "a": seats.first, "b": seats.last}).all()
    found = {r.seat_number for r in rows}
    missing = [n for n in range(seats.first, seats.last + 1) if n not in found]
    if not rows:
        raise InvalidRequest(f"The layout has no {seats.words}.")
    if missing:
        raise InvalidRequest(f"The layout has no seat {', '.join(map(str, missing[:10]))} in {seats.section}, "
                             f"row {seats.row_label}.")
    ids = [r.id for r in rows]
    touch_inventory(session, event_id)
    if prop == "companion":
        return _set_companions(session, event_id, seats, rows) if on else _update(
            session, "companion_for = NULL", ids)
    if prop == "wheelchair" and on:
        companions = sorted(r.seat_number for r in rows if r.companion_for is not None)
        if companions:
            raise InvalidRequest(f"Seat {companions[0]} of {seats.section}, row {seats.row_label} is a companion "
                                 f"seat; clear that first.")
    if prop == "wheelchair" and not on:
        # A companion seat of a space that is no longer one is an ordinary seat again.
        _update(session, "companion_for = NULL", [], tied_to=ids)
    return _update(session, f"{prop} = :on", ids, on=on)


def _update(session: Session, assignment: str, ids: list[int], *, tied_to: list[int] | None = None,
            on: bool | None = None) -> int:
    where = "companion_for = ANY(:tied)" if tied_to is not None else "id = ANY(:ids)"
    changed = session.execute(text(f"UPDATE units SET {assignment} WHERE {where}"),
                              {"ids": ids, "tied": tied_to, "on": on})
    return changed.rowcount  # type: ignore[attr-defined]  # a CursorResult; the stubs say Result


def _set_companions(session: Session, event_id: int, seats: SeatRange, rows) -> int:
    """Tie each seat to the nearest wheelchair space of its row that has no companion yet."""
    wheelchair = sorted(r.seat_number for r in rows if r.wheelchair)
    if wheelchair:
        raise InvalidRequest(f"Seat {wheelchair[0]} of {seats.section}, row {seats.row_label} is a wheelchair "
                             f"space; a companion seat is another seat beside it.")
    spaces = session.execute(text(
        "SELECT w.id, w.pos_x FROM units w"
        " WHERE w.event_id = :e AND w.section = :s AND w.row_label = :r AND w.wheelchair"
        "   AND NOT EXISTS (SELECT 1 FROM units c WHERE c.companion_for = w.id AND c.id <> ALL(:ids))"
        " ORDER BY w.id FOR UPDATE"),
        {"e": event_id, "s": seats.section, "r": seats.row_label, "ids": [r.id for r in rows]}).all()
    if len(spaces) < len(rows):
        raise InvalidRequest(
            f"{seats.section}, row {seats.row_label} has {len(spaces)} wheelchair space(s) without a companion "
            f"seat, for {len(rows)} companion seat(s): mark the wheelchair spaces first.")
    free = {s.id: s.pos_x for s in spaces}
    pairs = []
    for seat in sorted(rows, key=lambda r: r.pos_x):
        space = min(free, key=lambda i: (abs(free[i] - seat.pos_x), free[i]))
        pairs.append({"id": seat.id, "space": space})
        del free[space]
    # Cleared first, so that moving companions within the row never meets the unique index half-way.
    _update(session, "companion_for = NULL", [r.id for r in rows])
    for pair in pairs:
        session.execute(text("UPDATE units SET companion_for = :space WHERE id = :id"), pair)
    return len(pairs)
