"""The event list buyers browse: upcoming events on sale, with their price range and stock."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session, selectinload

from webapp.models import Event, EventStatus, Tier, Unit
from webapp.parsing import like_pattern


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
                  statuses: tuple[EventStatus, ...] = (EventStatus.ON_SALE,),
                  organiser_id: int | None = None) -> list[EventCard]:
    """Upcoming events, optionally filtered by text, day and organiser, with prices and stock."""
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
    if organiser_id is not None:
        query = query.where(Event.organiser_id == organiser_id)
    if on is not None:
        start = datetime.combine(on, time.min, tzinfo=timezone.utc)
        query = query.where(Event.starts_at >= start, Event.starts_at < start + timedelta(days=1))
    events = session.scalars(query.limit(100)).all()
    if not events:
        return []
    available = dict(
        session.execute(
            select(Unit.event_id, func.count())
            .join(Tier, Tier.id == Unit.tier_id)
            .where(Unit.event_id.in_([e.id for e in events]), Unit.status == "available", Tier.hidden.is_(False))
            .group_by(Unit.event_id)
        ).all()
    )
    cards = []
    for e in events:
        shown = [t for t in e.tiers if not t.hidden]  # hidden tiers are for access-code holders only
        prices = [t.price_minor for t in shown]
        cards.append(EventCard(
            event=e,
            min_price=min(prices) if prices else None,
            max_price=max(prices) if prices else None,
            currency=shown[0].currency if shown else "EUR",
            capacity=sum(t.capacity for t in shown),
            available=available.get(e.id, 0),
        ))
    return cards
