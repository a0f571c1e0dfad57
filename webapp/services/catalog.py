"""Read-only queries for the buyer pages: listings, maps, availability."""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from markupsafe import Markup, escape
from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session, selectinload

from webapp.models import Event, EventStatus, Hold, HoldKind, HoldStatus, Tier, Unit, seat_label
from webapp.parsing import like_pattern
from webapp.services import inventory, waitlist
from webapp.templating import money


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


_SEATS = text(
    "SELECT id, tier_id, section, row_label, seat_number, pos_x, pos_y, status FROM units"
    " WHERE event_id = :e AND seat_number IS NOT NULL ORDER BY section, pos_y, pos_x"
)


def seat_rows(session: Session, event_id: int) -> list[SeatView]:
    """Every seat of the event, with its stored status, in drawing order within a section."""
    return [SeatView(r.id, r.tier_id, r.section, r.row_label, r.seat_number, r.pos_x, r.pos_y, r.status)
            for r in session.execute(_SEATS, {"e": event_id}).all()]


def group_sections(seats: list[SeatView]) -> list[SectionView]:
    """Seats grouped by section and row, sections drawn top to bottom, left to right, as the hall is laid out."""
    by_section: dict[str, dict[str, list[SeatView]]] = {}
    for seat in seats:
        by_section.setdefault(seat.section, {}).setdefault(seat.row_label, []).append(seat)
    sections = []
    for name, by_row in by_section.items():
        flat = [v for row in by_row.values() for v in row]
        min_x, min_y = min(v.x for v in flat), min(v.y for v in flat)
        sections.append(SectionView(name, list(by_row.items()), min_x, min_y, max(v.x for v in flat) - min_x + 1))
    sections.sort(key=lambda v: (v.min_y, v.min_x))
    return sections


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
            "SELECT u.id, u.status, u.tier_id, h.user_id AS holder FROM units u LEFT JOIN holds h ON h.id = u.hold_id"
            " WHERE u.event_id = :e AND u.seat_number IS NOT NULL"
            " AND (u.status <> 'available' OR u.tier_id = ANY(:reserved)) ORDER BY u.id"
        ),
        {"e": event.id, "reserved": reserved},
    ).all()
    states: dict[str, list[int]] = {"taken": [], "blocked": [], "mine": []}
    # The page's figures follow from the same rows: every seat not listed is
    # free for the public, so a tier's public availability is its capacity
    # less its rows here (invariant 2: capacity = available + held + sold + blocked).
    not_free = dict.fromkeys((t.id for t in event.tiers), 0)
    held = sold = 0
    for r in rows:
        not_free[r.tier_id] = not_free.get(r.tier_id, 0) + 1
        if r.status == "held":
            held += 1
        elif r.status == "sold":
            sold += 1
        if r.status == "held" and user_id is not None and r.holder == user_id:
            states["mine"].append(r.id)
        elif r.status == "blocked":
            states["blocked"].append(r.id)
        else:
            states["taken"].append(r.id)
    free = {t.id: max(0, t.capacity - not_free[t.id]) for t in event.tiers}
    # [available, held, sold] as the availability panel shows them, and the
    # tiers the legend marks "Sold out".
    states["figures"] = [sum(free.values()), held, sold]
    states["sold_out"] = [t for t, n in free.items() if n == 0]
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


def preview_seats(session: Session, event: Event, seat_ids: list[int], *,
                  user_id: int | None = None) -> BasketPreview:
    """Seats picked on the map, grouped by tier, with the per-order limit checked.

    A picked seat is unavailable when it is taken, blocked, held (the buyer's
    own held seats are not picked again) or kept for the waiting list.
    """
    tiers = {t.id: t for t in event.tiers}
    ids = sorted(set(seat_ids))[:200]  # more than any limit: the rest cannot matter
    rows = session.execute(_PICKED_SEATS, {"e": event.id, "ids": ids}).all() if ids else []
    reserved = waitlist.tiers_reserved_for_line(session, event.id) if rows else set()
    by_tier: dict[int, list[str]] = {}
    unavailable = []
    for r in rows:
        label = seat_label(r.section, r.row_label, r.seat_number)
        if r.status != "available" or r.tier_id in reserved:
            unavailable.append(label)
        else:
            by_tier.setdefault(r.tier_id, []).append(label)
    lines = [BasketLine(tiers[t], len(labels), tuple(labels)) for t, labels in
             sorted(by_tier.items(), key=lambda kv: (tiers[kv[0]].sort_order, kv[0]))]
    preview = BasketPreview(lines, event.per_order_limit, tuple(unavailable))
    return _with_limit_problem(preview, "seats")


def seat_labels(session: Session, event_id: int, seat_ids: list[int]) -> list[str]:
    """"Stalls, row B, seat 5" for each of these seats of the event, in drawing order."""
    rows = session.execute(_PICKED_SEATS, {"e": event_id, "ids": seat_ids}).all()
    return [seat_label(r.section, r.row_label, r.seat_number) for r in rows]


_PICKED_SEATS = text(
    "SELECT id, tier_id, section, row_label, seat_number, status FROM units"
    " WHERE id = ANY(:ids) AND event_id = :e AND seat_number IS NOT NULL ORDER BY section, pos_y, pos_x"
)


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


# ---------------------------------------------------------------------------
# The seat map's markup: static geometry rendered once per layout version,
# live state filled in per request.
# ---------------------------------------------------------------------------

_STATUS_WORDS = {"available": "available", "taken": "unavailable", "blocked": "not for sale", "mine": "held by you"}


@dataclass(frozen=True)
class _Hall:
    texts: list[str]  # markup between seats; one more than there are seats
    seat_ids: list[int]  # drawing order
    variants: dict[int, dict[str, str]]  # seat id -> state ("checked" too) -> its markup


_HALLS: OrderedDict[tuple, _Hall] = OrderedDict()
_HALLS_LOCK = threading.Lock()
_HALLS_KEPT = 64


def _seat_variants(seat: SeatView, tier: Tier, grid_row: int, grid_col: int) -> dict[str, str]:
    name = escape(f"{seat_label(seat.section, seat.row_label, seat.seat_number)}, {tier.name}, "
                  f"{money(tier.price_minor, tier.currency)}")
    head = '<label class="seat '
    middle = (f' t{tier.id}" title="{name}" style="grid-area:{grid_row}/{grid_col};--tier:{tier.colour}">'
              f'<input type="checkbox" name="seat" value="{seat.id}" id="seat-{seat.id}" data-x="{seat.x}"'
              f' data-y="{seat.y}" aria-label="{name}, ')
    tail = f'><span aria-hidden="true">{seat.seat_number}</span></label>'

    def one(status: str, flags: str) -> str:
        return f'{head}{status}{middle}{_STATUS_WORDS[status]}"{flags}{tail}'

    return {"available": one("available", ""), "checked": one("available", " checked"),
            "taken": one("taken", " disabled"), "blocked": one("blocked", " disabled"),
            "mine": one("mine", " disabled")}


def _build_hall(session: Session, event: Event) -> _Hall:
    from flask import render_template

    # Geometry only: the live state is filled in per request (hall_markup).
    sections = group_sections(seat_rows(session, event.id))
    tiers = {t.id: t for t in event.tiers}
    rendered = render_template("shop/_hall.html", sections=sections, tiers=event.tiers)
    pieces = rendered.split("\x00")
    texts, ids = pieces[0::2], [int(p) for p in pieces[1::2]]
    variants = {}
    for section in sections:
        for _, row in section.rows:
            for seat in row:
                variants[seat.id] = _seat_variants(seat, tiers[seat.tier_id], seat.y - section.min_y + 1,
                                                   seat.x - section.min_x + 2)
    return _Hall(texts, ids, variants)


def hall_markup(session: Session, event: Event, states: dict[str, list[int]], selected: set[int]) -> Markup:
    """The hall of seats with their live state: cached geometry, state per request.

    The cache is keyed by the event's layout version, read from PostgreSQL
    with the event (a trigger bumps it whenever what the map draws changes),
    so it can never draw a layout that is not the current one.
    """
    # The creation time too: ids and versions start again in a rebuilt
    # database (tests truncate with RESTART IDENTITY), creation times do not.
    key = (event.id, event.created_at, event.layout_version)
    with _HALLS_LOCK:
        hall = _HALLS.get(key)
        if hall is not None:
            _HALLS.move_to_end(key)
    if hall is None:
        hall = _build_hall(session, event)
        with _HALLS_LOCK:
            _HALLS[key] = hall
            while len(_HALLS) > _HALLS_KEPT:
                _HALLS.popitem(last=False)
    state = dict.fromkeys(states.get("taken", ()), "taken")
    state.update(dict.fromkeys(states.get("blocked", ()), "blocked"))
    state.update(dict.fromkeys(states.get("mine", ()), "mine"))
    state.update((i, "checked") for i in selected if i not in state)
    out = [hall.texts[0]]
    variants, texts = hall.variants, hall.texts
    for n, seat_id in enumerate(hall.seat_ids, 1):
        out.append(variants[seat_id][state.get(seat_id, "available")])
        out.append(texts[n])
    return Markup("".join(out))
