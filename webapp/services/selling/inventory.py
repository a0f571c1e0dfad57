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

This module is the only writer of unit rows (tests/test_architecture.py
checks it). Every change a unit can go through has a public function here:
hold (`reserve_seats`, `reserve_general`, `hold_for_offer`), release
(`release_hold`, `expire_holds`), sell (`sell_hold`), take again
(`take_units_again`), free sold units (`free_sold_units`), add
(`create_units_for_tier`, `add_seats`, `add_places`, `copy_units`), remove
(`remove_places`, `remove_units`, `remove_tier_units`), block and unblock
(`block_seat`, `unblock_seat`). Each bumps the clock, and each that frees or
adds units offers them to the waiting list itself, so no caller can forget.

Against hoarding, the reserve functions also apply the event's per-buyer
limit and re-hold cool-down (migration 0010) under a per-(event, buyer)
advisory lock taken before any row lock; other paths that add to what a
buyer has take the same lock through `buyer_claims`.

Dependencies point one way: `waitlist` imports this module, never the
reverse. The waiting list is reached through `waitlist`, a `WaitingLine`
that `webapp.services.waiting.waitlist` installs when it is imported (the package's
`__init__` imports it, so it is always there). The offer engine needs to
take units, which only this module may do, and this module must offer freed
units to the line, which only the engine knows how to do; the small
interface below is what lets both hold without an import cycle.
"""
from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from webapp.models import Event, Hold, HoldKind, HoldStatus, Tier, Unit, UnitStatus, seat_label
from webapp.services.errors import (
    AccessCodeNeeded,
    Busy,
    HoldExpired,
    InvalidRequest,
    LimitExceeded,
    NotEnoughLeft,
    NotFound,
    PassRequired,
    SalesClosed,
    SeatsTaken,
    SessionEnded,
    TooSoonAgain,
)

CLOCK_SHARDS = 8
_TOUCHED = "inventory_touched_events"


class WaitingLine(Protocol):
    """What inventory asks of the waiting list (implemented by `webapp.services.waiting.waitlist`)."""

    def offer_released_units(self, session: Session, event_id: int) -> list[Hold]: ...

    def offer_ended(self, session: Session, hold: Hold) -> None: ...


class _NoLine:
    def __getattr__(self, name: str) -> Any:
        # Loud, never silent: selling without the line would break invariant 4.
        raise RuntimeError("The waiting list is not installed: import webapp.services.waiting.waitlist.")


waitlist: WaitingLine = _NoLine()


def install_waiting_line(line: WaitingLine) -> None:
    """Called once by `webapp.services.waiting.waitlist` on import."""
    global waitlist
    waitlist = line


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
    session.info.pop(_READS, None)


READS = _READS = "inventory_reads"


def read_once(session: Session, key: tuple, compute):
    """A read-only answer reused within one unit of work of this session.

    A page asks "what is left?" and "which tiers does the line keep?" from
    several places (tier picker, summary, waiting-list panel); one statement
    each is enough. Forgotten at every flush, commit and rollback, so a
    change in the same session is always seen.
    """
    reads = session.info.setdefault(_READS, {})
    if key not in reads:
        reads[key] = compute()
    return reads[key]


@sa_event.listens_for(Session, "after_flush")
@sa_event.listens_for(Session, "after_commit")
def _forget_reads(session: Session, *args) -> None:
    session.info.pop(_READS, None)


@sa_event.listens_for(Session, "do_orm_execute")
def _forget_reads_on_write(state) -> None:
    # Raw UPDATE/INSERT/DELETE statements do not flush: forget on them too.
    if state.session.info.get(_READS) and not state.is_select:
        sql = str(state.statement).lstrip()[:6].upper()
        if sql in ("UPDATE", "INSERT", "DELETE"):
            state.session.info.pop(_READS, None)


_VERSION = text("SELECT coalesce(sum(version), 0) FROM inventory_clock WHERE event_id = :e")


_VERSION_AND_SESSION = text(
    "SELECT coalesce(sum(version), 0) AS version,"
    " (SELECT session_version FROM users WHERE id = CAST(:u AS integer)) AS session_version"
    " FROM inventory_clock WHERE event_id = :e"
)


def inventory_version_and_session(connection, event_id: int, user_id: int | None) -> tuple[int, int | None]:
    """The event's inventory clock and the claimed user's session version: the map poll's one statement."""
    row = connection.execute(_VERSION_AND_SESSION, {"e": event_id, "u": user_id}).one()
    return row.version, row.session_version


def inventory_version(session, event_id: int) -> int:
    """The event's inventory clock (a session, or a connection of `single_statement`)."""
    def read() -> int:
        return session.execute(_VERSION, {"e": event_id}).scalar_one()

    return read() if isinstance(session, Connection) else read_once(session, ("version", event_id), read)


def get_event(session: Session, event_id: int) -> Event:
    event = session.get(Event, event_id)
    if event is None:
        raise NotFound("No such event.")
    return event


def _hold_expiry_sql(minutes: float):
    return text(f"now() + make_interval(secs => {float(minutes) * 60:.3f})")


def _create_hold(
    session: Session, *, event: Event, user_id: int, unit_ids: list[int], total_minor: int,
    currency: str, unit_prices: dict[int, int], kind: HoldKind = HoldKind.PURCHASE, minutes: float | None = None,
    waitlist_entry_id: int | None = None,
) -> Hold:
    ids = sorted(unit_ids)
    hold = Hold(
        event_id=event.id, user_id=user_id, kind=kind, status=HoldStatus.ACTIVE,
        unit_ids=ids, unit_prices=[unit_prices[u] for u in ids], total_minor=total_minor, currency=currency,
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
    if hold is None:
        return
    lapsed = session.execute(text("SELECT expires_at <= now() FROM holds WHERE id = :h"), {"h": hold.id}).scalar()
    if lapsed:
        # Its time had run out: it was let go, not replaced (the cool-down counts from then).
        release_hold(session, hold, status=HoldStatus.EXPIRED, reason="expired")
    else:
        release_hold(session, hold, status=HoldStatus.RELEASED, reason="replaced")


_BUYER_CLAIMS = text("SELECT tb_buyer_claims(:u, :e)")
# The same key as the reserve functions' pg_advisory_xact_lock((p_event << 32) | p_user) (migration 0010).
_TRY_BUYER_LOCK = text("SELECT pg_try_advisory_xact_lock((CAST(:e AS bigint) << 32) | CAST(:u AS bigint))")


def buyer_claims(session: Session, *, user_id: int, event_id: int) -> int:
    """Take the buyer's lock for this event and count what they have: tickets, live holds, places in line.

    The lock (transaction-scoped, migration 0010) serialises one buyer's
    reservations and joins for an event, so the per-buyer limit holds under
    any number of parallel requests. It comes before any row lock.
    """
    return session.execute(_BUYER_CLAIMS, {"u": user_id, "e": event_id}).scalar_one()


def buyer_limit_refusal(limit: int, have: int) -> LimitExceeded:
    """The buyer's words for "over the per-buyer limit of this event"."""
    if have == 0:
        return LimitExceeded(f"You can have at most {limit} tickets for this event.")
    noun = "ticket" if have == 1 else "tickets"
    room = f", so you can add {limit - have} more" if have < limit else ""
    return LimitExceeded(f"You already have {have} {noun} for this event; the limit is {limit}{room}.")


def check_buyer_room(session: Session, *, user_id: int, event: Event, adding: int) -> None:
    """Refuse (LimitExceeded) if `adding` more would take the buyer past the event's per-buyer limit."""
    have = buyer_claims(session, user_id=user_id, event_id=event.id)
    if have + adding > event.per_buyer_limit:
        raise buyer_limit_refusal(event.per_buyer_limit, have)


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


# ---------------------------------------------------------------------------
# Reserving: the grab itself is one SQL function per kind (migrations/sql/tb_hold_*.sql),
# so a reservation is one statement. Refusals come back as TBnnn errors.
# ---------------------------------------------------------------------------

# Each takes the buyer's access codes last: hidden tiers are refused without
# one that unlocks them (migration 0013's gate, before the hold is made).
_RESERVE_PLACES = text(
    "SELECT tb_reserve_places(:u, :e, CAST(:tiers AS int[]), CAST(:counts AS int[]), CAST(:session AS integer),"
    " CAST(:admission AS bigint), CAST(:access AS text[]))")
_RESERVE_SEATS = text("SELECT tb_reserve_seats(:u, :e, CAST(:seats AS bigint[]), CAST(:session AS integer),"
                      " CAST(:admission AS bigint), CAST(:access AS text[]))")
# Best available (migrations/sql/tb_hold_best.sql): chooses with SKIP LOCKED, then holds as a seat reserve does.
_RESERVE_BEST = text("SELECT tb_reserve_best(:u, :e, CAST(:tier AS integer), CAST(:count AS integer),"
                     " CAST(:session AS integer), CAST(:admission AS bigint), CAST(:access AS text[]))")


class _NeedsPreparation(Exception):
    """A basket to give back while people wait, or a lapsed hold on a seat."""


class _DueHolds(Exception):
    """Too few left, but holds have run out unnoticed: expire them and look again."""

    def __init__(self, refusal: NotEnoughLeft):
        super().__init__(refusal.message)
        self.refusal = refusal


def _refusal(error: DBAPIError) -> Exception | None:
    """The buyer's words for a refusal raised by a reserve function."""
    code = getattr(error.orig, "pgcode", None) or ""
    if not code.startswith("TB"):
        return None
    diag = error.orig.diag  # type: ignore[union-attr]  # psycopg2's error, with a pgcode
    detail = json.loads(diag.message_detail) if diag.message_detail else {}
    if code == "TB401":
        return SessionEnded()
    if code == "TB404":
        return NotFound("No such event.")
    if code == "TB403":
        return PassRequired()
    if code == "TB402":
        return AccessCodeNeeded()
    if code == "TB409":
        ended = diag.message_primary == "ended"
        return SalesClosed("Sales for this event have ended.") if ended else SalesClosed()
    if code == "TB400":
        return InvalidRequest(diag.message_primary)
    if code == "TB413":
        if diag.message_primary == "buyer limit":
            return buyer_limit_refusal(detail["limit"], detail["have"])
        return LimitExceeded(f"You can buy at most {detail['limit']} tickets in one order.")
    if code == "TB429":
        return TooSoonAgain(detail["wait"], expired=detail["expired"], seated=detail["seated"])
    if code == "TB410":
        short = NotEnoughLeft(detail["tier"], detail["wanted"], detail["left"],
                              waitlist_open=detail["waitlist"] and detail["left"] == 0)
        return _DueHolds(short) if detail["due"] else short
    if code == "TB423":
        return SeatsTaken([seat_label(d["section"], d["row"], d["seat"]) for d in detail], [d["id"] for d in detail])
    if code == "TB503":
        return _NeedsPreparation()
    return None


def _run_reserve(connection, statement, params: dict) -> int:
    try:
        return connection.execute(statement, params).scalar_one()
    except DBAPIError as error:
        refusal = _refusal(error)
        if refusal is None:
            raise
        raise refusal from None


def _places_params(user_id: int, event_id: int, quantities: dict[int, int]) -> dict:
    if any(int(n) < 0 for n in quantities.values()):
        raise InvalidRequest("Quantities cannot be negative.")
    wanted = {int(t): int(n) for t, n in quantities.items() if int(n) > 0}
    if not wanted:
        raise InvalidRequest("Choose how many tickets you want.")
    if len(wanted) > 50 or sum(wanted.values()) > 1000:
        raise LimitExceeded("That is more tickets than one order can hold.")
    tiers = sorted(wanted)
    return {"u": user_id, "e": event_id, "tiers": tiers, "counts": [wanted[t] for t in tiers], "session": None,
            "admission": None, "access": None}


def _seats_params(user_id: int, event_id: int, unit_ids: Iterable[int]) -> dict:
    ids = sorted({int(i) for i in unit_ids})
    if not ids:
        raise InvalidRequest("Pick at least one seat.")
    if len(ids) > 1000:
        raise LimitExceeded("That is more seats than one order can hold.")
    return {"u": user_id, "e": event_id, "seats": ids, "session": None, "admission": None, "access": None}


def _best_params(user_id: int, event_id: int, tier_id: int, count: int) -> dict:
    if count < 1:
        raise InvalidRequest("Choose how many seats you want.")
    if count > 100:
        raise LimitExceeded("That is more seats than one order can hold.")
    return {"u": user_id, "e": event_id, "tier": tier_id, "count": count, "session": None, "admission": None,
            "access": None}


def _prepare(session: Session, *, user_id: int, event_id: int, seat_ids: list[int] | None) -> None:
    """What the SQL grab leaves to Python: giving units to the waiting list first."""
    # The buyer's lock before the basket's row, as the reserve functions take them.
    buyer_claims(session, user_id=user_id, event_id=event_id)
    release_active_basket(session, user_id=user_id, event_id=event_id)
    if seat_ids:
        _expire_stale_holds_on_units(session, seat_ids)


def _reserve_in_session(session: Session, statement, params: dict, seat_ids: list[int] | None) -> Hold:
    # Savepoints, so a refusal undoes the function's work and nothing else
    # of the caller's transaction; the caller commits.
    for attempt in range(3):
        try:
            with session.begin_nested():
                hold_id = _run_reserve(session.connection(), statement, params)
            return session.get_one(Hold, hold_id)
        except _NeedsPreparation:
            _prepare(session, user_id=params["u"], event_id=params["e"], seat_ids=seat_ids)
        except _DueHolds as due:
            # Holds had run out without the sweep noticing yet; their places
            # go back (to the waiting list first). Look once more.
            if attempt or not expire_due_holds_now(event_id=params["e"]):
                raise due.refusal from None
    raise Busy()


def reserve_seats(session: Session, *, user_id: int, event_id: int, unit_ids: Iterable[int],
                  admission_id: int | None = None, access: Iterable[str] = ()) -> Hold:
    """Hold exactly these numbered seats, all or nothing (within the caller's transaction)."""
    params = _seats_params(user_id, event_id, unit_ids)
    params["admission"] = admission_id
    params["access"] = list(access) if access else None
    return _reserve_in_session(session, _RESERVE_SEATS, params, params["seats"])


def reserve_best(session: Session, *, user_id: int, event_id: int, tier_id: int, count: int,
                 admission_id: int | None = None, access: Iterable[str] = ()) -> Hold:
    """Hold the best `count` free seats of a tier, together where possible (within the caller's transaction)."""
    params = _best_params(user_id, event_id, tier_id, count)
    params["admission"] = admission_id
    params["access"] = list(access) if access else None
    return _reserve_in_session(session, _RESERVE_BEST, params, None)


def reserve_general(session: Session, *, user_id: int, event_id: int, quantities: dict[int, int],
                    admission_id: int | None = None, access: Iterable[str] = ()) -> Hold:
    """Hold N general-admission places per tier, all or nothing (within the caller's transaction)."""
    params = _places_params(user_id, event_id, quantities)
    params["admission"] = admission_id
    params["access"] = list(access) if access else None
    return _reserve_in_session(session, _RESERVE_PLACES, params, None)


@dataclass(frozen=True)
class Reservation:
    hold_id: int


def reserve_now(*, user_id: int, event_id: int, quantities: dict[int, int] | None = None,
                seat_ids: Iterable[int] | None = None, best: tuple[int, int] | None = None,
                session_version: int | None = None, admission_id: int | None = None,
                access: Iterable[str] = ()) -> Reservation:
    """The buyer's reserve click: one statement that is its own transaction.

    The one place where inventory commits by itself (see README, "Where
    things are"): run in autocommit, the SQL function is the whole
    transaction, so a reservation costs one round trip instead of ten. When
    the function asks for preparation (the waiting list's offer engine must
    take a released basket or a lapsed hold's seats), the same function runs
    inside an ordinary transaction after that preparation, and is committed
    here too. `session_version`: the one the buyer's cookie claims, checked
    by the same statement (SessionEnded when it is no longer the user's), so
    the reserve needs no separate session lookup. `admission_id`: the
    waiting-room admission the buyer's signed pass names; while the event's
    room is on, the statement refuses (PassRequired) unless it is this
    buyer's and current. `best`: (tier id, count) — the best free seats of
    that tier, together in one row where possible (tb_reserve_best).
    `access`: the buyer's access codes for this event (hidden tiers need one).
    """
    from webapp.database import single_statement
    from webapp.extensions import db

    seats: list[int] | None = None
    if best is not None:
        statement, params = _RESERVE_BEST, _best_params(user_id, event_id, *best)
    elif seat_ids is not None:
        statement, params = _RESERVE_SEATS, _seats_params(user_id, event_id, seat_ids)
        seats = params["seats"]
    else:
        statement, params = _RESERVE_PLACES, _places_params(user_id, event_id, quantities or {})
    params["session"] = session_version
    params["admission"] = admission_id
    params["access"] = list(access) if access else None
    for attempt in range(2):
        with single_statement(writes=True) as connection:
            try:
                return Reservation(_run_reserve(connection, statement, params))
            except _NeedsPreparation:
                break
            except _DueHolds as due:
                if attempt or not expire_due_holds_now(event_id=event_id):
                    raise due.refusal from None
    # The rare road: prepare and reserve in one transaction of the session,
    # which is this function's to end either way: a refusal must not leave
    # the preparation (a basket given back, the buyer's lock) pending.
    try:
        hold = _reserve_in_session(db.session(), statement, params, seats)
        hold_id = hold.id
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return Reservation(hold_id)


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


def available_count(session: Session, tier_id: int) -> int:
    return session.execute(
        text("SELECT count(*) FROM units WHERE tier_id = :t AND status = 'available'"), {"t": tier_id}
    ).scalar_one()


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
    hold.ended_at = func.now()
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
    return read_once(session, ("tier_counts", event_id), lambda: _tier_counts(session, event_id))


# Also a part of the event page's one read (catalog.read_event_page).
TIER_COUNTS_SQL = (
    "SELECT t.id, t.capacity,"
    " count(*) FILTER (WHERE u.status = 'available') AS available,"
    " count(*) FILTER (WHERE u.status = 'held') AS held,"
    " count(*) FILTER (WHERE u.status = 'sold') AS sold,"
    " count(*) FILTER (WHERE u.status = 'blocked') AS blocked"
    " FROM tiers t LEFT JOIN units u ON u.tier_id = t.id"
    " WHERE t.event_id = :e GROUP BY t.id, t.capacity"
)
_TIER_COUNTS = text(TIER_COUNTS_SQL)


def _tier_counts(session: Session, event_id: int) -> dict[int, TierCounts]:
    return {r.id: TierCounts(*r) for r in session.execute(_TIER_COUNTS, {"e": event_id}).all()}


def tiers_kept_for_waitlist(session: Session, event_id: int) -> set[int]:
    """Tiers the public cannot buy from because people are on the waiting list for them.

    An entry for "any tier" (tier_id NULL) keeps every tier of the event.
    """
    return set(read_once(session, ("waitlist_kept", event_id), lambda: session.execute(
        text("SELECT tb_waitlist_reserved_tiers(:e)"), {"e": event_id}).scalar_one()))


# The waiting list's three figures for an event; also a part of the event
# page's one read (catalog.read_event_page), hence columns apart from their statement.
WAITLIST_FIGURES_COLUMNS = (
    " (SELECT json_object_agg(tier_id, n) FROM (SELECT u.tier_id, count(*) AS n FROM units u"
    "   JOIN holds h ON h.id = u.hold_id WHERE u.event_id = :e AND h.kind = 'offer' GROUP BY u.tier_id) o) AS offered,"
    " (SELECT json_object_agg(coalesce(tier_id, 0), json_build_array(people, tickets)) FROM ("
    "   SELECT tier_id, count(*) AS people, sum(quantity) AS tickets FROM waitlist_entries"
    "   WHERE event_id = :e AND status = 'waiting' GROUP BY tier_id) w) AS waiting,"
    " (SELECT count(*) FROM waitlist_entries WHERE event_id = :e AND status = 'offered') AS offers_out"
)
_WAITLIST_FIGURES = text("SELECT" + WAITLIST_FIGURES_COLUMNS)


@dataclass(frozen=True)
class WaitlistFigures:
    offered: dict | None  # tier id (as text) -> units held as offers
    waiting: dict | None  # tier id (as text, 0 = any) -> [people, tickets]
    offers_out: int


def waitlist_figures(session: Session, event_id: int) -> WaitlistFigures:
    """Units held as offers, people and tickets waiting per tier, and offers out."""
    return read_once(session, ("waitlist_figures", event_id), lambda: WaitlistFigures(
        *session.execute(_WAITLIST_FIGURES, {"e": event_id}).one()))


def create_units_for_tier(session: Session, tier: Tier, seats: list[dict] | None = None) -> None:
    """Create the unit rows of a tier (given seats, or `capacity` GA places); the line gets them first."""
    if _insert_units(session, tier, seats):
        waitlist.offer_released_units(session, tier.event_id)


def _insert_units(session: Session, tier: Tier, seats: list[dict] | None) -> bool:
    if tier.seated:
        if not seats:
            return False
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
    return True


def add_seats(session: Session, event_id: int, seats_by_tier: Iterable[tuple[Tier, list[dict]]]) -> int:
    """Create numbered seats in several tiers at once; the line is offered them once, at the end."""
    created = 0
    for tier, seats in seats_by_tier:
        if _insert_units(session, tier, seats):
            created += len(seats)
    if created:
        waitlist.offer_released_units(session, event_id)
    return created


# Best first for "best available" (lower is better), across the sections laid
# out together: rows front (smallest pos_y) to back, and in each row either
# from the middle of the whole row outwards or left to right. Migration 0012
# ranks older layouts with the same "front_centre" formula.
_RANK_SEATS = {
    "front_centre": "abs(2 * pos_x - (min(pos_x) OVER across + max(pos_x) OVER across))",
    "row_order": "pos_x - min(pos_x) OVER across",
}


def rank_seats(session: Session, event_id: int, sections: list[str], order: str) -> None:
    """Set the best-first rank of these sections' seats (the layout generator's choice of order)."""
    session.execute(text(
        "UPDATE units u SET best_rank = r.rank FROM ("
        " SELECT id, (dense_rank() OVER (ORDER BY pos_y) - 1) * 1000 + " + _RANK_SEATS[order] + " AS rank"
        " FROM units WHERE event_id = :e AND section = ANY(:sections) AND seat_number IS NOT NULL"
        " WINDOW across AS (PARTITION BY pos_y)) r WHERE u.id = r.id"),
        {"e": event_id, "sections": sections})


def add_places(session: Session, tier: Tier, count: int) -> None:
    """Raise a general-admission tier's capacity by `count` places; people in line get them first."""
    session.execute(
        text("INSERT INTO units (event_id, tier_id, status)"
             " SELECT :e, :t, 'available' FROM generate_series(1, :n)"),
        {"e": tier.event_id, "t": tier.id, "n": count},
    )
    tier.capacity += count
    session.flush()
    touch_inventory(session, tier.event_id)
    waitlist.offer_released_units(session, tier.event_id)


def copy_units(session: Session, *, source_tier_id: int, tier: Tier) -> int:
    """Give a new tier the units of another, all free except blocked (house) seats, which stay blocked."""
    copied = session.execute(
        text(
            "INSERT INTO units (event_id, tier_id, status, section, row_label, seat_number, pos_x, pos_y)"
            " SELECT :e, :t, CASE WHEN status = 'blocked' THEN 'blocked' ELSE 'available' END,"
            " section, row_label, seat_number, pos_x, pos_y FROM units WHERE tier_id = :src ORDER BY id"
        ),
        {"e": tier.event_id, "t": tier.id, "src": source_tier_id},
    )
    tier.capacity = copied.rowcount  # type: ignore[attr-defined]  # a CursorResult; the stubs say Result
    session.flush()
    touch_inventory(session, tier.event_id)
    waitlist.offer_released_units(session, tier.event_id)
    return tier.capacity


def remove_places(session: Session, tier: Tier, count: int) -> int:
    """Delete `count` free general-admission places, or none; returns how many could go.

    Only free places go, never one a buyer is taking at this instant (SKIP
    LOCKED), and never one a cancelled ticket still points at.
    """
    ids = session.scalars(
        text(
            "SELECT id FROM units u WHERE tier_id = :t AND status = 'available'"
            " AND NOT EXISTS (SELECT 1 FROM tickets k WHERE k.unit_id = u.id)"
            " ORDER BY id DESC LIMIT :n FOR UPDATE SKIP LOCKED"
        ),
        {"t": tier.id, "n": count},
    ).all()
    if len(ids) < count:
        return len(ids)
    session.execute(text("DELETE FROM units WHERE id = ANY(:ids)"), {"ids": list(ids)})
    tier.capacity -= count
    session.flush()
    touch_inventory(session, tier.event_id)
    return count


def remove_units(session: Session, event: Event, unit_ids: list[int]) -> None:
    """Delete units the caller has locked and checked (free or blocked, never ticketed); capacities follow."""
    removed = session.execute(
        text("DELETE FROM units WHERE id = ANY(:ids) RETURNING tier_id"), {"ids": unit_ids}
    ).scalars().all()
    per_tier: dict[int, int] = {}
    for tier_id in removed:
        per_tier[tier_id] = per_tier.get(tier_id, 0) + 1
    for tier in event.tiers:
        if tier.id in per_tier:
            tier.capacity -= per_tier[tier.id]
    session.flush()
    touch_inventory(session, event.id)


def remove_tier_units(session: Session, tier: Tier) -> None:
    """Delete every unit of a tier that is about to be deleted (the caller checked none is sold or held)."""
    session.execute(text("DELETE FROM units WHERE tier_id = :t"), {"t": tier.id})
    touch_inventory(session, tier.event_id)


def block_seat(session: Session, unit: Unit) -> None:
    """Take an available seat (locked by the caller) off sale: a house seat, a broken seat."""
    unit.status = UnitStatus.BLOCKED
    session.flush()
    touch_inventory(session, unit.event_id)


def unblock_seat(session: Session, unit: Unit) -> None:
    """Give a blocked seat (locked by the caller) back; like any freed unit, the line comes first."""
    unit.status = UnitStatus.AVAILABLE
    session.flush()
    touch_inventory(session, unit.event_id)
    waitlist.offer_released_units(session, unit.event_id)


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
    total = sum(tiers[t].price_minor * count for t, count in per_tier.items())
    hold = _create_hold(
        session, event=event, user_id=user_id, unit_ids=unit_ids, total_minor=total,
        currency=tiers[next(iter(per_tier))].currency, unit_prices=prices, kind=HoldKind.OFFER,
        minutes=float(event.offer_hours) * 60, waitlist_entry_id=waitlist_entry_id,
    )
    _mark_held(session, hold)
    return hold, per_tier


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
    if not session.execute(_TRY_BUYER_LOCK, {"e": hold.event_id, "u": hold.user_id}).scalar():
        raise Busy("You are reserving other tickets for this event at this moment; try paying again in a moment.")
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
        raise HoldExpired("This reservation has expired; you already have a newer one for this event.")
    # The buyer may have bought or held other tickets meanwhile: the
    # per-buyer limit counts this hold again.
    have = session.execute(
        text("SELECT tb_buyer_count(:u, :e)"), {"u": hold.user_id, "e": hold.event_id}).scalar_one()
    if have + len(hold.unit_ids) > hold.event.per_buyer_limit:
        raise HoldExpired(
            f"This reservation has expired, and taking its {len(hold.unit_ids)} tickets again would take you past "
            f"this event's limit of {hold.event.per_buyer_limit} tickets per buyer (you have {have}).")
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
    waitlist.offer_released_units(session, event_id)
