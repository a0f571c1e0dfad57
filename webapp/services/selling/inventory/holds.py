"""Holds that the reserve statement does not make, and what payment does to units.

The offer engine holds units for the next person in line; checkout takes a
lapsed hold's units again when its buyer pays late, sells a paid hold's
units, and puts voided tickets' units back on sale. Each follows the same
locking order as a reservation (parent row first, unit rows in id order), so
none of them can wait in a circle with a buyer's reserve.
"""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import func, text
from sqlalchemy.orm import Session

from webapp.models import Event, Hold, HoldKind, HoldStatus, Tier, UnitStatus
from webapp.services.errors import Busy, HoldExpired, NotFound
from webapp.services.selling.inventory import waitlist_hook
from webapp.services.selling.inventory.buyers import try_buyer_lock
from webapp.services.selling.inventory.clock import touch_inventory
from webapp.services.selling.inventory.counts import tiers_kept_for_waitlist


def get_event(session: Session, event_id: int) -> Event:
    event = session.get(Event, event_id)
    if event is None:
        raise NotFound(_("No such event."))
    return event


def _hold_expiry_sql(minutes: float):
    # The database's clock, as everywhere a hold's time is decided.
    return text(f"now() + make_interval(secs => {float(minutes) * 60:.3f})")


def _mark_held(session: Session, hold: Hold) -> None:
    session.execute(
        text("UPDATE units SET status = 'held', hold_id = :h WHERE id = ANY(:ids)"),
        {"h": hold.id, "ids": hold.unit_ids},
    )
    touch_inventory(session, hold.event_id)


def hold_for_offer(session: Session, *, event: Event, tiers: dict[int, Tier], tier_ids: list[int], n: int,
                   user_id: int, waitlist_entry_id: int) -> tuple[Hold, dict[int, int]] | None:
    """Hold n free units of these tiers (in this order) as an offer; None if that cannot be done now.

    Called by the offer engine under the line lock, with the entry locked.
    """
    savepoint = session.begin_nested()
    unit_ids: list[int] = []
    per_tier: dict[int, int] = {}
    prices: dict[int, int] = {}
    for t in tier_ids:
        got = _grab_places(session, t, n - len(unit_ids))
        unit_ids += got
        prices.update(dict.fromkeys(got, tiers[t].price_minor))
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
    ids = sorted(unit_ids)
    hold = Hold(
        event_id=event.id, user_id=user_id, kind=HoldKind.OFFER, status=HoldStatus.ACTIVE,
        unit_ids=ids, unit_prices=[prices[u] for u in ids],
        total_minor=sum(tiers[t].price_minor * count for t, count in per_tier.items()),
        currency=tiers[next(iter(per_tier))].currency,
        expires_at=_hold_expiry_sql(float(event.offer_hours) * 60), waitlist_entry_id=waitlist_entry_id,
    )
    session.add(hold)
    # expires_at and created_at (database clock) load on first access.
    session.flush()
    _mark_held(session, hold)
    return hold, per_tier


def _grab_places(session: Session, tier_id: int, quantity: int) -> list[int]:
    # Walks ix_units_available; SKIP LOCKED so concurrent offers each take
    # different rows instead of waiting for each other.
    return list(
        session.scalars(
            text(
                "SELECT id FROM units WHERE tier_id = :t AND status = 'available'"
                " ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED"
            ),
            {"t": tier_id, "n": quantity},
        ).all()
    )


def take_units_again(session: Session, hold: Hold) -> None:
    """Make a lapsed hold live again, if all its units are still free (raises HoldExpired if not).

    The units are locked in id order, exactly like a fresh reservation, and
    the waiting list keeps its priority: a tier people wait for is not free.
    """
    # The per-buyer limit is counted below under the buyer's lock, as the
    # reserve functions count it, so a reserve in another tab cannot pass the
    # same count at the same time. The caller holds the hold's row already,
    # and the buyer's lock comes before row locks everywhere else: so it is
    # only tried here, never waited for (no deadlock), and a buyer busy
    # reserving at this very instant is told to try again.
    if not try_buyer_lock(session, user_id=hold.user_id, event_id=hold.event_id):
        raise Busy(_("You are reserving other tickets for this event at this moment; try paying again in a moment."))
    rows = session.execute(
        text("SELECT id, status, hold_id, tier_id FROM units WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"),
        {"ids": hold.unit_ids},
    ).all()
    reserved = tiers_kept_for_waitlist(session, hold.event_id)
    if len(rows) != len(hold.unit_ids) or any(
        r.status != UnitStatus.AVAILABLE or r.tier_id in reserved for r in rows
    ):
        raise HoldExpired()
    other = session.execute(
        text("SELECT 1 FROM holds WHERE user_id = :u AND event_id = :e AND status = 'active' AND kind = 'purchase'"),
        {"u": hold.user_id, "e": hold.event_id},
    ).first()
    if other is not None:
        raise HoldExpired(_("This reservation has expired; you already have a newer one for this event."))
    # The buyer may have bought or held other tickets meanwhile: the
    # per-buyer limit counts this hold again.
    have = session.execute(
        text("SELECT tb_buyer_count(:u, :e)"), {"u": hold.user_id, "e": hold.event_id}).scalar_one()
    if have + len(hold.unit_ids) > hold.event.per_buyer_limit:
        raise HoldExpired(_(
            "This reservation has expired, and taking its %(count)s tickets again would take you past this event's"
            " limit of %(limit)s tickets per buyer (you have %(have)s).", count=len(hold.unit_ids),
            limit=hold.event.per_buyer_limit, have=have))
    hold.status = HoldStatus.ACTIVE
    hold.ended_at = None
    hold.end_reason = None
    hold.expires_at = _hold_expiry_sql(hold.event.hold_minutes)
    # An offer that ran out is no longer an offer: its entry has lapsed and
    # nobody waits for these units, so it is paid like any late basket.
    hold.kind = HoldKind.PURCHASE
    session.flush()
    _mark_held(session, hold)


def sell_hold(session: Session, hold: Hold) -> list[tuple[int, int]]:
    """A paid hold's units become sold and the hold converted; returns (unit id, tier id) in id order.

    The caller has locked the hold and writes the order and its tickets.
    """
    sold = session.execute(
        text(
            "UPDATE units SET status = 'sold', hold_id = NULL WHERE hold_id = :h"
            " RETURNING id, tier_id"
        ),
        {"h": hold.id},
    ).all()
    hold.status = HoldStatus.CONVERTED
    hold.ended_at = func.now()
    hold.end_reason = "paid"
    session.flush()
    touch_inventory(session, hold.event_id)
    return sorted((r.id, r.tier_id) for r in sold)


def free_sold_units(session: Session, *, event_id: int, unit_ids: list[int]) -> None:
    """Sold units whose tickets were voided go back on sale, to the waiting list first."""
    session.execute(
        text("SELECT id FROM units WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"), {"ids": unit_ids}
    )
    session.execute(
        text("UPDATE units SET status = 'available' WHERE id = ANY(:ids) AND status = 'sold'"), {"ids": unit_ids}
    )
    touch_inventory(session, event_id)
    waitlist_hook.waitlist.offer_released_units(session, event_id)
