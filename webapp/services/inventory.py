"""Every change to inventory goes through here.

Locking discipline (see DESIGN.md):
- parent rows before units: a hold, order or waiting-list row is locked
  before the unit rows it owns, and unit rows are always locked in id order,
  so two transactions never wait on each other in a circle;
- general admission takes places with `FOR UPDATE SKIP LOCKED`, so buyers
  never queue behind one another;
- expiry is decided by the database clock (`now()`), never the app host's.

Functions here flush; the caller (a view or CLI command) commits, or rolls
back on error. The inventory clock of every touched event is bumped just
before that commit (see `touch_inventory`).
"""
from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import event as sa_event
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from webapp.models import Event, EventStatus, Hold, HoldKind, HoldStatus, Tier, Unit, UnitStatus
from webapp.services import waitlist
from webapp.services.errors import (
    InvalidRequest,
    LimitExceeded,
    NotEnoughLeft,
    NotFound,
    SalesClosed,
    SeatsTaken,
)

CLOCK_SHARDS = 8
_TOUCHED = "inventory_touched_events"


def touch_inventory(session: Session, event_id: int) -> None:
    """Mark the event's inventory as changed in this transaction."""
    session.info.setdefault(_TOUCHED, set()).add(event_id)


@sa_event.listens_for(Session, "before_commit")
def _bump_inventory_clocks(session: Session) -> None:
    # Bumped last, right before commit, so the shard row's lock is held for
    # an instant and never while unit rows are still being locked.
    touched = session.info.pop(_TOUCHED, None)
    if not touched:
        return
    for event_id in sorted(touched):
        session.execute(
            text(
                "INSERT INTO inventory_clock (event_id, shard, version) VALUES (:e, :s, 1)"
                " ON CONFLICT (event_id, shard) DO UPDATE SET version = inventory_clock.version + 1"
            ),
            {"e": event_id, "s": random.randrange(CLOCK_SHARDS)},
        )


@sa_event.listens_for(Session, "after_rollback")
def _forget_touched(session: Session) -> None:
    session.info.pop(_TOUCHED, None)


def inventory_version(session: Session, event_id: int) -> int:
    return session.execute(
        text("SELECT coalesce(sum(version), 0) FROM inventory_clock WHERE event_id = :e"), {"e": event_id}
    ).scalar_one()


def get_event(session: Session, event_id: int) -> Event:
    event = session.get(Event, event_id)
    if event is None:
        raise NotFound("No such event.")
    return event


def _require_on_sale(event: Event) -> None:
    if event.status != EventStatus.ON_SALE:
        raise SalesClosed()
    # Sales end at `sales_end_at` (default: the start), by the database's clock.
    # One round trip; a hold made before the end keeps its own window to pay.
    ended = Session.object_session(event).scalar(
        text("SELECT now() >= coalesce(sales_end_at, starts_at) FROM events WHERE id = :id"), {"id": event.id})
    if ended:
        raise SalesClosed("Sales for this event have ended.")


def _hold_expiry_sql(minutes: float):
    return text(f"now() + make_interval(secs => {float(minutes) * 60:.3f})")


def _create_hold(
    session: Session, *, event: Event, user_id: int, unit_ids: list[int], total_minor: int,
    currency: str, kind: HoldKind = HoldKind.PURCHASE, minutes: float | None = None,
    waitlist_entry_id: int | None = None,
) -> Hold:
    hold = Hold(
        event_id=event.id, user_id=user_id, kind=kind, status=HoldStatus.ACTIVE,
        unit_ids=sorted(unit_ids), total_minor=total_minor, currency=currency,
        expires_at=_hold_expiry_sql(event.hold_minutes if minutes is None else minutes),
        waitlist_entry_id=waitlist_entry_id,
    )
    session.add(hold)
    # expires_at and created_at (database clock) load on first access: the
    # reserve path never reads them, so it does not pay a round trip for them.
    session.flush()
    return hold


def _mark_held(session: Session, hold: Hold) -> None:
    session.execute(
        text("UPDATE units SET status = 'held', hold_id = :h WHERE id = ANY(:ids)"),
        {"h": hold.id, "ids": hold.unit_ids},
    )
    touch_inventory(session, hold.event_id)


def release_active_basket(session: Session, *, user_id: int, event_id: int) -> None:
    """Give back the buyer's current hold for this event, if any: one basket each."""
    hold = session.scalars(
        select(Hold)
        .where(Hold.user_id == user_id, Hold.event_id == event_id,
               Hold.status == HoldStatus.ACTIVE, Hold.kind == HoldKind.PURCHASE)
        .with_for_update()
    ).first()
    if hold is not None:
        release_hold(session, hold, status=HoldStatus.RELEASED, reason="replaced")


def _expire_stale_holds_on_units(session: Session, unit_ids: list[int]) -> None:
    """Expire holds that ran out but still sit on these seats.

    Correctness never waits for the sweep: a seat whose hold ran out is
    free the moment someone asks for it (the waiting list still comes first).
    """
    stale = session.scalars(
        text(
            "SELECT DISTINCT h.id FROM units u JOIN holds h ON h.id = u.hold_id"
            " WHERE u.id = ANY(:ids) AND h.status = 'active' AND h.expires_at <= now()"
        ),
        {"ids": unit_ids},
    ).all()
    if stale:
        expire_holds(session, hold_ids=list(stale))


def reserve_seats(session: Session, *, user_id: int, event_id: int, unit_ids: Iterable[int]) -> Hold:
    """Hold exactly these numbered seats, all or nothing."""
    ids = sorted({int(i) for i in unit_ids})
    event = get_event(session, event_id)
    _require_on_sale(event)
    if not ids:
        raise InvalidRequest("Pick at least one seat.")
    if len(ids) > event.per_order_limit:
        raise LimitExceeded(f"You can buy at most {event.per_order_limit} tickets in one order.")

    release_active_basket(session, user_id=user_id, event_id=event_id)
    _expire_stale_holds_on_units(session, ids)

    # Lock exactly the requested rows, in id order (no deadlocks between
    # buyers whose picks overlap), then check every one.
    rows = session.execute(
        select(Unit.id, Unit.status, Unit.tier_id, Unit.section, Unit.row_label, Unit.seat_number)
        .where(Unit.id.in_(ids), Unit.event_id == event_id)
        .order_by(Unit.id)
        .with_for_update()
    ).all()
    if len(rows) != len(ids) or any(r.seat_number is None for r in rows):
        raise InvalidRequest("Some of the selected seats do not exist at this event.")

    reserved_for_line = waitlist.tiers_reserved_for_line(session, event_id)
    taken = [r for r in rows if r.status != UnitStatus.AVAILABLE or r.tier_id in reserved_for_line]
    if taken:
        raise SeatsTaken(
            [f"{r.section}, row {r.row_label}, seat {r.seat_number}" for r in taken], [r.id for r in taken]
        )

    prices = {t.id: t for t in event.tiers}
    total = sum(prices[r.tier_id].price_minor for r in rows)
    hold = _create_hold(
        session, event=event, user_id=user_id, unit_ids=ids, total_minor=total,
        currency=prices[rows[0].tier_id].currency,
    )
    _mark_held(session, hold)
    return hold


def _grab_places(session: Session, tier_id: int, quantity: int) -> list[int]:
    # Walks ix_units_available; SKIP LOCKED so concurrent buyers each take
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


def available_count(session: Session, tier_id: int) -> int:
    return session.execute(
        text("SELECT count(*) FROM units WHERE tier_id = :t AND status = 'available'"), {"t": tier_id}
    ).scalar_one()


def reserve_general(session: Session, *, user_id: int, event_id: int, quantities: dict[int, int]) -> Hold:
    """Hold N general-admission places per tier, all or nothing."""
    event = get_event(session, event_id)
    _require_on_sale(event)
    if any(int(n) < 0 for n in quantities.values()):
        raise InvalidRequest("Quantities cannot be negative.")
    wanted = {int(t): int(n) for t, n in quantities.items() if int(n) > 0}
    if not wanted:
        raise InvalidRequest("Choose how many tickets you want.")
    if sum(wanted.values()) > event.per_order_limit:
        raise LimitExceeded(f"You can buy at most {event.per_order_limit} tickets in one order.")
    tiers = {t.id: t for t in event.tiers}
    if any(t not in tiers or tiers[t].seated for t in wanted):
        raise InvalidRequest("Unknown ticket type for this event.")

    release_active_basket(session, user_id=user_id, event_id=event_id)
    reserved_for_line = waitlist.tiers_reserved_for_line(session, event_id)

    taken: list[int] = []
    total = 0
    for tier_id in sorted(wanted):
        tier, n = tiers[tier_id], wanted[tier_id]
        if tier_id in reserved_for_line:
            raise NotEnoughLeft(tier.name, n, 0, waitlist_open=event.waitlist_enabled)
        ids = _grab_places(session, tier_id, n)
        if len(ids) < n and _has_due_holds(session, event_id) and expire_due_holds_now(event_id=event_id):
            # Holds had run out without the sweep noticing yet; their places
            # went back (to the waiting list first). Look once more.
            if tier_id in waitlist.tiers_reserved_for_line(session, event_id):
                raise NotEnoughLeft(tier.name, n, 0, waitlist_open=event.waitlist_enabled)
            ids += _grab_places(session, tier_id, n - len(ids))
        if len(ids) < n:
            # What we could lock just now is exactly what is left to sell.
            raise NotEnoughLeft(tier.name, n, len(ids), waitlist_open=event.waitlist_enabled and not ids)
        taken += ids
        total += tier.price_minor * n

    hold = _create_hold(
        session, event=event, user_id=user_id, unit_ids=taken, total_minor=total,
        currency=tiers[next(iter(wanted))].currency,
    )
    _mark_held(session, hold)
    return hold


def release_hold(session: Session, hold: Hold, *, status: HoldStatus = HoldStatus.RELEASED,
                 reason: str = "released", offer_now: bool = True) -> list[int]:
    """End a live hold and give its units back, to the waiting list first.

    The caller has locked the hold row. Returns the freed unit ids. A caller
    releasing many holds passes `offer_now=False` and calls
    `waitlist.offer_released_units` once at the end, in the same transaction.
    """
    if hold.status != HoldStatus.ACTIVE:
        return []
    freed = session.execute(
        text(
            "UPDATE units SET status = 'available', hold_id = NULL"
            " WHERE hold_id = :h RETURNING id, tier_id"
        ),
        {"h": hold.id},
    ).all()
    hold.status = status
    hold.ended_at = text("now()")
    hold.end_reason = reason
    session.flush()
    touch_inventory(session, hold.event_id)
    if hold.kind == HoldKind.OFFER:
        waitlist.offer_ended(session, hold)
    if offer_now:
        waitlist.offer_released_units(session, hold.event_id)
    return [r.id for r in freed]


def lock_hold(session: Session, hold_id: int, user_id: int | None = None) -> Hold:
    """Lock a hold row (someone else's hold is NotFound: ids cannot be probed)."""
    query = select(Hold).where(Hold.id == hold_id).with_for_update()
    if user_id is not None:
        query = query.where(Hold.user_id == user_id)
    hold = session.scalars(query).first()
    if hold is None:
        raise NotFound("No such reservation.")
    return hold


def release_hold_by_id(session: Session, *, hold_id: int, user_id: int | None) -> Hold:
    """The buyer gives a hold back at once."""
    hold = lock_hold(session, hold_id, user_id)
    release_hold(session, hold, status=HoldStatus.RELEASED, reason="released by buyer")
    return hold


def expire_holds(session: Session, *, hold_ids: list[int] | None = None, event_id: int | None = None,
                 limit: int = 200) -> int:
    """Expire holds whose time ran out; safe to run in many processes at once.

    `SKIP LOCKED` leaves a hold that another sweeper, or a payment, is
    working on; a hold with a payment in flight is left to that payment.
    """
    conditions = ["status = 'active'", "expires_at <= now()"]
    params: dict = {"n": limit}
    if hold_ids is not None:
        conditions.append("id = ANY(:ids)")
        params["ids"] = hold_ids
    if event_id is not None:
        conditions.append("event_id = :e")
        params["e"] = event_id
    holds = session.scalars(
        select(Hold)
        .from_statement(
            text(
                f"SELECT * FROM holds WHERE {' AND '.join(conditions)}"
                " ORDER BY expires_at LIMIT :n FOR UPDATE SKIP LOCKED"
            )
        )
        .params(**params)
    ).all()
    expired = 0
    for hold in holds:
        # Checked again after the lock: a payment may have started between
        # our snapshot and the lock, and its charge must not be orphaned.
        if _payment_in_flight(session, hold.id):
            continue
        release_hold(session, hold, status=HoldStatus.EXPIRED, reason="expired", offer_now=False)
        expired += 1
    # Offers once per event for the whole batch: the line lock is then held
    # for the offers and the commit only, not across every release.
    for touched in sorted({h.event_id for h in holds}):
        waitlist.offer_released_units(session, touched)
    return expired


def _payment_in_flight(session: Session, hold_id: int) -> bool:
    return session.execute(
        text("SELECT EXISTS (SELECT 1 FROM payment_attempts WHERE hold_id = :h AND status = 'pending')"),
        {"h": hold_id},
    ).scalar_one()


def _has_due_holds(session: Session, event_id: int) -> bool:
    # One cheap statement spares every loser of a sold-out rush the separate
    # transaction (checkout, BEGIN, locking SELECT, COMMIT) of the expiry pass
    # when, as usual in a rush, no hold has run out.
    return session.execute(
        text("SELECT EXISTS (SELECT 1 FROM holds WHERE event_id = :e AND status = 'active'"
             " AND expires_at <= now())"),
        {"e": event_id},
    ).scalar_one()


def expire_due_holds_now(*, event_id: int) -> int:
    """Expire an event's lapsed holds in a transaction of their own.

    Used when a buyer finds too few places: the release is a change of state
    in its own right and must stand even if the buyer's attempt fails.
    """
    from webapp.extensions import db

    with Session(db.engine) as own:
        count = expire_holds(own, event_id=event_id, limit=500)
        own.commit()
    return count


@dataclass(frozen=True)
class TierCounts:
    tier_id: int
    capacity: int
    available: int
    held: int
    sold: int
    blocked: int


def tier_counts(session: Session, event_id: int) -> dict[int, TierCounts]:
    """Counts for display, computed from the unit rows (never a second truth)."""
    rows = session.execute(
        text(
            "SELECT t.id, t.capacity,"
            " count(*) FILTER (WHERE u.status = 'available') AS available,"
            " count(*) FILTER (WHERE u.status = 'held') AS held,"
            " count(*) FILTER (WHERE u.status = 'sold') AS sold,"
            " count(*) FILTER (WHERE u.status = 'blocked') AS blocked"
            " FROM tiers t LEFT JOIN units u ON u.tier_id = t.id"
            " WHERE t.event_id = :e GROUP BY t.id, t.capacity"
        ),
        {"e": event_id},
    ).all()
    return {r.id: TierCounts(r.id, r.capacity, r.available, r.held, r.sold, r.blocked) for r in rows}


def create_units_for_tier(session: Session, tier: Tier, seats: list[dict] | None = None) -> None:
    """Create the unit rows of a tier: given seats, or `capacity` GA places."""
    if tier.seated:
        if not seats:
            return
        session.execute(
            Unit.__table__.insert(),
            [dict(event_id=tier.event_id, tier_id=tier.id, status=UnitStatus.AVAILABLE.value, **s) for s in seats],
        )
        tier.capacity = (tier.capacity or 0) + len(seats)
    else:
        session.execute(
            text(
                "INSERT INTO units (event_id, tier_id, status)"
                " SELECT :e, :t, 'available' FROM generate_series(1, :n)"
            ),
            {"e": tier.event_id, "t": tier.id, "n": tier.capacity},
        )
    session.flush()
    touch_inventory(session, tier.event_id)
