"""Reading the waiting list: places, offers, the event's waiting list status, the buyer's panel, and ETags.

Nothing here changes state. The polls that show these (the event page's
panel, "My waiting lists") answer 304 while their tag is unchanged, so the
tags are computed here too, next to what they summarise.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from webapp.models import Event, EventStatus, Hold, HoldKind, HoldStatus, Tier, WaitlistEntry, WaitlistStatus
from webapp.services.selling import inventory
from webapp.services.waiting.waitlist import (
    LIVE,
    Place,
    joinable_tiers,
    live_entry,
    place_on_waitlist,
)


@dataclass(frozen=True)
class WaitlistEntryView:
    entry: WaitlistEntry
    place: Place | None  # waiting entries only
    offer: Hold | None  # the live offer, if any
    offer_seconds_left: int | None

    @property
    def tier_name(self) -> str:
        return self.entry.tier.name if self.entry.tier is not None else "Any ticket type"


def _offers_for(session: Session, entry_ids: list[int]) -> dict[int, tuple[Hold, int]]:
    if not entry_ids:
        return {}
    rows = session.execute(
        select(Hold, text("greatest(0, extract(epoch FROM holds.expires_at - now()))::int"))
        .where(Hold.waitlist_entry_id.in_(entry_ids), Hold.kind == HoldKind.OFFER,
               Hold.status == HoldStatus.ACTIVE)
    ).all()
    return {hold.waitlist_entry_id: (hold, seconds) for hold, seconds in rows}


def entries_in_order(session: Session, event_id: int, *, include_ended: bool = False) -> list[WaitlistEntryView]:
    """The event's waiting list in order: places, offers and their time left (admin page).

    Places are computed the way `place_on_waitlist` does, in one pass.
    """
    query = select(WaitlistEntry).where(WaitlistEntry.event_id == event_id).order_by(WaitlistEntry.id)
    if not include_ended:
        query = query.where(WaitlistEntry.status.in_(LIVE))
    entries = session.scalars(query).all()
    offers = _offers_for(session, [e.id for e in entries if e.status == WaitlistStatus.OFFERED])
    result = []
    people = tickets = any_people = any_tickets = 0
    by_tier: dict[int, tuple[int, int]] = {}
    for e in entries:
        place = None
        if e.status == WaitlistStatus.WAITING:
            if e.tier_id is None:
                place = Place(people, tickets)
                any_people, any_tickets = any_people + 1, any_tickets + e.quantity
            else:
                tp, tt = by_tier.get(e.tier_id, (0, 0))
                place = Place(tp + any_people, tt + any_tickets)
                by_tier[e.tier_id] = (tp + 1, tt + e.quantity)
            people, tickets = people + 1, tickets + e.quantity
        hold, seconds = offers.get(e.id, (None, None))
        result.append(WaitlistEntryView(e, place, hold, seconds))
    return result


def my_entries(session: Session, user_id: int, *, ended_limit: int = 10) -> list[WaitlistEntryView]:
    """The buyer's live entries (with place or offer), then their recent ended ones."""
    live = session.scalars(
        select(WaitlistEntry).where(WaitlistEntry.user_id == user_id, WaitlistEntry.status.in_(LIVE))
        .order_by(WaitlistEntry.id.desc())
    ).all()
    ended = session.scalars(
        select(WaitlistEntry).where(WaitlistEntry.user_id == user_id, WaitlistEntry.status.not_in(LIVE))
        .order_by(WaitlistEntry.updated_at.desc()).limit(ended_limit)
    ).all()
    offers = _offers_for(session, [e.id for e in live if e.status == WaitlistStatus.OFFERED])
    result = []
    for e in [*live, *ended]:
        place = place_on_waitlist(session, e) if e.status == WaitlistStatus.WAITING else None
        hold, seconds = offers.get(e.id, (None, None))
        result.append(WaitlistEntryView(e, place, hold, seconds))
    return result


def entry_view(session: Session, entry: WaitlistEntry | None) -> WaitlistEntryView | None:
    if entry is None:
        return None
    place = place_on_waitlist(session, entry) if entry.status == WaitlistStatus.WAITING else None
    hold, seconds = _offers_for(session, [entry.id]).get(entry.id, (None, None))
    return WaitlistEntryView(entry, place, hold, seconds)


@dataclass(frozen=True)
class OfferNotice:
    hold_id: int
    event_id: int
    event_title: str
    quantity: int
    expires_at: datetime


_LIVE_OFFERS = (
    "SELECT h.id, h.event_id, e.title, cardinality(h.unit_ids) AS quantity, h.expires_at FROM holds h"
    " JOIN events e ON e.id = h.event_id"
    " WHERE h.user_id = {user} AND h.kind = 'offer' AND h.status = 'active' AND h.expires_at > now()"
)
_LIVE_OFFERS_OF = text(_LIVE_OFFERS.format(user=":u") + " ORDER BY h.expires_at")
# The same offers as one JSON value, for a statement that reads the user's row
# anyway (session_user.load on full pages): the banner then costs no statement.
LIVE_OFFERS_JSON = (
    "(SELECT json_agg(json_build_array(o.id, o.event_id, o.title, o.quantity, o.expires_at) ORDER BY o.expires_at)"
    f" FROM ({_LIVE_OFFERS.format(user='users.id')}) o)"
)


def live_offers(session: Session, user_id: int) -> list[OfferNotice]:
    """Offers waiting for this buyer's answer (the banner on every page)."""
    return [OfferNotice(*r) for r in session.execute(_LIVE_OFFERS_OF, {"u": user_id}).all()]


def offers_from_json(value: list | None) -> list[OfferNotice]:
    """`LIVE_OFFERS_JSON`'s value as the banner's notices."""
    return [OfferNotice(int(i), int(e), title, int(n), datetime.fromisoformat(expires))
            for i, e, title, n, expires in value or ()]


@dataclass(frozen=True)
class TierWaitlistSummary:
    tier: Tier
    capacity: int
    available: int  # what the public can buy now
    set_aside: int  # free, but kept for the people waiting
    held: int  # in shopping baskets
    offered: int  # held as offers for people waiting
    sold: int
    blocked: int
    waiting_people: int  # entries for this tier (entries for any tier are counted per event)
    waiting_tickets: int


@dataclass(frozen=True)
class WaitlistSummary:
    tiers: list[TierWaitlistSummary]
    waiting_people: int
    waiting_tickets: int
    offers_out: int  # people holding an offer right now

    def total(self, field: str) -> int:
        return sum(getattr(t, field) for t in self.tiers)

    @property
    def available(self) -> int:
        return self.total("available")

    @property
    def held(self) -> int:
        return self.total("held") + self.total("offered")

    @property
    def sold(self) -> int:
        return self.total("sold")


def event_status(session: Session, event: Event, counts: dict[int, inventory.TierCounts] | None = None,
                 reserved: set[int] | None = None) -> WaitlistSummary:
    """Available, held, sold and waiting for an event, per tier and in total."""
    counts = inventory.tier_counts(session, event.id) if counts is None else counts
    reserved = inventory.tiers_kept_for_waitlist(session, event.id) if reserved is None else reserved
    figures = inventory.waitlist_figures(session, event.id)
    offered: dict[int, int] = {int(k): v for k, v in (figures.offered or {}).items()}
    waiting = {int(k): (v[0], int(v[1])) for k, v in (figures.waiting or {}).items()}
    offers_out = figures.offers_out
    tiers = []
    for t in event.tiers:
        c = counts.get(t.id)
        if c is None:
            continue
        free_public = 0 if t.id in reserved else c.available
        people, tickets = waiting.get(t.id, (0, 0))
        tiers.append(TierWaitlistSummary(
            tier=t, capacity=c.capacity, available=free_public, set_aside=c.available - free_public,
            held=c.held - offered.get(t.id, 0), offered=offered.get(t.id, 0), sold=c.sold, blocked=c.blocked,
            waiting_people=people, waiting_tickets=tickets,
        ))
    return WaitlistSummary(
        tiers=tiers,
        waiting_people=sum(p for p, _ in waiting.values()),
        waiting_tickets=sum(n for _, n in waiting.values()),
        offers_out=offers_out,
    )


@dataclass(frozen=True)
class BuyerPanel:
    status: WaitlistSummary
    mine: WaitlistEntryView | None  # the buyer's live entry for this event
    joinable: list[Tier]  # sold-out tiers the buyer could join the waiting list for
    can_join_any: bool  # every tier is sold out: "any ticket type" is on offer too
    waitlist_open: bool  # on sale, with a waiting list
    tag: str | None  # while the buyer waits: the version the panel's poll sends (`watch_tag`)


def buyer_panel(session: Session, event: Event, user_id: int | None, *, tag: str | None = None) -> BuyerPanel:
    """What the event page shows about the waiting list, for this buyer (`tag`: its `watch_tag`, if known)."""
    mine = None
    # The page's one read (catalog.read_event_page) may already know there is no entry.
    if user_id and session.info.get(inventory.READS, {}).get(("has_entry", event.id, user_id), True):
        mine = entry_view(session, live_entry(session, user_id=user_id, event_id=event.id))
    waitlist_open = event.status == EventStatus.ON_SALE and event.waitlist_enabled
    # One count of the unit rows serves both the status and the join form.
    counts = inventory.tier_counts(session, event.id)
    reserved = inventory.tiers_kept_for_waitlist(session, event.id)
    joinable = joinable_tiers(session, event, counts, reserved) if waitlist_open and mine is None else []
    return BuyerPanel(
        status=event_status(session, event, counts, reserved), mine=mine, joinable=joinable,
        can_join_any=bool(joinable) and len(joinable) == len(event.tiers) and len(event.tiers) > 1,
        waitlist_open=waitlist_open,
        tag=(tag or watch_tag(session, event.id, user_id)) if mine and mine.entry.status == WaitlistStatus.WAITING
        else None,
    )


_WATCH = text("""
SELECT (SELECT coalesce(sum(version), 0) FROM inventory_clock WHERE event_id = :e) AS version,
       (SELECT session_version FROM users WHERE id = CAST(:u AS integer)) AS session_version,
       line.people, line.tickets, line.newest, mine.id AS entry_id, mine.status AS entry_status,
       coalesce(ahead.people, 0) AS ahead_people, coalesce(ahead.tickets, 0) AS ahead_tickets
FROM (SELECT count(*) AS people, coalesce(sum(quantity), 0) AS tickets, coalesce(max(id), 0) AS newest
      FROM waitlist_entries WHERE event_id = :e AND status = 'waiting') line
LEFT JOIN LATERAL (
    SELECT id, status, tier_id FROM waitlist_entries
    WHERE user_id = CAST(:u AS integer) AND event_id = :e AND status IN ('waiting', 'offered') LIMIT 1
) mine ON true
LEFT JOIN LATERAL (
    -- place_on_waitlist's rule: waiting entries before this one that compete for its tiers
    SELECT count(*) AS people, coalesce(sum(quantity), 0) AS tickets FROM waitlist_entries w
    WHERE mine.status = 'waiting' AND w.event_id = :e AND w.status = 'waiting' AND w.id < mine.id
      AND (mine.tier_id IS NULL OR w.tier_id IS NULL OR w.tier_id = mine.tier_id)
) ahead ON true
""")


def watch_tag(session, event_id: int, user_id: int | None) -> str:
    """A version of what the buyer's panel shows, so its poll can answer 304.

    It moves when units move (the inventory clock), when the waiting list changes
    (joins, leaves, offers) and when the buyer's own place or entry changes.
    One statement: it is what every waiting buyer's poll costs (a session or
    a connection of `single_statement`).
    """
    return _watch_tag(event_id, session.execute(_WATCH, {"e": event_id, "u": user_id}).one())


def watch_tag_for_claim(connection, event_id: int, claim: tuple[int, int] | None) -> tuple[str, int | None]:
    """The poll's tag and the buyer's id, checking the cookie's session claim in the same statement.

    `claim`: (user id, session version) as the cookie claims them; the id
    counts only while the database still holds that session version.
    """
    row = connection.execute(_WATCH, {"e": event_id, "u": claim[0] if claim else None}).one()
    user_id = claim[0] if claim is not None and row.session_version == claim[1] else None
    if claim is not None and user_id is None:
        # A session that was ended: the tag must not carry that account's place.
        row = connection.execute(_WATCH, {"e": event_id, "u": None}).one()
    return _watch_tag(event_id, row), user_id


def _watch_tag(event_id: int, r) -> str:
    mine = "-"
    if r.entry_id is not None:
        mine = f"{r.entry_id}.{r.entry_status}.{r.ahead_people}.{int(r.ahead_tickets)}"
    return f"w{event_id}-v{r.version}-l{r.people}.{int(r.tickets)}.{r.newest}-m{mine}"


def mine_tag(entries: list[WaitlistEntryView]) -> str:
    """A version of the buyer's "My waiting lists" page, so its poll can answer 304."""
    return "m" + "-".join(
        f"{e.entry.id}.{e.entry.status.value}.{e.place.ahead_people if e.place else ''}.{e.offer.id if e.offer else ''}"
        for e in entries
    )
