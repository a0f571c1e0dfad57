"""The waiting list: who is in line for what, and offers made from released units.

Released units go to the line first (invariant 4). `inventory` and `checkout`
call `offer_released_units` whenever units come free, in the same
transaction, so offers are made under the same locks as the release.

The rule for multi-ticket entries
---------------------------------
The line is strict: units go to the first waiting entry that covers their
tier, and nobody behind it is served from that tier before it is.

- By default an entry is offered all its tickets or nothing. Free units are
  set aside (the public sees the tier as sold out) until there are enough for
  the first entry. Skipping a group of 3 in favour of a single behind it would
  let a stream of singles starve the group forever; holding a few units back
  for a while is the smaller harm.
- With the event's `waitlist_partial_offers` on, the first entry is offered
  what is free now (fewer than it asked for) instead of waiting; it may accept
  fewer tickets or decline, which passes them on. Nobody is skipped in either
  mode; partial offers only trade completeness for speed, and no free unit
  ever sits idle while someone waits (the invariant checker verifies both).

An entry for "any tier" is covered by every tier and may be offered units
from several tiers (in the event's tier order).

Locking
-------
Making offers for an event is serialised by a transaction-scoped advisory
lock on the event (`_lock_line`): the last of several concurrent releases to
take it sees every unit the others freed, so no free unit is left behind and
no unit is offered twice. Under it, entries are locked one at a time in line
order with `FOR UPDATE SKIP LOCKED` (an entry locked by someone leaving is
treated as still waiting, so nobody jumps it), and units are taken with
`SKIP LOCKED`, so the lock holder never waits on anything but the clock.
Lock order: hold → units → event row (key share) → line lock → entries →
(free units, skip locked). Code that ends an offer locks the hold before its
entry.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.models import (
    Event,
    EventStatus,
    Hold,
    HoldKind,
    HoldStatus,
    Tier,
    User,
    WaitlistEntry,
    WaitlistStatus,
)
from webapp.services import inventory, outbox
from webapp.services.errors import BookingError, InvalidRequest, LimitExceeded, NotFound, SalesClosed

# Class id of the advisory lock that serialises offer-making for one event
# (the second key is the event id). Any constant works; this one spells "WL".
LINE_LOCK_CLASS = 0x574C
# How long a release may queue for the line lock. Longer than the general
# lock_timeout: the queue is first come, first served and each holder is
# short, so a burst of cancels is served in turn rather than refused; still
# under statement_timeout, so a stuck holder ends as a clear 503.
LINE_LOCK_WAIT_MS = 8000

LIVE = (WaitlistStatus.WAITING, WaitlistStatus.OFFERED)


class AlreadyInLine(BookingError):
    default_message = "You are already on the waiting list for this event."


class NotSoldOut(BookingError):
    default_message = "Tickets are still available: you can book them directly."


class WaitlistClosed(BookingError):
    default_message = "This event has no waiting list."


def tiers_reserved_for_line(session: Session, event_id: int) -> set[int]:
    """Tiers the public cannot buy from because people are waiting for them.

    An entry for "any tier" (tier_id NULL) reserves every tier of the event.
    """
    rows = session.execute(
        text(
            "SELECT DISTINCT coalesce(w.tier_id, t.id) FROM waitlist_entries w"
            " JOIN tiers t ON t.event_id = w.event_id AND (w.tier_id IS NULL OR t.id = w.tier_id)"
            " WHERE w.event_id = :e AND w.status = 'waiting'"
        ),
        {"e": event_id},
    ).scalars()
    return set(rows)


# --------------------------------------------------------------------------
# Offers: made under the line lock, from released units
# --------------------------------------------------------------------------

def _lock_line(session: Session, event_id: int, *, wait: bool = True) -> bool:
    """Take the event's line lock (or try to); True when held.

    The event row is share-locked first, as the foreign-key checks of the
    offer's inserts would do anyway: an admin change that locks the event row
    and then makes offers then waits for us before we hold the line lock,
    never after (which would be a deadlock).
    """
    session.execute(text("SELECT 1 FROM events WHERE id = :e FOR KEY SHARE"), {"e": event_id})
    if wait:
        usual = session.execute(
            text("SELECT current_setting('lock_timeout'), set_config('lock_timeout', :w, true)"),
            {"w": f"{LINE_LOCK_WAIT_MS}ms"},
        ).first()[0]
        session.execute(text("SELECT pg_advisory_xact_lock(:k, :e)"), {"k": LINE_LOCK_CLASS, "e": event_id})
        session.execute(text("SELECT set_config('lock_timeout', :v, true)"), {"v": usual})
        return True
    return session.execute(
        text("SELECT pg_try_advisory_xact_lock(:k, :e)"), {"k": LINE_LOCK_CLASS, "e": event_id}
    ).scalar_one()


def _someone_waiting(session: Session, event_id: int) -> bool:
    return session.execute(
        text("SELECT EXISTS (SELECT 1 FROM waitlist_entries WHERE event_id = :e AND status = 'waiting')"),
        {"e": event_id},
    ).scalar_one()


def offer_released_units(session: Session, event_id: int) -> list[Hold]:
    """Offer free units to the people in line, in line order. Returns the new offers.

    Called after every release (and after joining, leaving or a capacity
    change). Events nobody waits for pay one indexed lookup and no lock; the
    rare join that races a release is caught by `offer_stranded_units`.
    """
    if not _someone_waiting(session, event_id):
        return []
    _lock_line(session, event_id)
    return _offer_to_line(session, event_id)


def _free_by_tier(session: Session, event_id: int) -> dict[int, int]:
    return dict(session.execute(
        text("SELECT tier_id, count(*) FROM units WHERE event_id = :e AND status = 'available' GROUP BY tier_id"),
        {"e": event_id},
    ).all())


def _waiting_entries(session: Session, event_id: int, after_id: int, batch: int):
    # A plain read in line order (the partial index ix_waitlist_line); each
    # entry is locked only when it is about to get an offer.
    return session.execute(
        text(
            "SELECT id, tier_id, quantity, user_id FROM waitlist_entries"
            " WHERE event_id = :e AND status = 'waiting' AND id > :after ORDER BY id LIMIT :n"
        ),
        {"e": event_id, "after": after_id, "n": batch},
    ).all()


def _offer_to_line(session: Session, event_id: int) -> list[Hold]:
    free = _free_by_tier(session, event_id)
    if not any(free.values()):
        return []
    event = session.get(Event, event_id)
    # Queried, not `event.tiers`: a tier added in this transaction (an admin
    # adding capacity) may not be in an already-loaded relationship yet.
    tiers = {t.id: t for t in session.scalars(
        select(Tier).where(Tier.event_id == event_id).order_by(Tier.sort_order, Tier.id)
    )}
    tier_order = list(tiers)
    blocked: set[int] = set()  # tiers whose first waiting entry could not be served
    offers: list[Hold] = []
    last_id = 0
    while True:
        entries = _waiting_entries(session, event_id, last_id, 200)
        if not entries:
            return offers
        for entry_id, tier_id, quantity, user_id in entries:
            last_id = entry_id
            covered = tier_order if tier_id is None else [tier_id]
            usable = [t for t in covered if t not in blocked and free.get(t, 0) > 0]
            available = sum(free[t] for t in usable)
            n = quantity if available >= quantity else (available if event.waitlist_partial_offers else 0)
            taken = _make_offer(session, event, tiers, entry_id, user_id, usable, n) if n else None
            if taken is None:
                # This entry is first in line for these tiers: nobody behind
                # it may be served from them before it is.
                blocked.update(covered)
            else:
                offers.append(taken[0])
                for t, count in taken[1].items():
                    free[t] -= count
            if all(t in blocked or count <= 0 for t, count in free.items()):
                return offers


def _make_offer(session: Session, event: Event, all_tiers: dict[int, Tier], entry_id: int, user_id: int,
                tiers: list[int], n: int) -> tuple[Hold, dict[int, int]] | None:
    """Hold n free units of these tiers for one entry; None if it cannot be done now."""
    entry = session.scalars(
        select(WaitlistEntry)
        .from_statement(text(
            "SELECT * FROM waitlist_entries WHERE id = :id AND status = 'waiting' FOR UPDATE SKIP LOCKED"
        ))
        .params(id=entry_id)
    ).first()
    if entry is None:
        return None  # its owner is leaving right now: treat it as still in line
    savepoint = session.begin_nested()
    unit_ids: list[int] = []
    per_tier: dict[int, int] = {}
    for t in tiers:
        got = inventory._grab_places(session, t, n - len(unit_ids))
        unit_ids += got
        if got:
            per_tier[t] = len(got)
        if len(unit_ids) == n:
            break
    if len(unit_ids) < n:
        # Some free units are locked by a transaction still deciding about
        # them; give back what we took (a savepoint rollback drops the row
        # locks) and let that transaction, or the sweep, finish the job.
        savepoint.rollback()
        return None
    savepoint.commit()
    total = sum(all_tiers[t].price_minor * count for t, count in per_tier.items())
    hold = inventory._create_hold(
        session, event=event, user_id=user_id, unit_ids=unit_ids, total_minor=total,
        currency=all_tiers[next(iter(per_tier))].currency, kind=HoldKind.OFFER,
        minutes=float(event.offer_hours) * 60, waitlist_entry_id=entry.id,
    )
    inventory._mark_held(session, hold)
    entry.status = WaitlistStatus.OFFERED
    session.flush()
    _tell_about_offer(session, event, entry, hold)
    return hold, per_tier


def offer_stranded_units(session: Session, limit: int = 100) -> int:
    """The sweep's safety net: offer free units that nobody offered.

    A join that raced a release, or units locked by someone else at the
    moment of a release, can leave a unit free while an entry that fits it
    waits (the public still cannot take it). Each event is handled under its
    line lock, taken with `try` so several sweepers skip each other's events
    (the holder sees what they would). Returns the number of offers made.
    """
    event_ids = session.scalars(
        text(
            "SELECT DISTINCT w.event_id FROM waitlist_entries w"
            " WHERE w.status = 'waiting' AND EXISTS ("
            "  SELECT 1 FROM units u WHERE u.event_id = w.event_id AND u.status = 'available'"
            "  AND (w.tier_id IS NULL OR u.tier_id = w.tier_id))"
            " LIMIT :n"
        ),
        {"n": limit},
    ).all()
    made = 0
    for event_id in event_ids:
        if _lock_line(session, event_id, wait=False):
            made += len(_offer_to_line(session, event_id))
    return made


# --------------------------------------------------------------------------
# Hooks called when an offer hold ends
# --------------------------------------------------------------------------

def _lock_entry(session: Session, entry_id: int | None) -> WaitlistEntry | None:
    if entry_id is None:
        return None
    return session.scalars(
        select(WaitlistEntry).where(WaitlistEntry.id == entry_id).with_for_update()
    ).first()


def offer_ended(session: Session, hold: Hold) -> None:
    """An offer hold ended without a purchase: the entry lapses.

    Called by `inventory.release_hold` with the hold locked, before the freed
    units are offered to the next person.
    """
    entry = _lock_entry(session, hold.waitlist_entry_id)
    if entry is None or entry.status != WaitlistStatus.OFFERED:
        return  # already marked left/removed by whoever ended it
    entry.status = WaitlistStatus.LAPSED
    session.flush()
    if hold.status == HoldStatus.EXPIRED:
        outbox.queue(session, template="offer_expired", recipient=entry.user.email, event_id=hold.event_id,
                     params={"hold_id": hold.id, "entry_id": entry.id})


def offer_accepted(session: Session, hold: Hold) -> None:
    """The person in line bought their offer: their entry is fulfilled."""
    entry = _lock_entry(session, hold.waitlist_entry_id)
    # Lapsed too: an offer paid for late, its units still free, is a sale.
    if entry is not None and entry.status in (WaitlistStatus.OFFERED, WaitlistStatus.LAPSED):
        entry.status = WaitlistStatus.FULFILLED
        session.flush()


# --------------------------------------------------------------------------
# Buyers: join, leave, decline
# --------------------------------------------------------------------------

def _tickets(n: int) -> str:
    return f"{n} ticket" if n == 1 else f"{n} tickets"


def joinable_tiers(session: Session, event: Event, counts: dict[int, inventory.TierCounts] | None = None,
                   reserved: set[int] | None = None) -> list[Tier]:
    """Tiers the public sees as sold out (nothing free, or the line comes first)."""
    counts = inventory.tier_counts(session, event.id) if counts is None else counts
    reserved = tiers_reserved_for_line(session, event.id) if reserved is None else reserved
    return [
        t for t in event.tiers
        if t.id in reserved or t.id not in counts or counts[t.id].available == 0
    ]


def join(session: Session, *, user_id: int, event_id: int, tier_id: int | None, quantity: int) -> WaitlistEntry:
    """Put the buyer in line for a sold-out tier (or any tier once all are sold out)."""
    event = inventory.get_event(session, event_id)
    if event.status != EventStatus.ON_SALE:
        raise SalesClosed()
    if not event.waitlist_enabled:
        raise WaitlistClosed()
    if quantity < 1:
        raise InvalidRequest("Ask for at least one ticket.")
    if quantity > event.per_order_limit:
        raise LimitExceeded(f"You can ask for at most {event.per_order_limit} tickets.")
    if tier_id is not None and tier_id not in {t.id for t in event.tiers}:
        raise InvalidRequest("Unknown ticket type for this event.")

    existing = live_entry(session, user_id=user_id, event_id=event_id)
    if existing is not None:
        raise AlreadyInLine(_already_message(session, existing))
    sold_out = {t.id for t in joinable_tiers(session, event)}
    if tier_id is None and len(sold_out) < len(event.tiers):
        raise NotSoldOut("Some tickets are still available: book those, or join the line for a sold-out type.")
    if tier_id is not None and tier_id not in sold_out:
        raise NotSoldOut()

    entry = WaitlistEntry(event_id=event_id, tier_id=tier_id, user_id=user_id, quantity=quantity,
                          status=WaitlistStatus.WAITING)
    session.add(entry)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        # A second tab joined at the same moment: the unique index decided.
        raise AlreadyInLine() from None
    # Units may be free and set aside already (a release racing this join):
    # the line lock makes sure they reach the line now.
    offer_released_units(session, event_id)
    return entry


def _already_message(session: Session, entry: WaitlistEntry) -> str:
    if entry.status == WaitlistStatus.OFFERED:
        return "You are already on the waiting list for this event, and tickets are being held for you."
    place = place_in_line(session, entry)
    return f"You are already on the waiting list for this event (number {place.position} in line)."


def live_entry(session: Session, *, user_id: int, event_id: int) -> WaitlistEntry | None:
    return session.scalars(
        select(WaitlistEntry).where(
            WaitlistEntry.user_id == user_id, WaitlistEntry.event_id == event_id, WaitlistEntry.status.in_(LIVE)
        )
    ).first()


def _live_offer(session: Session, entry_id: int, *, lock: bool) -> Hold | None:
    query = select(Hold).where(
        Hold.waitlist_entry_id == entry_id, Hold.kind == HoldKind.OFFER, Hold.status == HoldStatus.ACTIVE
    )
    if lock:
        query = query.with_for_update()
    return session.scalars(query).first()


def _end_entry(session: Session, entry_id: int, *, status: WaitlistStatus, reason: str,
               user_id: int | None = None, event_id: int | None = None) -> WaitlistEntry:
    """Take a live entry out of line; its offer, if any, passes to the next person."""
    query = select(WaitlistEntry).where(WaitlistEntry.id == entry_id)
    if user_id is not None:
        query = query.where(WaitlistEntry.user_id == user_id)
    if event_id is not None:
        query = query.where(WaitlistEntry.event_id == event_id)
    entry = session.scalars(query).first()
    if entry is None:
        raise NotFound("No such waiting-list entry.")
    # Lock order: the offer hold before its entry, as `release_hold` does.
    offer = _live_offer(session, entry.id, lock=True)
    session.refresh(entry, with_for_update=True)
    if entry.status not in LIVE:
        raise BookingError("You are no longer on this waiting list.")
    if offer is None and entry.status == WaitlistStatus.OFFERED:
        # The offer was made between our two reads; nobody else ends an
        # offer that young, so taking its lock after the entry's is safe.
        offer = _live_offer(session, entry.id, lock=True)
    entry.status = status
    session.flush()
    if offer is not None:
        inventory.release_hold(session, offer, status=HoldStatus.RELEASED, reason=reason)
    else:
        # The units set aside for this entry may now fit the next one.
        offer_released_units(session, entry.event_id)
    return entry


def leave(session: Session, *, entry_id: int, user_id: int) -> WaitlistEntry:
    """The buyer leaves the line (declining any offer they hold)."""
    return _end_entry(session, entry_id, status=WaitlistStatus.LEFT, reason="left waiting list", user_id=user_id)


def decline(session: Session, *, entry_id: int, user_id: int) -> WaitlistEntry:
    """The buyer turns down the tickets offered; they go to the next person."""
    entry = session.scalars(
        select(WaitlistEntry).where(WaitlistEntry.id == entry_id, WaitlistEntry.user_id == user_id)
    ).first()
    if entry is None:
        raise NotFound("No such waiting-list entry.")
    if entry.status != WaitlistStatus.OFFERED:
        raise BookingError("There is no offer to decline: it may have run out already.")
    return _end_entry(session, entry_id, status=WaitlistStatus.LAPSED, reason="declined", user_id=user_id)


def remove_entry(session: Session, *, event_id: int, entry_id: int) -> WaitlistEntry:
    """An admin takes an entry out of line; an offer it holds passes on."""
    return _end_entry(session, entry_id, status=WaitlistStatus.REMOVED, reason="removed by admin",
                      event_id=event_id)


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------

def _tell_about_offer(session: Session, event: Event, entry: WaitlistEntry, hold: Hold) -> None:
    user = session.get(User, entry.user_id)
    outbox.queue(session, template="waitlist_offer", recipient=user.email, event_id=event.id,
                 params={"hold_id": hold.id, "entry_id": entry.id})


# --------------------------------------------------------------------------
# Reading the line: for the buyer, the event page and the admin area
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Place:
    ahead_people: int
    ahead_tickets: int

    @property
    def position(self) -> int:
        return self.ahead_people + 1


def place_in_line(session: Session, entry: WaitlistEntry) -> Place:
    """Who is ahead: waiting entries before this one that compete for its tiers."""
    people, tickets = session.execute(
        text(
            "SELECT count(*), coalesce(sum(quantity), 0) FROM waitlist_entries"
            " WHERE event_id = :e AND status = 'waiting' AND id < :id"
            " AND (CAST(:t AS integer) IS NULL OR tier_id IS NULL OR tier_id = :t)"
        ),
        {"e": entry.event_id, "id": entry.id, "t": entry.tier_id},
    ).one()
    return Place(people, int(tickets))


@dataclass(frozen=True)
class LineEntry:
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


def line(session: Session, event_id: int, *, include_ended: bool = False) -> list[LineEntry]:
    """The event's line in order: places, offers and their time left (admin page).

    Places are computed the way `place_in_line` does, in one pass.
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
        result.append(LineEntry(e, place, hold, seconds))
    return result


def my_entries(session: Session, user_id: int, *, ended_limit: int = 10) -> list[LineEntry]:
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
        place = place_in_line(session, e) if e.status == WaitlistStatus.WAITING else None
        hold, seconds = offers.get(e.id, (None, None))
        result.append(LineEntry(e, place, hold, seconds))
    return result


def entry_view(session: Session, entry: WaitlistEntry | None) -> LineEntry | None:
    if entry is None:
        return None
    place = place_in_line(session, entry) if entry.status == WaitlistStatus.WAITING else None
    hold, seconds = _offers_for(session, [entry.id]).get(entry.id, (None, None))
    return LineEntry(entry, place, hold, seconds)


@dataclass(frozen=True)
class OfferNotice:
    hold_id: int
    event_id: int
    event_title: str
    quantity: int
    expires_at: datetime


def live_offers(session: Session, user_id: int) -> list[OfferNotice]:
    """Offers waiting for this buyer's answer (the banner on every page)."""
    rows = session.execute(
        text(
            "SELECT h.id, h.event_id, e.title, cardinality(h.unit_ids), h.expires_at FROM holds h"
            " JOIN events e ON e.id = h.event_id"
            " WHERE h.user_id = :u AND h.kind = 'offer' AND h.status = 'active' AND h.expires_at > now()"
            " ORDER BY h.expires_at"
        ),
        {"u": user_id},
    ).all()
    return [OfferNotice(*r) for r in rows]


def is_waiting(session: Session, user_id: int) -> bool:
    return session.execute(
        text("SELECT EXISTS (SELECT 1 FROM waitlist_entries WHERE user_id = :u AND status = 'waiting')"),
        {"u": user_id},
    ).scalar_one()


@dataclass(frozen=True)
class TierLineStatus:
    tier: Tier
    capacity: int
    available: int  # what the public can buy now
    set_aside: int  # free, but kept for the people in line
    held: int  # in shopping baskets
    offered: int  # held as offers for people in line
    sold: int
    blocked: int
    waiting_people: int  # entries for this tier (entries for any tier are counted per event)
    waiting_tickets: int


@dataclass(frozen=True)
class LineStatus:
    tiers: list[TierLineStatus]
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
                 reserved: set[int] | None = None) -> LineStatus:
    """Available, held, sold and waiting for an event, per tier and in total."""
    counts = inventory.tier_counts(session, event.id) if counts is None else counts
    reserved = tiers_reserved_for_line(session, event.id) if reserved is None else reserved
    offered = dict(session.execute(
        text(
            "SELECT u.tier_id, count(*) FROM units u JOIN holds h ON h.id = u.hold_id"
            " WHERE u.event_id = :e AND h.kind = 'offer' GROUP BY u.tier_id"
        ),
        {"e": event.id},
    ).all())
    waiting = {
        tier_id: (people, int(tickets))
        for tier_id, people, tickets in session.execute(
            text(
                "SELECT tier_id, count(*), sum(quantity) FROM waitlist_entries"
                " WHERE event_id = :e AND status = 'waiting' GROUP BY tier_id"
            ),
            {"e": event.id},
        ).all()
    }
    offers_out = session.execute(
        text("SELECT count(*) FROM waitlist_entries WHERE event_id = :e AND status = 'offered'"), {"e": event.id}
    ).scalar_one()
    tiers = []
    for t in event.tiers:
        c = counts.get(t.id)
        if c is None:
            continue
        free_public = 0 if t.id in reserved else c.available
        people, tickets = waiting.get(t.id, (0, 0))
        tiers.append(TierLineStatus(
            tier=t, capacity=c.capacity, available=free_public, set_aside=c.available - free_public,
            held=c.held - offered.get(t.id, 0), offered=offered.get(t.id, 0), sold=c.sold, blocked=c.blocked,
            waiting_people=people, waiting_tickets=tickets,
        ))
    return LineStatus(
        tiers=tiers,
        waiting_people=sum(p for p, _ in waiting.values()),
        waiting_tickets=sum(n for _, n in waiting.values()),
        offers_out=offers_out,
    )


@dataclass(frozen=True)
class BuyerPanel:
    status: LineStatus
    mine: LineEntry | None  # the buyer's live entry for this event
    joinable: list[Tier]  # sold-out tiers the buyer could join the line for
    can_join_any: bool  # every tier is sold out: "any ticket type" is on offer too
    line_open: bool  # on sale, with a waiting list

    @property
    def offer_ready(self) -> bool:
        return self.mine is not None and self.mine.offer is not None


def buyer_panel(session: Session, event: Event, user_id: int | None) -> BuyerPanel:
    """What the event page shows about the line, for this buyer."""
    mine = entry_view(session, live_entry(session, user_id=user_id, event_id=event.id)) if user_id else None
    line_open = event.status == EventStatus.ON_SALE and event.waitlist_enabled
    # One count of the unit rows serves both the status and the join form.
    counts = inventory.tier_counts(session, event.id)
    reserved = tiers_reserved_for_line(session, event.id)
    joinable = joinable_tiers(session, event, counts, reserved) if line_open and mine is None else []
    return BuyerPanel(
        status=event_status(session, event, counts, reserved), mine=mine, joinable=joinable,
        can_join_any=bool(joinable) and len(joinable) == len(event.tiers) and len(event.tiers) > 1,
        line_open=line_open,
    )


def watch_tag(session: Session, event_id: int, user_id: int | None) -> str:
    """A version of what the buyer's panel shows, so its poll can answer 304.

    It moves when units move (the inventory clock), when the line changes
    (joins, leaves, offers) and when the buyer's own place or entry changes.
    """
    version = inventory.inventory_version(session, event_id)
    people, tickets, newest = session.execute(
        text(
            "SELECT count(*), coalesce(sum(quantity), 0), coalesce(max(id), 0) FROM waitlist_entries"
            " WHERE event_id = :e AND status = 'waiting'"
        ),
        {"e": event_id},
    ).one()
    mine = "-"
    if user_id is not None:
        entry = live_entry(session, user_id=user_id, event_id=event_id)
        if entry is not None:
            place = place_in_line(session, entry) if entry.status == WaitlistStatus.WAITING else Place(0, 0)
            mine = f"{entry.id}.{entry.status.value}.{place.ahead_people}.{place.ahead_tickets}"
    return f"w{event_id}-v{version}-l{people}.{tickets}.{newest}-m{mine}"
