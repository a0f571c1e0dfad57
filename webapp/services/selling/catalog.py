"""What the buyer's event page reads about one event's stock: tier figures, seat states, basket previews.

The catalog's other parts live beside it, one job each: `listings` (the event
list), `event_snapshots` (an event as buyers see it, kept per row version) and
`hall_layout` (where the seats are, kept per layout version). Their names are
re-exported here, so callers keep reading the catalog as `catalog.x`; the seat
map's markup is drawn on the shop's side (webapp/shop/hall.py).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from webapp.models import Event, Hold, HoldKind, HoldStatus, Tier, seat_label
from webapp.services.selling import hall_layout, inventory
from webapp.services.selling.event_snapshots import EventSnapshot as EventSnapshot
from webapp.services.selling.event_snapshots import TierSnapshot as TierSnapshot
from webapp.services.selling.event_snapshots import event_snapshot as event_snapshot
from webapp.services.selling.event_snapshots import public_event as public_event
from webapp.services.selling.hall_layout import SeatView as SeatView
from webapp.services.selling.hall_layout import SectionView as SectionView
from webapp.services.selling.hall_layout import group_sections as group_sections
from webapp.services.selling.hall_layout import seat_rows as seat_rows
from webapp.services.selling.hall_layout import section_names as section_names
from webapp.services.selling.listings import EventCard as EventCard
from webapp.services.selling.listings import listed_events as listed_events
from webapp.services.selling.venue_sections import VenueOverview as VenueOverview
from webapp.services.selling.venue_sections import is_large as is_large
from webapp.services.selling.venue_sections import overview as overview
from webapp.services.selling.venue_sections import tier_counts as venue_tier_counts


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
    sold_out: bool  # for the public: nothing left, or the waiting list comes first


def tier_views(session: Session, event: Event) -> list[TierView]:
    counts = inventory.tier_counts(session, event.id)
    reserved = inventory.tiers_kept_for_waitlist(session, event.id)
    views = []
    for tier in event.tiers:
        c = counts.get(tier.id)
        available = 0 if (c is None or tier.id in reserved) else c.available
        views.append(TierView(tier=tier, available=available, sold_out=available == 0))
    return views


_EVENT_PAGE = None


def _event_page_statement():
    global _EVENT_PAGE
    if _EVENT_PAGE is None:
        _EVENT_PAGE = text(
            "WITH kept AS MATERIALIZED (SELECT tb_waitlist_reserved_tiers(:e) AS reserved)"
            " SELECT CASE WHEN :count_tiers THEN (SELECT json_agg(json_build_array("
            "   c.id, c.capacity, c.available, c.held, c.sold, c.blocked))"
            f" FROM ({inventory.TIER_COUNTS_SQL}) c) END AS counts,"
            " kept.reserved,"
            f" CASE WHEN :seated THEN {_SEAT_STATES_COLUMN} END AS seats,"
            " (SELECT coalesce(sum(version), 0) FROM inventory_clock WHERE event_id = :e) AS version,"
            " EXISTS (SELECT 1 FROM holds WHERE user_id = CAST(:u AS integer) AND event_id = :e"
            "   AND status = 'active' AND kind = 'purchase' AND expires_at > now()) AS has_basket,"
            " EXISTS (SELECT 1 FROM waitlist_entries WHERE user_id = CAST(:u AS integer) AND event_id = :e"
            "   AND status IN ('waiting', 'offered')) AS has_entry,"
            f"{inventory.WAITLIST_FIGURES_COLUMNS}"
            " FROM kept"
        )
    return _EVENT_PAGE


# A big venue's event page: its sections, no seat (see venue_sections).
OVERVIEW = "\x00overview"


def read_event_page(session: Session, event: Event, user_id: int | None, section: str | None = None,
                    counted: dict[int, inventory.TierCounts] | None = None) -> None:
    """What the event page reads about the event's stock, seats and waiting list, and
    whether the buyer has a basket or a place on it, in one statement instead of six.

    The answers go where the page's readers look first (`inventory.read_once`:
    tier counts, the tiers kept for the waiting list, the inventory version, the
    waiting list's figures, the seat states), so the readers stay as they are and the unit of work
    sees one snapshot. The buyer's basket and entry are read in full only
    when this says they exist. `section`: the seat states of that section
    only; OVERVIEW: none. `counted`: the tier counts, known already (a big
    venue's, kept per inventory version), so not counted again.
    """
    event_id = event.id
    row = session.execute(_event_page_statement(),
                          {"e": event_id, "u": user_id, "seated": event.is_seated and section != OVERVIEW,
                           "section": None if section == OVERVIEW else section,
                           "count_tiers": counted is None}).one()
    reads = session.info.setdefault(inventory.READS, {})
    if row.seats is not None:
        reads[("seat_states", event_id, user_id, section)] = row.seats
    reads[("tier_counts", event_id)] = counted if counted is not None else {
        c[0]: inventory.TierCounts(*c) for c in row.counts or ()}
    reads[("waitlist_kept", event_id)] = row.reserved
    # With counts kept for an earlier version, the page is tagged with that
    # version: its next poll then fetches, never trusts, what changed since.
    if counted is None:
        reads[("version", event_id)] = row.version
    else:
        reads.setdefault(("version", event_id), row.version)
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
# `kept.reserved` is the tiers kept for the waiting list. Also a part of the
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
    # One section of a big venue: its rows only, through the index that leads
    # with (event_id, section), so the read does not grow with the venue.
    "         AND (CAST(:section AS text) IS NULL OR u.section = CAST(:section AS text))"
    "         AND (u.status <> 'available' OR u.tier_id = ANY(kept.reserved))) s)"
)
_SEAT_STATES = text(
    f"WITH kept AS (SELECT CAST(:reserved AS integer[]) AS reserved) SELECT {_SEAT_STATES_COLUMN} FROM kept")


def seat_states(session: Session, event: Event, *, user_id: int | None = None,
                section: str | None = None) -> dict[str, list[int]]:
    """The seats a buyer cannot pick right now, for live map updates (of one `section`, if given).

    Only the exceptions travel (every other seat is available), so the answer
    stays small on a big hall: taken or blocked seats, seats of tiers kept for
    the waiting list, and the buyer's own held seats. A section's states
    leave out the event's figures, which only the whole hall adds up to.
    """
    def read():
        reserved = sorted(inventory.tiers_kept_for_waitlist(session, event.id))
        return session.execute(_SEAT_STATES, {"e": event.id, "u": user_id, "reserved": reserved,
                                              "section": section}).scalar_one()

    taken, blocked, mine, held, sold, not_free_tiers = inventory.read_once(
        session, ("seat_states", event.id, user_id, section), read)
    states: dict[str, list[int]] = {"taken": taken, "blocked": blocked, "mine": mine}
    if event.locked_tier_ids:
        # Seats of hidden tiers the buyer's codes do not unlock: never pickable, whatever their state.
        locked = set(hall_layout.for_event(session, event).seats_of(event.locked_tier_ids))
        if section is not None:
            locked &= set(hall_layout.for_event(session, event).seats_of_section(section))
        states = {"taken": [i for i in taken if i not in locked], "mine": [i for i in mine if i not in locked],
                  "blocked": sorted(set(blocked) | locked)}
    if section is not None:
        return states
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


@dataclass(frozen=True)
class EventPageView:
    """What the event page and its partials draw around the buyer's picks."""

    tiers: list[TierView]
    preview: BasketPreview
    hold: Hold | None = None  # the buyer's basket, when asked for (the page body's banner)
    quantities: dict[int, int] = field(default_factory=dict)  # general admission: the picks, within what is left
    selected: frozenset[int] = frozenset()  # seated: the picked seats that are still free
    seat_states: dict[str, list[int]] | None = None  # seated: for drawing the hall (shop/hall.py)
    live: str | None = None  # the seat map poller's tag
    sections: tuple[str, ...] = ()
    seat_features: tuple[str, ...] = ()  # seated: the seat properties the hall has (the legend, the filter)
    overview: VenueOverview | None = None  # a big venue's event page: its sections, no seats


def event_page_view(session: Session, event: Event, user_id: int | None, *, seats: Collection[int] = (),
                    quantities: dict[int, int] | None = None, with_basket: bool = False,
                    section: str | None = None) -> EventPageView:
    """The event page around the buyer's picks, from one read of the event's stock, seats and waiting list.

    The page, its seat map, its tier picker and the answers to a refused
    reserve all draw from here, so they all show one snapshot at the price of
    one statement (`read_event_page`): the rest is the picks checked against
    it and the hall's cached geometry. Picks that are no longer possible are
    left out, so the page never offers what cannot be had: a seat taken
    since, more places than are left. A big venue's page shows one
    `section`, or with OVERVIEW its sections and no seat.
    """
    # A big venue's page: a whole-event count per request would grow with the
    # venue, so its tier counts come from the counts kept per inventory version.
    counted = venue_tier_counts(session, event) if section is not None else None
    read_event_page(session, event, user_id, section, counted)
    tiers = tier_views(session, event)
    hold = active_hold(session, event.id, user_id) if with_basket and user_id else None
    if not event.is_seated:
        left = {tv.tier.id: tv.available for tv in tiers}
        chosen = {t: max(0, min(n, left[t])) for t, n in (quantities or {}).items() if t in left}
        return EventPageView(tiers, preview_quantities(session, event, chosen), hold, quantities=chosen)
    version = inventory.inventory_version(session, event.id)
    if section == OVERVIEW:
        return EventPageView(tiers, preview_seats(session, event, [], user_id=user_id), hold,
                             live=live_tag(event.id, user_id, version), overview=overview(session, event))
    states = seat_states(session, event, user_id=user_id, section=section)
    not_free = set(states["taken"]) | set(states["blocked"]) | set(states["mine"])
    picked = [s for s in seats if s not in not_free]
    layout = hall_layout.for_event(session, event)
    return EventPageView(
        tiers, preview_seats(session, event, picked, user_id=user_id), hold, selected=frozenset(picked),
        seat_states=states, live=live_tag(event.id, user_id, version),
        sections=() if section is not None else layout.section_names, seat_features=layout.features)
