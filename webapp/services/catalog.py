"""Read-only queries for the buyer pages: listings, maps, availability."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session, selectinload

from webapp.models import Event, EventStatus, Hold, HoldKind, HoldStatus, Tier, Unit
from webapp.parsing import like_pattern
from webapp.services import inventory, waitlist


@dataclass(frozen=True)
class EventCard:
    event: Event
    min_price: int | None
    max_price: int | None
    currency: str
    capacity: int
    available: int

    @property
    def availability(self) -> str:
        if self.capacity == 0 or self.available == 0:
            return "sold_out"
        if self.available <= max(10, self.capacity // 10):
            return "selling_fast"
        return "available"


def listed_events(session: Session, *, q: str = "", on: date | None = None,
                  statuses: tuple[EventStatus, ...] = (EventStatus.ON_SALE,)) -> list[EventCard]:
    """Upcoming events, optionally filtered by text and day, with prices and stock."""
    query = (
        select(Event)
        .where(Event.status.in_(statuses), Event.starts_at >= func.now() - text("interval '6 hours'"))
        .options(selectinload(Event.tiers))
        .order_by(Event.starts_at)
    )
    if q:
        like = like_pattern(q.strip())
        query = query.where(or_(*(column.ilike(like, escape="\\")
                                  for column in (Event.title, Event.venue, Event.description))))
    if on is not None:
        start = datetime.combine(on, time.min, tzinfo=timezone.utc)
        query = query.where(Event.starts_at >= start, Event.starts_at < start + timedelta(days=1))
    events = session.scalars(query.limit(100)).all()
    if not events:
        return []
    available = dict(
        session.execute(
            select(Unit.event_id, func.count())
            .where(Unit.event_id.in_([e.id for e in events]), Unit.status == "available")
            .group_by(Unit.event_id)
        ).all()
    )
    cards = []
    for e in events:
        prices = [t.price_minor for t in e.tiers]
        cards.append(EventCard(
            event=e,
            min_price=min(prices) if prices else None,
            max_price=max(prices) if prices else None,
            currency=e.tiers[0].currency if e.tiers else "EUR",
            capacity=sum(t.capacity for t in e.tiers),
            available=available.get(e.id, 0),
        ))
    return cards


@dataclass(frozen=True)
class TierView:
    tier: Tier
    available: int
    sold_out: bool  # for the public: nothing left, or the line comes first


def tier_views(session: Session, event: Event) -> list[TierView]:
    counts = inventory.tier_counts(session, event.id)
    reserved = waitlist.tiers_reserved_for_line(session, event.id)
    views = []
    for tier in event.tiers:
        c = counts.get(tier.id)
        available = 0 if (c is None or tier.id in reserved) else c.available
        views.append(TierView(tier=tier, available=available, sold_out=available == 0))
    return views


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


@dataclass
class SectionView:
    name: str
    rows: list[tuple[str, list[SeatView]]]
    min_x: int
    min_y: int
    width: int


def seat_map(session: Session, event: Event, *, user_id: int | None = None) -> list[SectionView]:
    """Seats grouped by section and row, in drawing order, with public status."""
    reserved = waitlist.tiers_reserved_for_line(session, event.id)
    mine: set[int] = set()
    if user_id is not None:
        mine = set(session.scalars(
            text("SELECT u.id FROM units u JOIN holds h ON h.id = u.hold_id"
                 " WHERE u.event_id = :e AND h.user_id = :u AND h.status = 'active'"),
            {"e": event.id, "u": user_id},
        ).all())
    rows = session.execute(
        text(
            "SELECT id, tier_id, section, row_label, seat_number, pos_x, pos_y, status FROM units"
            " WHERE event_id = :e AND seat_number IS NOT NULL ORDER BY section, pos_y, pos_x"
        ),
        {"e": event.id},
    ).all()
    sections: dict[str, dict[str, list[SeatView]]] = {}
    order: list[str] = []
    for r in rows:
        if r.id in mine:
            status = "mine"
        elif r.status == "blocked":
            status = "blocked"
        elif r.status == "available" and r.tier_id not in reserved:
            status = "available"
        else:
            status = "taken"
        if r.section not in sections:
            sections[r.section] = {}
            order.append(r.section)
        sections[r.section].setdefault(r.row_label, []).append(
            SeatView(r.id, r.tier_id, r.section, r.row_label, r.seat_number, r.pos_x, r.pos_y, status)
        )
    result = []
    for name in order:
        seats = [v for row in sections[name].values() for v in row]
        min_x, min_y = min(v.x for v in seats), min(v.y for v in seats)
        width = max(v.x for v in seats) - min_x + 1
        result.append(SectionView(name, list(sections[name].items()), min_x, min_y, width))
    # Drawn top to bottom, left to right, as the hall is laid out.
    result.sort(key=lambda s: (s.min_y, s.min_x))
    return result


def active_hold(session: Session, event_id: int, user_id: int) -> Hold | None:
    """The buyer's live basket for this event, if any (there is at most one)."""
    return session.scalars(
        select(Hold).where(Hold.user_id == user_id, Hold.event_id == event_id, Hold.status == HoldStatus.ACTIVE,
                           Hold.kind == HoldKind.PURCHASE, Hold.expires_at > func.now())
    ).first()


def seat_states(session: Session, event: Event, *, user_id: int | None = None) -> dict[str, list[int]]:
    """The seats a buyer cannot pick right now, for live map updates.

    Only the exceptions travel (every other seat is available), so the answer
    stays small on a big hall: taken or blocked seats, seats of tiers kept for
    the waiting list, and the buyer's own held seats.
    """
    reserved = sorted(waitlist.tiers_reserved_for_line(session, event.id))
    rows = session.execute(
        text(
            "SELECT u.id, u.status, h.user_id AS holder FROM units u LEFT JOIN holds h ON h.id = u.hold_id"
            " WHERE u.event_id = :e AND u.seat_number IS NOT NULL"
            " AND (u.status <> 'available' OR u.tier_id = ANY(:reserved)) ORDER BY u.id"
        ),
        {"e": event.id, "reserved": reserved},
    ).all()
    states: dict[str, list[int]] = {"taken": [], "blocked": [], "mine": []}
    for r in rows:
        if r.status == "held" and user_id is not None and r.holder == user_id:
            states["mine"].append(r.id)
        elif r.status == "blocked":
            states["blocked"].append(r.id)
        else:
            states["taken"].append(r.id)
    return states


@dataclass(frozen=True)
class BasketLine:
    tier: Tier
    quantity: int
    labels: tuple[str, ...]  # the picked seats, for a seated basket

    @property
    def subtotal(self) -> int:
        return self.tier.price_minor * self.quantity


@dataclass(frozen=True)
class BasketPreview:
    """What a selection would cost, and why it cannot be reserved yet (if so)."""

    lines: list[BasketLine]
    limit: int
    unavailable: tuple[str, ...] = ()  # picked seats that are no longer free
    problems: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def total(self) -> int:
        return sum(line.subtotal for line in self.lines)

    @property
    def currency(self) -> str:
        return self.lines[0].tier.currency if self.lines else "EUR"

    @property
    def ok(self) -> bool:
        return self.count > 0 and not self.problems and not self.unavailable


def preview_seats(session: Session, event: Event, seat_ids: list[int], *, user_id: int | None = None) -> BasketPreview:
    """Seats picked on the map, grouped by tier, with the per-order limit checked."""
    tiers = {t.id: t for t in event.tiers}
    ids = sorted(set(seat_ids))[:200]  # more than any limit: the rest cannot matter
    rows = session.execute(
        select(Unit.id, Unit.tier_id, Unit.section, Unit.row_label, Unit.seat_number)
        .where(Unit.id.in_(ids), Unit.event_id == event.id, Unit.seat_number.is_not(None))
        .order_by(Unit.section, Unit.pos_y, Unit.pos_x)
    ).all() if ids else []
    blocked = seat_states(session, event, user_id=user_id) if rows else {}
    not_free = set(blocked.get("taken", [])) | set(blocked.get("blocked", []))
    by_tier: dict[int, list[str]] = {}
    unavailable = []
    for r in rows:
        label = f"{r.section}, row {r.row_label}, seat {r.seat_number}"
        if r.id in not_free:
            unavailable.append(label)
        else:
            by_tier.setdefault(r.tier_id, []).append(label)
    lines = [BasketLine(tiers[t], len(labels), tuple(labels)) for t, labels in
             sorted(by_tier.items(), key=lambda kv: (tiers[kv[0]].sort_order, kv[0]))]
    preview = BasketPreview(lines, event.per_order_limit, tuple(unavailable))
    return _with_limit_problem(preview, "seats")


def preview_quantities(session: Session, event: Event, quantities: dict[int, int]) -> BasketPreview:
    """General-admission quantities, checked against what is left and the per-order limit."""
    views = {v.tier.id: v for v in tier_views(session, event) if not v.tier.seated}
    lines, problems = [], []
    for tier_id, view in views.items():
        n = quantities.get(tier_id, 0)
        if n <= 0:
            continue
        if n > view.available:
            problems.append(f"{view.tier.name} is sold out." if view.available == 0
                            else f"Only {view.available} left in {view.tier.name}.")
        lines.append(BasketLine(view.tier, n, ()))
    return _with_limit_problem(BasketPreview(lines, event.per_order_limit, problems=tuple(problems)), "tickets")


def _with_limit_problem(preview: BasketPreview, noun: str) -> BasketPreview:
    if preview.count <= preview.limit:
        return preview
    problem = f"You can buy at most {preview.limit} {noun} in one order; remove {preview.count - preview.limit}."
    return BasketPreview(preview.lines, preview.limit, preview.unavailable, (*preview.problems, problem))
