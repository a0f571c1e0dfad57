"""Read-only queries for the buyer pages: listings, maps, availability."""
from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, TypeVar

from markupsafe import Markup, escape
from sqlalchemy import func, or_, select, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, selectinload

from webapp.models import Event, EventStatus, Hold, HoldKind, HoldStatus, Tier, Unit, seat_label
from webapp.parsing import like_pattern
from webapp.services.selling import inventory
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


# ---------------------------------------------------------------------------
# An event as the buyer pages read it: a snapshot of its row and its tiers,
# kept per row version, so a page view does not load and map ORM objects.
# ---------------------------------------------------------------------------

class _Snapshot:
    """Plain, read-only copies of a model's columns; the model's properties work on it too."""

    _model: type

    def __init__(self, values: dict) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str):
        attr: object = getattr(self._model, name, None)
        if isinstance(attr, property) and attr.fget is not None:
            return attr.fget(self)
        raise AttributeError(name)

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only (shared between requests)")


S = TypeVar("S", bound=_Snapshot)


class TierSnapshot(_Snapshot):
    _model = Tier


class EventSnapshot(_Snapshot):
    """Reads like an `Event` (columns, `tiers` in their order, `is_seated`, `on_sale`)."""

    _model = Event


def _copy(model: type, obj, cls: type[S], **extra) -> S:
    mapper: Any = sa_inspect(model)
    keys: list[str] = [column.key for column in mapper.column_attrs]
    return cls({key: getattr(obj, key) for key in keys} | extra)


# The row versions of the event and its tiers: any UPDATE moves a row's xmin,
# so a snapshot found under this key is the rows as they are now. The creation
# time tells apart an id reused in a rebuilt database.
_EVENT_ROW_VERSION = text(
    "SELECT e.created_at::text || '/' || e.xmin::text || '/' || coalesce("
    "  (SELECT string_agg(t.id || '.' || t.xmin::text, ',' ORDER BY t.id) FROM tiers t WHERE t.event_id = e.id), '')"
    " FROM events e WHERE e.id = :e"
)
_EVENTS: OrderedDict[tuple[int, str], EventSnapshot] = OrderedDict()
_EVENTS_LOCK = threading.Lock()
_EVENTS_KEPT = 256


def event_snapshot(session: Session, event_id: int) -> EventSnapshot | None:
    """The event and its tiers as they are now, or None; one short statement when seen before."""
    version = session.execute(_EVENT_ROW_VERSION, {"e": event_id}).scalar()
    if version is None:
        return None
    key = (event_id, version)
    with _EVENTS_LOCK:
        snapshot = _EVENTS.get(key)
        if snapshot is not None:
            _EVENTS.move_to_end(key)
            return snapshot
    event = session.get(Event, event_id, options=[selectinload(Event.tiers)])
    if event is None:
        return None
    # Built from rows read after the version: the same rows or newer ones,
    # and newer rows carry a newer key, so this key never shows older data.
    tiers = tuple(_copy(Tier, t, TierSnapshot) for t in event.tiers)
    snapshot = _copy(Event, event, EventSnapshot, tiers=tiers)
    with _EVENTS_LOCK:
        _EVENTS[key] = snapshot
        while len(_EVENTS) > _EVENTS_KEPT:
            _EVENTS.popitem(last=False)
    return snapshot


def public_event(session: Session, event_id: int, *, staff: bool | Callable[[], bool] = False,
                 unlocked: Collection[int] = ()) -> EventSnapshot | None:
    """An event as buyers may see it, with its tiers: drafts exist for staff only.

    `staff` may be a callable, asked only for a draft (a page's user check is then not forced).
    Hidden tiers are left out unless `unlocked` (by the buyer's access codes) names them, so
    every page drawn from the snapshot (picker, map legend, waiting list, totals) leaves them out too.
    """
    event = event_snapshot(session, event_id)
    if event is None or (event.status == EventStatus.DRAFT and not (staff() if callable(staff) else staff)):
        return None
    if any(t.hidden for t in event.tiers):
        visible = tuple(t for t in event.tiers if not t.hidden or t.id in unlocked)
        locked = frozenset(t.id for t in event.tiers if t not in visible)
        return EventSnapshot({**event.__dict__, "tiers": visible, "has_hidden_tiers": True,
                              "locked_tier_ids": locked, "is_seated": event.is_seated})
    return event


def live_tag(event_id: int, user_id: int | None, version: int) -> str:
    """The seat map's version for one buyer: the event's inventory version, and whose "mine" it shows.

    Per buyer, because "held by you" differs; cheap, because the version is
    one indexed sum over a few clock rows.
    """
    return f"e{event_id}-v{version}-u{user_id or 0}"


@dataclass(frozen=True)
class TierView:
    tier: Tier
    available: int
    sold_out: bool  # for the public: nothing left, or the line comes first


def tier_views(session: Session, event: Event) -> list[TierView]:
    counts = inventory.tier_counts(session, event.id)
    reserved = inventory.tiers_kept_for_waitlist(session, event.id)
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


_EVENT_PAGE = None


def _event_page_statement():
    global _EVENT_PAGE
    if _EVENT_PAGE is None:
        _EVENT_PAGE = text(
            "WITH line AS MATERIALIZED (SELECT tb_line_reserved_tiers(:e) AS reserved)"
            " SELECT (SELECT json_agg(json_build_array(c.id, c.capacity, c.available, c.held, c.sold, c.blocked))"
            f" FROM ({inventory.TIER_COUNTS_SQL}) c) AS counts,"
            " line.reserved,"
            f" CASE WHEN :seated THEN {_SEAT_STATES_COLUMN} END AS seats,"
            " (SELECT coalesce(sum(version), 0) FROM inventory_clock WHERE event_id = :e) AS version,"
            " EXISTS (SELECT 1 FROM holds WHERE user_id = CAST(:u AS integer) AND event_id = :e"
            "   AND status = 'active' AND kind = 'purchase' AND expires_at > now()) AS has_basket,"
            " EXISTS (SELECT 1 FROM waitlist_entries WHERE user_id = CAST(:u AS integer) AND event_id = :e"
            "   AND status IN ('waiting', 'offered')) AS has_entry,"
            f"{inventory.WAITLIST_FIGURES_COLUMNS}"
            " FROM line"
        )
    return _EVENT_PAGE


def read_event_page(session: Session, event: Event, user_id: int | None) -> None:
    """What the event page reads about the event's stock, seats and line, and whether the
    buyer has a basket or a place in line, in one statement instead of six.

    The answers go where the page's readers look first (`inventory.read_once`:
    tier counts, the tiers kept for the line, the inventory version, the
    line's figures, the seat states), so the readers stay as they are and the unit of work
    sees one snapshot. The buyer's basket and entry are read in full only
    when this says they exist.
    """
    event_id = event.id
    row = session.execute(_event_page_statement(), {"e": event_id, "u": user_id, "seated": event.is_seated}).one()
    reads = session.info.setdefault(inventory.READS, {})
    if row.seats is not None:
        reads[("seat_states", event_id, user_id)] = row.seats
    reads[("tier_counts", event_id)] = {c[0]: inventory.TierCounts(*c) for c in row.counts or ()}
    reads[("waitlist_kept", event_id)] = row.reserved
    reads[("version", event_id)] = row.version
    reads[("waitlist_figures", event_id)] = inventory.WaitlistFigures(row.offered, row.waiting, row.offers_out)
    if user_id is not None:
        reads[("has_basket", event_id, user_id)] = row.has_basket
        reads[("has_entry", event_id, user_id)] = row.has_entry


def active_hold(session: Session, event_id: int, user_id: int) -> Hold | None:
    """The buyer's live basket for this event, if any (there is at most one)."""
    if not session.info.get(inventory.READS, {}).get(("has_basket", event_id, user_id), True):
        return None  # read_event_page found none
    return session.scalars(
        select(Hold).where(Hold.user_id == user_id, Hold.event_id == event_id, Hold.status == HoldStatus.ACTIVE,
                           Hold.kind == HoldKind.PURCHASE, Hold.expires_at > func.now())
    ).first()


# The seats a buyer cannot pick, as three id lists [taken, blocked, mine];
# `line.reserved` is the tiers kept for the waiting list. Also a part of the
# event page's one read (read_event_page).
_SEAT_STATES_COLUMN = (
    "(SELECT json_build_array("
    "   coalesce(json_agg(s.id ORDER BY s.id) FILTER (WHERE s.state = 'taken'), '[]'),"
    "   coalesce(json_agg(s.id ORDER BY s.id) FILTER (WHERE s.state = 'blocked'), '[]'),"
    "   coalesce(json_agg(s.id ORDER BY s.id) FILTER (WHERE s.state = 'mine'), '[]'),"
    "   count(*) FILTER (WHERE s.status = 'held'), count(*) FILTER (WHERE s.status = 'sold'),"
    "   coalesce(json_agg(s.tier_id), '[]'))"
    " FROM (SELECT u.id, u.status, u.tier_id,"
    "              CASE WHEN u.status = 'held' AND h.user_id = CAST(:u AS integer) THEN 'mine'"
    "                   WHEN u.status = 'blocked' THEN 'blocked' ELSE 'taken' END AS state"
    "       FROM units u LEFT JOIN holds h ON h.id = u.hold_id"
    "       WHERE u.event_id = :e AND u.seat_number IS NOT NULL"
    "         AND (u.status <> 'available' OR u.tier_id = ANY(line.reserved))) s)"
)
_SEAT_STATES = text(
    f"WITH line AS (SELECT CAST(:reserved AS integer[]) AS reserved) SELECT {_SEAT_STATES_COLUMN} FROM line")


def seat_states(session: Session, event: Event, *, user_id: int | None = None) -> dict[str, list[int]]:
    """The seats a buyer cannot pick right now, for live map updates.

    Only the exceptions travel (every other seat is available), so the answer
    stays small on a big hall: taken or blocked seats, seats of tiers kept for
    the waiting list, and the buyer's own held seats.
    """
    def read():
        reserved = sorted(inventory.tiers_kept_for_waitlist(session, event.id))
        return session.execute(_SEAT_STATES, {"e": event.id, "u": user_id, "reserved": reserved}).scalar_one()

    taken, blocked, mine, held, sold, not_free_tiers = inventory.read_once(
        session, ("seat_states", event.id, user_id), read)
    states: dict[str, list[int]] = {"taken": taken, "blocked": blocked, "mine": mine}
    if event.locked_tier_ids:
        # Seats of hidden tiers the buyer's codes do not unlock: never pickable, whatever their state.
        locked = set(_hall(session, event).seats_of(event.locked_tier_ids))
        states = {"taken": [i for i in taken if i not in locked], "mine": [i for i in mine if i not in locked],
                  "blocked": sorted(set(blocked) | locked)}
    # The page's figures follow from the same rows: every seat not listed is
    # free for the public, so a tier's public availability is its capacity
    # less its rows here (invariant 2: capacity = available + held + sold + blocked).
    not_free = Counter(not_free_tiers)
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
    reserved = inventory.tiers_kept_for_waitlist(session, event.id) if rows else set()
    by_tier: dict[int, list[str]] = {}
    unavailable = []
    for r in rows:
        label = seat_label(r.section, r.row_label, r.seat_number)
        if r.status != "available" or r.tier_id in reserved or r.tier_id not in tiers:
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
    sections: tuple[str, ...] = ()  # drawing order; the section overview links to #section-<n>, counted from 1
    seats_by_tier: dict[int, list[int]] = field(default_factory=dict)

    def seats_of(self, tier_ids: Collection[int]) -> list[int]:
        return [seat for tier in tier_ids for seat in self.seats_by_tier.get(tier, ())]


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

    # A hidden tier's seat, for a buyer whose codes do not unlock it: not for
    # sale, and neither its tier's name, price nor colour.
    place = escape(seat_label(seat.section, seat.row_label, seat.seat_number))
    locked = (f'{head}blocked" title="{place}" style="grid-area:{grid_row}/{grid_col}">'
              f'<input type="checkbox" name="seat" value="{seat.id}" id="seat-{seat.id}" data-x="{seat.x}"'
              f' data-y="{seat.y}" aria-label="{place}, {_STATUS_WORDS["blocked"]}" disabled{tail}')
    return {"available": one("available", ""), "checked": one("available", " checked"),
            "taken": one("taken", " disabled"), "blocked": one("blocked", " disabled"),
            "mine": one("mine", " disabled"), "locked": locked}


def _build_hall(session: Session, event: Event) -> _Hall:
    from flask import render_template

    # Geometry only: the live state is filled in per request (hall_markup).
    sections = group_sections(seat_rows(session, event.id))
    # Every tier, hidden ones too: the geometry is shared by all buyers (hall_markup hides what is locked).
    full = event_snapshot(session, event.id) if event.has_hidden_tiers else None
    every_tier = full.tiers if full is not None else event.tiers
    tiers = {t.id: t for t in every_tier}
    rendered = render_template("shop/_hall.html", sections=sections, tiers=every_tier)
    pieces = rendered.split("\x00")
    texts, ids = pieces[0::2], [int(p) for p in pieces[1::2]]
    variants = {}
    seats_by_tier: dict[int, list[int]] = {}
    for section in sections:
        for _, row in section.rows:
            for seat in row:
                variants[seat.id] = _seat_variants(seat, tiers[seat.tier_id], seat.y - section.min_y + 1,
                                                   seat.x - section.min_x + 2)
                seats_by_tier.setdefault(seat.tier_id, []).append(seat.id)
    return _Hall(texts, ids, variants, tuple(section.name for band in _bands(sections) for section in band),
                 seats_by_tier)


def _bands(sections):
    """Sections in the order _hall.html draws them: bands by top row, each band left to right."""
    bands: dict = {}
    for section in sorted(sections, key=lambda s: s.min_y):
        bands.setdefault(section.min_y, []).append(section)
    return list(bands.values())


def _hall(session: Session, event: Event) -> _Hall:
    """The hall's geometry, cached per layout version.

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
    return hall


def section_names(session: Session, event: Event) -> tuple[str, ...]:
    """The hall's sections in drawing order, from the same cached geometry as the map."""
    return _hall(session, event).sections


def hall_markup(session: Session, event: Event, states: dict[str, list[int]], selected: set[int]) -> Markup:
    """The hall of seats with their live state: cached geometry (_hall), state per request."""
    hall = _hall(session, event)
    state = dict.fromkeys(states.get("taken", ()), "taken")
    state.update(dict.fromkeys(states.get("blocked", ()), "blocked"))
    state.update(dict.fromkeys(states.get("mine", ()), "mine"))
    state.update((i, "checked") for i in selected if i not in state)
    if event.locked_tier_ids:
        state.update(dict.fromkeys(hall.seats_of(event.locked_tier_ids), "locked"))
    out = [hall.texts[0]]
    variants, texts = hall.variants, hall.texts
    for n, seat_id in enumerate(hall.seat_ids, 1):
        out.append(variants[seat_id][state.get(seat_id, "available")])
        out.append(texts[n])
    return Markup("".join(out))


@dataclass(frozen=True)
class EventPageView:
    """What the event page and its partials draw around the buyer's picks."""

    tiers: list[TierView]
    preview: BasketPreview
    hold: Hold | None = None  # the buyer's basket, when asked for (the page body's banner)
    quantities: dict[int, int] = field(default_factory=dict)  # general admission: the picks, within what is left
    selected: frozenset[int] = frozenset()  # seated: the picked seats that are still free
    hall: Markup | None = None
    live: str | None = None  # the seat map poller's tag
    sections: tuple[str, ...] = ()


def event_page_view(session: Session, event: Event, user_id: int | None, *, seats: Collection[int] = (),
                    quantities: dict[int, int] | None = None, with_basket: bool = False) -> EventPageView:
    """The event page around the buyer's picks, from one read of the event's stock, seats and line.

    The page, its seat map, its tier picker and the answers to a refused
    reserve all draw from here, so they all show one snapshot at the price of
    one statement (`read_event_page`): the rest is the picks checked against
    it and the hall's cached geometry. Picks that are no longer possible are
    left out, so the page never offers what cannot be had: a seat taken
    since, more places than are left.
    """
    read_event_page(session, event, user_id)
    tiers = tier_views(session, event)
    hold = active_hold(session, event.id, user_id) if with_basket and user_id else None
    if not event.is_seated:
        left = {tv.tier.id: tv.available for tv in tiers}
        chosen = {t: max(0, min(n, left[t])) for t, n in (quantities or {}).items() if t in left}
        return EventPageView(tiers, preview_quantities(session, event, chosen), hold, quantities=chosen)
    states = seat_states(session, event, user_id=user_id)
    not_free = set(states["taken"]) | set(states["blocked"]) | set(states["mine"])
    picked = [s for s in seats if s not in not_free]
    return EventPageView(
        tiers, preview_seats(session, event, picked, user_id=user_id), hold, selected=frozenset(picked),
        hall=hall_markup(session, event, states, set(picked)),
        live=live_tag(event.id, user_id, inventory.inventory_version(session, event.id)),
        sections=section_names(session, event))
