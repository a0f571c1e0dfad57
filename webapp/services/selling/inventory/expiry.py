"""How a hold ends before it is paid: given back by the buyer, replaced, or run out.

Its units go back on sale, to the waiting list first, in the same
transaction, so no caller can free a seat and forget the line. Expiry is
decided by the database clock (`now()`), never the app host's, and a hold
with a payment in flight is left to that payment: its charge must not be
orphaned.
"""
from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from webapp.models import Hold, HoldKind, HoldStatus
from webapp.services.errors import NotFound
from webapp.services.selling.inventory import waitlist_hook
from webapp.services.selling.inventory.clock import touch_inventory


def release_hold(session: Session, hold: Hold, *, status: HoldStatus = HoldStatus.RELEASED,
                 reason: str = "released", offer_now: bool = True) -> list[int]:
    """End a live hold and give its units back, to the waiting list first.

    The caller has locked the hold row. Returns the freed unit ids. A caller
    releasing many holds passes `offer_now=False` and offers the freed units
    to the line once at the end, in the same transaction, so the line lock
    is taken once, not per hold.
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
    hold.ended_at = func.now()
    hold.end_reason = reason
    session.flush()
    touch_inventory(session, hold.event_id)
    if hold.kind == HoldKind.OFFER:
        waitlist_hook.waitlist.offer_ended(session, hold)
    if offer_now:
        waitlist_hook.waitlist.offer_released_units(session, hold.event_id)
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
        waitlist_hook.waitlist.offer_released_units(session, touched)
    return expired


def _payment_in_flight(session: Session, hold_id: int) -> bool:
    return session.execute(
        text("SELECT EXISTS (SELECT 1 FROM payment_attempts WHERE hold_id = :h AND status = 'pending')"),
        {"h": hold_id},
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


def expire_stale_holds_on_units(session: Session, unit_ids: list[int]) -> None:
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
