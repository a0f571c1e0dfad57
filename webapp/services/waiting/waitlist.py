"""The waiting list: the offer engine, the hooks for when an offer ends, and the buyer's commands.

Released units go to the waiting list first (invariant 4). `inventory`, the only
writer of unit rows, calls `offer_released_units` whenever units come free or
are added, in the same transaction, so offers are made under the same locks
as the release. This module imports `inventory` and uses only its public
functions (an offer's units are taken by `inventory.hold_for_offer`);
inventory never imports this module back: on import, this module installs
itself as inventory's `Waitlist`. What the waiting list looks like to buyers and
admins (places, panels, ETags) is in `waitlist_read`; its errors are in
`errors`.

The rule for multi-ticket entries
---------------------------------
The waiting list is strict: units go to the first waiting entry that covers their
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
lock on the event (`_lock_waitlist`): the last of several concurrent releases to
take it sees every unit the others freed, so no free unit is left behind and
no unit is offered twice. Under it, entries are locked one at a time in line
order with `FOR UPDATE SKIP LOCKED` (an entry locked by someone leaving is
treated as still waiting, so nobody jumps it), and units are taken with
`SKIP LOCKED`, so the lock holder never waits on anything but the clock.
Lock order: hold → units → event row (key share) → waiting-list lock → entries →
(free units, skip locked). Code that ends an offer locks the hold before its
entry.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
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
from webapp.services.errors import (
    AlreadyOnWaitlist,
    BookingError,
    InvalidRequest,
    LimitExceeded,
    NotFound,
    NotSoldOut,
    SalesClosed,
    WaitlistClosed,
)
from webapp.services.messaging import language, outbox
from webapp.services.selling import inventory

# Class id of the advisory lock that serialises offer-making for one event
# (the second key is the event id). Any constant works; this one spells "WL".
WAITLIST_LOCK_CLASS = 0x574C
# How long a release may queue for the waiting-list lock. Longer than the general
# lock_timeout: the queue is first come, first served and each holder is
# short, so a burst of cancels is served in turn rather than refused; still
# under statement_timeout, so a stuck holder ends as a clear 503.
WAITLIST_LOCK_WAIT_MS = 8000

LIVE = (WaitlistStatus.WAITING, WaitlistStatus.OFFERED)


@dataclass(frozen=True)
class Place:
    ahead_people: int
    ahead_tickets: int

    @property
    def position(self) -> int:
        return self.ahead_people + 1


def place_on_waitlist(session: Session, entry: WaitlistEntry) -> Place:
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


# Offers: made under the waiting-list lock, from released units

def _lock_waitlist(session: Session, event_id: int, *, wait: bool = True) -> bool:
    """Take the event's waiting-list lock (or try to); True when held.

    The event row is share-locked first, as the foreign-key checks of the
    offer's inserts would do anyway: an admin change that locks the event row
    and then makes offers then waits for us before we hold the waiting-list lock,
    never after (which would be a deadlock).
    """
    session.execute(text("SELECT 1 FROM events WHERE id = :e FOR KEY SHARE"), {"e": event_id})
    if wait:
        usual = session.execute(
            text("SELECT current_setting('lock_timeout'), set_config('lock_timeout', :w, true)"),
            {"w": f"{WAITLIST_LOCK_WAIT_MS}ms"},
        ).one()[0]
        session.execute(text("SELECT pg_advisory_xact_lock(:k, :e)"), {"k": WAITLIST_LOCK_CLASS, "e": event_id})
        session.execute(text("SELECT set_config('lock_timeout', :v, true)"), {"v": usual})
        return True
    return session.execute(
        text("SELECT pg_try_advisory_xact_lock(:k, :e)"), {"k": WAITLIST_LOCK_CLASS, "e": event_id}
    ).scalar_one()


def _someone_waiting(session: Session, event_id: int) -> bool:
    return session.execute(
        text("SELECT EXISTS (SELECT 1 FROM waitlist_entries WHERE event_id = :e AND status = 'waiting')"),
        {"e": event_id},
    ).scalar_one()


def offer_released_units(session: Session, event_id: int) -> list[Hold]:
    """Offer free units to the people waiting, in waiting-list order. Returns the new offers.

    Called after every release (and after joining, leaving or a capacity
    change). Events nobody waits for pay one indexed lookup and no lock; the
    rare join that races a release is caught by `offer_stranded_units`.
    """
    if not _someone_waiting(session, event_id):
        return []
    _lock_waitlist(session, event_id)
    return _offer_to_waitlist(session, event_id)


def _free_by_tier(session: Session, event_id: int) -> dict[int, int]:
    return dict(session.execute(
        text("SELECT tier_id, count(*) FROM units WHERE event_id = :e AND status = 'available' GROUP BY tier_id"),
        {"e": event_id},
    ).all())


def _waiting_entries(session: Session, event_id: int, after_id: int, batch: int):
    # A plain read in waiting-list order (the partial index ix_waitlist_line); each
    # entry is locked only when it is about to get an offer.
    return session.execute(
        text(
            "SELECT id, tier_id, quantity, user_id FROM waitlist_entries"
            " WHERE event_id = :e AND status = 'waiting' AND id > :after ORDER BY id LIMIT :n"
        ),
        {"e": event_id, "after": after_id, "n": batch},
    ).all()


def _sales_over(session: Session, event_id: int) -> bool:
    # The database's clock, as the reserve functions and checkout read it.
    return session.execute(
        text("SELECT now() >= coalesce(sales_end_at, starts_at) FROM events WHERE id = :e"), {"e": event_id}
    ).scalar_one()


def _offer_to_waitlist(session: Session, event_id: int) -> list[Hold]:
    free = _free_by_tier(session, event_id)
    if not any(free.values()):
        return []
    if _sales_over(session, event_id):
        return []  # a ticket freed after the sale end is not sold again, to the waiting list or anyone
    event = session.get_one(Event, event_id)
    # Queried, not `event.tiers`: a tier added in this transaction (an admin
    # adding capacity) may not be in an already-loaded relationship yet.
    tiers = {t.id: t for t in session.scalars(
        select(Tier).where(Tier.event_id == event_id).order_by(Tier.sort_order, Tier.id)
    )}
    # "Any tier" means any tier the public can see: hidden ones need an access code.
    tier_order = [t for t, tier in tiers.items() if not tier.hidden]
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
    made = inventory.hold_for_offer(session, event=event, tiers=all_tiers, tier_ids=tiers, n=n, user_id=user_id,
                                    waitlist_entry_id=entry.id)
    if made is None:
        return None
    hold, per_tier = made
    entry.status = WaitlistStatus.OFFERED
    session.flush()
    _tell_about_offer(session, event, entry, hold)
    return hold, per_tier


def offer_stranded_units(session: Session, limit: int = 100) -> int:
    """The sweep's safety net: offer free units that nobody offered.

    A join that raced a release, or units locked by someone else at the
    moment of a release, can leave a unit free while an entry that fits it
    waits (the public still cannot take it). Each event is handled under its
    waiting-list lock, taken with `try` so several sweepers skip each other's events
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
        if _lock_waitlist(session, event_id, wait=False):
            made += len(_offer_to_waitlist(session, event_id))
    return made


# Hooks called when an offer hold ends

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
                     params={"hold_id": hold.id, "entry_id": entry.id}, locale=entry.locale)


def offer_accepted(session: Session, hold: Hold) -> None:
    """The person in line bought their offer: their entry is fulfilled."""
    entry = _lock_entry(session, hold.waitlist_entry_id)
    # Lapsed too: an offer paid for late, its units still free, is a sale.
    if entry is not None and entry.status in (WaitlistStatus.OFFERED, WaitlistStatus.LAPSED):
        entry.status = WaitlistStatus.FULFILLED
        session.flush()


# Buyers: join, leave, decline

def joinable_tiers(session: Session, event: Event, counts: dict[int, inventory.TierCounts] | None = None,
                   reserved: set[int] | None = None) -> list[Tier]:
    """Tiers the public sees as sold out (nothing free, or the waiting list comes first).

    Hidden tiers have no waiting list: they are sold only with an access code.
    """
    counts = inventory.tier_counts(session, event.id) if counts is None else counts
    reserved = inventory.tiers_kept_for_waitlist(session, event.id) if reserved is None else reserved
    return [
        t for t in event.tiers
        if not t.hidden and (t.id in reserved or t.id not in counts or counts[t.id].available == 0)
    ]


def join(session: Session, *, user_id: int, event_id: int, tier_id: int | None, quantity: int) -> WaitlistEntry:
    """Put the buyer in line for a sold-out tier (or any tier once all are sold out)."""
    event = inventory.get_event(session, event_id)
    if event.status != EventStatus.ON_SALE:
        raise SalesClosed()
    if not event.waitlist_enabled:
        raise WaitlistClosed()
    if quantity < 1:
        raise InvalidRequest(_("Ask for at least one ticket."))
    if quantity > event.per_order_limit:
        raise LimitExceeded(_("You can ask for at most %(limit)s tickets.", limit=event.per_order_limit))
    if tier_id is not None and tier_id not in {t.id for t in event.tiers if not t.hidden}:
        raise InvalidRequest(_("Unknown ticket type for this event."))
    # Places asked for in line count towards the per-buyer limit, as holds
    # do; the buyer's lock (taken here) keeps a join and a reserve of the
    # same buyer from both passing the check.
    existing = live_entry(session, user_id=user_id, event_id=event_id)
    if existing is None:
        inventory.check_buyer_room(session, user_id=user_id, event=event, adding=quantity)

    existing = live_entry(session, user_id=user_id, event_id=event_id)
    if existing is not None:
        raise AlreadyOnWaitlist(_already_message(session, existing))
    sold_out = {t.id for t in joinable_tiers(session, event)}
    if tier_id is None and len(sold_out) < sum(1 for t in event.tiers if not t.hidden):
        raise NotSoldOut(_("Some tickets are still available: book those, or join the waiting list for a sold-out"
                           " type."))
    if tier_id is not None and tier_id not in sold_out:
        raise NotSoldOut()

    # The offer mails, sent later by whoever frees the seats, speak the language of this request.
    entry = WaitlistEntry(event_id=event_id, tier_id=tier_id, user_id=user_id, quantity=quantity,
                          status=WaitlistStatus.WAITING, locale=language.current())
    session.add(entry)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        # A second tab joined at the same moment: the unique index decided.
        raise AlreadyOnWaitlist() from None
    # Units may be free and set aside already (a release racing this join):
    # the waiting-list lock makes sure they reach the waiting list now.
    offer_released_units(session, event_id)
    return entry


def _already_message(session: Session, entry: WaitlistEntry) -> str:
    if entry.status == WaitlistStatus.OFFERED:
        return _("You are already on the waiting list for this event, and tickets are being held for you.")
    place = place_on_waitlist(session, entry)
    return _("You are already on the waiting list for this event (number %(position)s in line).",
             position=place.position)


def live_entry(session: Session, *, user_id: int, event_id: int) -> WaitlistEntry | None:
    return session.scalars(
        select(WaitlistEntry).where(
            WaitlistEntry.user_id == user_id, WaitlistEntry.event_id == event_id, WaitlistEntry.status.in_(LIVE)
        )
    ).first()


def entry_of(session: Session, *, entry_id: int, user_id: int) -> WaitlistEntry | None:
    """The buyer's own entry (someone else's is None, so ids cannot be probed)."""
    return session.scalars(
        select(WaitlistEntry).where(WaitlistEntry.id == entry_id, WaitlistEntry.user_id == user_id)
    ).first()


class NoOffer(BookingError):
    default_message = _l("There is no offer to accept: it may have run out already.")


def _live_offer(session: Session, entry_id: int, *, lock: bool) -> Hold | None:
    query = select(Hold).where(
        Hold.waitlist_entry_id == entry_id, Hold.kind == HoldKind.OFFER, Hold.status == HoldStatus.ACTIVE
    )
    if lock:
        query = query.with_for_update()
    return session.scalars(query).first()


def _end_entry(session: Session, entry_id: int, *, status: WaitlistStatus, reason: str,
               user_id: int | None = None, event_id: int | None = None) -> WaitlistEntry:
    """Take a live entry off the waiting list; its offer, if any, passes to the next person."""
    query = select(WaitlistEntry).where(WaitlistEntry.id == entry_id)
    if user_id is not None:
        query = query.where(WaitlistEntry.user_id == user_id)
    if event_id is not None:
        query = query.where(WaitlistEntry.event_id == event_id)
    entry = session.scalars(query).first()
    if entry is None:
        raise NotFound(_("No such waiting-list entry."))
    # Lock order: the offer hold before its entry, as `release_hold` does.
    offer = _live_offer(session, entry.id, lock=True)
    session.refresh(entry, with_for_update=True)
    if entry.status not in LIVE:
        raise BookingError(_("You are no longer on this waiting list."))
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
    """The buyer leaves the waiting list (declining any offer they hold)."""
    return _end_entry(session, entry_id, status=WaitlistStatus.LEFT, reason="left waiting list", user_id=user_id)


def decline(session: Session, *, entry_id: int, user_id: int) -> WaitlistEntry:
    """The buyer turns down the tickets offered; they go to the next person."""
    entry = session.scalars(
        select(WaitlistEntry).where(WaitlistEntry.id == entry_id, WaitlistEntry.user_id == user_id)
    ).first()
    if entry is None:
        raise NotFound(_("No such waiting-list entry."))
    if entry.status != WaitlistStatus.OFFERED:
        raise BookingError(_("There is no offer to decline: it may have run out already."))
    return _end_entry(session, entry_id, status=WaitlistStatus.LAPSED, reason="declined", user_id=user_id)


def remove_entry(session: Session, *, event_id: int, entry_id: int) -> WaitlistEntry:
    """An admin takes an entry off the waiting list; an offer it holds passes on."""
    return _end_entry(session, entry_id, status=WaitlistStatus.REMOVED, reason="removed by admin",
                      event_id=event_id)


# Messages

def _tell_about_offer(session: Session, event: Event, entry: WaitlistEntry, hold: Hold) -> None:
    user = session.get(User, entry.user_id)
    assert user is not None, "user_id is a NOT NULL foreign key to users"
    outbox.queue(session, template="waitlist_offer", recipient=user.email, event_id=event.id,
                 params={"hold_id": hold.id, "entry_id": entry.id}, locale=entry.locale)


# Inventory reaches the waiting list through this module (see inventory's docstring).
inventory.install_waitlist(sys.modules[__name__])
