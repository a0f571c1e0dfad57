"""The buyer's reserve: one statement per reservation, its refusals in the buyer's words.

A reservation is one call of a SQL function: tb_reserve_places (general
admission), tb_reserve_seats (these numbered seats) or tb_reserve_best (the
best free seats of a tier). Each checks the event, the buyer's session, their
waiting-room admission and access codes, applies the per-order and per-buyer
limits and the re-hold cool-down, and holds the units, so the buyer's click
costs one round trip. A refusal comes back as a TBnnn error, turned into a
service error by one table (`REFUSALS`); the shop and the API answer those
errors, never the codes.

Two things the functions leave to Python, asked for with codes of their own:
holds that ran out without the sweep noticing yet (expired in a transaction
of their own, then the statement runs once more), and, while people wait in
line, a basket to give back or a lapsed hold on a picked seat (the offer
engine must see those units first, so the statement runs again inside an
ordinary transaction after that preparation).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from flask_babel import gettext as _
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from webapp.models import Hold, HoldKind, HoldStatus, seat_label
from webapp.services.errors import (
    AccessCodeNeeded,
    Busy,
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
from webapp.services.selling.inventory.buyers import address_limit_refusal, buyer_claims, buyer_limit_refusal
from webapp.services.selling.inventory.expiry import (
    expire_due_holds_now,
    expire_stale_holds_on_units,
    release_hold,
)

# Each takes the buyer's access codes last: hidden tiers are refused without
# one that unlocks them, before any hold is made.
# ... and the client's address after them, for the event's limit per address (NULL: no such rule).
_RESERVE_PLACES = text(
    "SELECT tb_reserve_places(:u, :e, CAST(:tiers AS int[]), CAST(:counts AS int[]), CAST(:session AS integer),"
    " CAST(:admission AS bigint), CAST(:access AS text[]), CAST(:addr AS inet))")
_RESERVE_SEATS = text("SELECT tb_reserve_seats(:u, :e, CAST(:seats AS bigint[]), CAST(:session AS integer),"
                      " CAST(:admission AS bigint), CAST(:access AS text[]), CAST(:addr AS inet))")
# Chooses with SKIP LOCKED, then holds as a seat reserve does.
_RESERVE_BEST = text("SELECT tb_reserve_best(:u, :e, CAST(:tier AS integer), CAST(:count AS integer),"
                     " CAST(:session AS integer), CAST(:admission AS bigint), CAST(:access AS text[]),"
                     " CAST(:addr AS inet), CAST(:wheelchair AS integer), CAST(:section AS text))")
# The address's lock before the buyer's, as the reserve functions take them (counting nothing new); the
# address setting the rule leaves is cleared at once, or the waiting list's offers made while preparing
# would take it as their holds' address.
_ADDRESS_LOCK = text("SELECT tb_address_rules(:u, :e, CAST(:addr AS inet), 0);"
                     " SELECT set_config('tb.client_addr', '', true)")


class BestSeats(NamedTuple):
    """A best-available ask: `quantity` seats of a tier, `wheelchair` of them wheelchair spaces, each with
    its companion seat (counted in `quantity`), within one `section` if given."""

    tier_id: int
    quantity: int
    wheelchair: int = 0
    section: str | None = None


class _NeedsPreparation(Exception):
    """A basket to give back while people wait, or a lapsed hold on a seat."""


class _DueHolds(Exception):
    """Too few left, but holds have run out unnoticed: expire them and look again."""

    def __init__(self, refusal: NotEnoughLeft):
        super().__init__(refusal.message)
        self.refusal = refusal


def _sales_closed(diag, detail: dict) -> SalesClosed:
    return SalesClosed("Sales for this event have ended.") if diag.message_primary == "ended" else SalesClosed()


def _over_a_limit(diag, detail: dict) -> LimitExceeded:
    if diag.message_primary == "buyer limit":
        return buyer_limit_refusal(detail["limit"], detail["have"])
    if diag.message_primary == "address limit":
        return address_limit_refusal(detail["limit"], detail["have"])
    return LimitExceeded(_("You can buy at most %(limit)s tickets in one order.", limit=detail["limit"]))


def _too_few_left(diag, detail: dict) -> Exception:
    short = NotEnoughLeft(detail["tier"], detail["wanted"], detail["left"],
                          waitlist_open=detail["waitlist"] and detail["left"] == 0)
    return _DueHolds(short) if detail["due"] else short


def _seats_taken(diag, detail: list) -> SeatsTaken:
    return SeatsTaken([seat_label(d["section"], d["row"], d["seat"]) for d in detail], [d["id"] for d in detail])


# What each refusal of a reserve function (its SQLSTATE, with the facts in
# its DETAIL as JSON) means to the buyer: the one place the codes are read.
REFUSALS: dict[str, Callable[[Any, Any], Exception]] = {
    "TB400": lambda diag, detail: InvalidRequest(diag.message_primary),
    "TB401": lambda diag, detail: SessionEnded(),
    "TB402": lambda diag, detail: AccessCodeNeeded(),
    "TB403": lambda diag, detail: PassRequired(),
    "TB404": lambda diag, detail: NotFound("No such event."),
    "TB409": _sales_closed,
    "TB410": _too_few_left,
    "TB413": _over_a_limit,
    "TB423": _seats_taken,
    "TB429": lambda diag, detail: TooSoonAgain(detail["wait"], expired=detail["expired"], seated=detail["seated"]),
    "TB503": lambda diag, detail: _NeedsPreparation(),
}


def _run(connection, statement: TextClause, params: dict) -> int:
    """The reserve statement: the new hold's id, or its refusal raised as a service error."""
    try:
        return connection.execute(statement, params).scalar_one()
    except DBAPIError as error:
        read = REFUSALS.get(getattr(error.orig, "pgcode", None) or "")
        if read is None:
            raise
        diag = error.orig.diag  # type: ignore[union-attr]  # psycopg2's error, with a pgcode
        raise read(diag, json.loads(diag.message_detail) if diag.message_detail else {}) from None


@dataclass(frozen=True)
class _Request:
    statement: TextClause
    params: dict
    seat_ids: list[int] | None  # the picked seats, whose lapsed holds preparation expires

    @property
    def event_id(self) -> int:
        return self.params["e"]


def _request(*, user_id: int, event_id: int, quantities: dict[int, int] | None, seat_ids: Iterable[int] | None,
             best: tuple | None, session_version: int | None, admission_id: int | None,
             access: Iterable[str], client_addr: str | None) -> _Request:
    """The statement for what the buyer asks, its parameters checked before any round trip."""
    if best is not None:
        ask = BestSeats(*best)
        if ask.quantity < 1:
            raise InvalidRequest(_("Choose how many seats you want."))
        if ask.quantity > 100:
            raise LimitExceeded(_("That is more seats than one order can hold."))
        if ask.wheelchair < 0 or 2 * ask.wheelchair > ask.quantity:
            raise InvalidRequest(_("Each wheelchair space comes with a companion seat: ask for two seats per"
                                   " wheelchair space."))
        if ask.section is not None and not 0 < len(ask.section) <= 60:
            raise InvalidRequest(_("Choose one of the venue's sections."))
        request = _Request(_RESERVE_BEST, {"tier": ask.tier_id, "count": ask.quantity, "wheelchair": ask.wheelchair,
                                           "section": ask.section}, None)
    elif seat_ids is not None:
        ids = sorted({int(i) for i in seat_ids})
        if not ids:
            raise InvalidRequest(_("Pick at least one seat."))
        if len(ids) > 1000:
            raise LimitExceeded(_("That is more seats than one order can hold."))
        request = _Request(_RESERVE_SEATS, {"seats": ids}, ids)
    else:
        quantities = quantities or {}
        if any(int(n) < 0 for n in quantities.values()):
            raise InvalidRequest(_("Quantities cannot be negative."))
        wanted = {int(t): int(n) for t, n in quantities.items() if int(n) > 0}
        if not wanted:
            raise InvalidRequest(_("Choose how many tickets you want."))
        if len(wanted) > 50 or sum(wanted.values()) > 1000:
            raise LimitExceeded(_("That is more tickets than one order can hold."))
        tiers = sorted(wanted)
        request = _Request(_RESERVE_PLACES, {"tiers": tiers, "counts": [wanted[t] for t in tiers]}, None)
    request.params.update(u=user_id, e=event_id, session=session_version, admission=admission_id,
                          access=list(access) if access else None, addr=client_addr)
    return request


@dataclass(frozen=True)
class Reservation:
    hold_id: int


def reserve(*, user_id: int, event_id: int, quantities: dict[int, int] | None = None,
            seat_ids: Iterable[int] | None = None, best: tuple | None = None,
            session_version: int | None = None, admission_id: int | None = None,
            access: Iterable[str] = (), client_addr: str | None = None) -> Reservation:
    """The buyer's reserve click: one statement that is its own transaction.

    The one place where inventory commits by itself (see docs/design.md,
    "Transactions"): run in autocommit, the SQL function is the whole
    transaction, so a reservation costs one round trip instead of ten. When
    the function asks for preparation, the same function runs inside an
    ordinary transaction after it, committed here too.

    Ask for `quantities` (tier id -> places), `seat_ids`, or `best`: (tier
    id, count), the best free seats of that tier, together in one row where
    possible. `session_version`: the one the buyer's cookie claims, checked
    by the same statement (SessionEnded when it is no longer the user's), so
    the reserve needs no separate session lookup. `admission_id`: the
    waiting-room admission the buyer's signed pass names; while the event's
    room is on, the statement refuses (PassRequired) unless it is this
    buyer's and current. `access`: the buyer's access codes for this event.
    `client_addr`: the address the request came from, for the event's limit
    per address (None: that rule does not apply).
    """
    from webapp.database import single_statement
    from webapp.extensions import db

    request = _request(user_id=user_id, event_id=event_id, quantities=quantities, seat_ids=seat_ids, best=best,
                       session_version=session_version, admission_id=admission_id, access=access,
                       client_addr=client_addr)
    for attempt in range(2):
        with single_statement(writes=True) as connection:
            try:
                return Reservation(_run(connection, request.statement, request.params))
            except _NeedsPreparation:
                break
            except _DueHolds as due:
                if attempt or not expire_due_holds_now(event_id=event_id):
                    raise due.refusal from None
    # The rare road: prepare and reserve in one transaction of the session,
    # which is this function's to end either way: a refusal must not leave
    # the preparation (a basket given back, the buyer's lock) pending.
    try:
        hold_id = reserve_in_session(db.session(), user_id=user_id, event_id=event_id, quantities=quantities,
                                     seat_ids=seat_ids, best=best, session_version=session_version,
                                     admission_id=admission_id, access=access, client_addr=client_addr).id
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return Reservation(hold_id)


def reserve_in_session(session: Session, *, user_id: int, event_id: int, quantities: dict[int, int] | None = None,
                       seat_ids: Iterable[int] | None = None, best: tuple | None = None,
                       session_version: int | None = None, admission_id: int | None = None,
                       access: Iterable[str] = (), client_addr: str | None = None) -> Hold:
    """Reserve as `reserve` does, preparing first when asked to, within the caller's transaction.

    `reserve`'s road when the statement asks for preparation; the caller
    commits. Savepoints, so a refusal undoes the function's work and nothing
    else of the caller's transaction.
    """
    request = _request(user_id=user_id, event_id=event_id, quantities=quantities, seat_ids=seat_ids, best=best,
                       session_version=session_version, admission_id=admission_id, access=access,
                       client_addr=client_addr)
    for attempt in range(3):
        try:
            with session.begin_nested():
                hold_id = _run(session.connection(), request.statement, request.params)
            return session.get_one(Hold, hold_id)
        except _NeedsPreparation:
            _prepare(session, request)
        except _DueHolds as due:
            # Holds had run out without the sweep noticing yet; their places
            # go back (to the waiting list first). Look once more: a second
            # shortfall is a real one.
            if attempt or not expire_due_holds_now(event_id=request.event_id):
                raise due.refusal from None
    raise Busy()


def _prepare(session: Session, request: _Request) -> None:
    """What the SQL grab leaves to Python: giving units to the waiting list first."""
    user_id, event_id = request.params["u"], request.event_id
    # The address's lock, then the buyer's, before the basket's row, as the reserve functions take them.
    if request.params["addr"] is not None:
        session.execute(_ADDRESS_LOCK, {"u": user_id, "e": event_id, "addr": request.params["addr"]})
    buyer_claims(session, user_id=user_id, event_id=event_id)
    release_active_basket(session, user_id=user_id, event_id=event_id)
    if request.seat_ids:
        expire_stale_holds_on_units(session, request.seat_ids)


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
