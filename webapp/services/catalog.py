"""Read-only queries for the buyer pages: listings, maps, availability."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session, selectinload

from webapp.models import Event, EventStatus, Tier, Unit
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
        like = f"%{q.strip()}%"
        query = query.where(or_(Event.title.ilike(like), Event.venue.ilike(like), Event.description.ilike(like)))
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
