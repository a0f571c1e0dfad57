"""Discount codes and access codes (migration 0013).

A discount code takes a percentage or a fixed amount off each eligible
ticket of a hold. The buyer applies it on the hold page; the hold then
carries the code, what it takes off each unit and the total after it, and
the order made from the hold records all three (each ticket's price is its
held price less its discount, so the tickets always add up to the total).

Uses. A code's uses are the confirmed orders that carry it plus the live
holds that carry it. A hold holds its use from the moment the code is
applied, so a buyer who saw the discount can pay it; releasing or expiring
the hold gives the use back (it is no longer live), and a cancelled or
refunded order gives it back too. Counting and taking a use happen under
the code row's lock, so N concurrent buyers of an N-use code get exactly N.

Lock order: the buyer's hold row, then (paying a lapsed hold again) its
units, then the code row. The code is always the last lock taken, and
nothing locks a code and then anything else, so code locks never take part
in a cycle. Paying a hold whose code was applied while it was live needs no
lock on the code: the use is already the hold's. Paying a lapsed hold again
takes the use again under the code's lock (`claim_again`).

An access code unlocks hidden tiers. The reserve functions refuse a hidden
tier unless one of the buyer's access codes (remembered per event in the
session, see webapp/shop/access.py) unlocks it (tb_access_gate).

The organiser's side (creating, editing, bulk batches, each code's figures)
is services/admin/codes.py.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from webapp.models import Code, CodeKind, Hold, HoldStatus, PaymentAttempt, PaymentStatus
from webapp.services.errors import (
    AccessCodeNeeded,
    BookingError,
    HoldNotActive,
    InvalidRequest,
    NotFound,
    PaymentInProgress,
)

CODE_FORM = re.compile(r"[A-Z0-9][A-Z0-9_-]{2,39}")


class CodeRefused(BookingError):
    """The code cannot be used here, now: unknown, off, outside its window, used up, or not for these tickets."""

    status_code = 422


class CodeUsedUp(CodeRefused):
    """Used up, told only to a buyer who has used the code before (anyone else hears `cant_be_used`)."""

    status_code = 409


def cant_be_used(code_text: str) -> CodeRefused:
    """One answer for a code that does not exist and one that exists but cannot be used now (off, early, late,
    used up), in the same words and status: a guesser learns nothing from the difference."""
    return CodeRefused(_("The code %(code)s can't be used for this event.", code=code_text))


def normalise(raw: str | None) -> str | None:
    """The stored spelling of a code a buyer typed (any case, spaces around), or None if it cannot be one."""
    code = (raw or "").strip().upper()
    return code if CODE_FORM.fullmatch(code) else None


def unit_discounts(code: Code, tiers: list[int], prices: list[int]) -> list[int]:
    """What the code takes off each unit (same order as `tiers`/`prices`); 0 for units it does not cover.

    A percentage rounds half up to the cent, per ticket; a fixed amount
    never takes a ticket below zero.
    """
    covered = set(code.tier_ids) if code.tier_ids else None
    out = []
    for tier_id, price in zip(tiers, prices, strict=True):
        if covered is not None and tier_id not in covered:
            out.append(0)
        elif code.percent_off is not None:
            out.append((price * code.percent_off + 50) // 100)
        else:
            out.append(min(price, code.amount_off_minor or 0))
    return out


def terms(percent_off: int | None, amount_off_minor: int | None, currency: str = "EUR") -> str:
    """"20% off" / "€5.00 off each ticket", for the hold page and the admin list."""
    from webapp.templating import money

    if percent_off is not None:
        return _("%(percent)s%% off", percent=percent_off)
    if amount_off_minor is not None:
        return _("%(amount)s off each ticket", amount=money(amount_off_minor, currency))
    return _("unlocks hidden tiers")


_USES = text(
    "SELECT (SELECT count(*) FROM orders WHERE code_id = :c AND status = 'confirmed')"
    "     + (SELECT count(*) FROM holds WHERE code_id = :c AND status = 'active' AND id <> :h) AS total,"
    "       (SELECT count(*) FROM orders WHERE code_id = :c AND status = 'confirmed' AND user_id = :u)"
    "     + (SELECT count(*) FROM holds WHERE code_id = :c AND status = 'active' AND id <> :h"
    "        AND user_id = :u) AS mine,"
    "       (:from IS NOT NULL AND now() < :from) AS early, (:until IS NOT NULL AND now() >= :until) AS late"
)


def _lock_code(session: Session, event_id: int, code: str) -> Code | None:
    return session.scalars(
        select(Code).where(Code.event_id == event_id, Code.code == code, Code.kind == CodeKind.DISCOUNT.value)
        .with_for_update().execution_options(populate_existing=True)
    ).first()


def _check_usable(session: Session, code: Code, hold: Hold, *, known: bool = False) -> None:
    """Refuse a code that is off, outside its window or used up (the caller holds the code's lock).

    Why is told only to a buyer who has used the code (`known`: their own
    hold carried it); anyone else is answered as for a code that does not
    exist, so the answers cannot be used to find codes that do.
    """
    shown = code.code
    # Counted after the lock was granted: READ COMMITTED gives this statement
    # a snapshot that sees every use committed by those who held it before.
    uses = session.execute(_USES, {"c": code.id, "h": hold.id, "u": hold.user_id,
                                   "from": code.valid_from, "until": code.valid_until}).one()
    used_up = code.max_uses is not None and uses.total >= code.max_uses
    if not (known or uses.mine) and (not code.active or uses.early or uses.late or used_up):
        raise cant_be_used(shown)
    if not code.active:
        raise CodeRefused(_("The code %(code)s is no longer valid.", code=shown))
    if uses.early:
        raise CodeRefused(_("The code %(code)s is not valid yet.", code=shown))
    if uses.late:
        raise CodeRefused(_("The code %(code)s has expired.", code=shown))
    if used_up:
        raise CodeUsedUp(_("The code %(code)s has been used up.", code=shown))
    if code.per_buyer_max is not None and uses.mine >= code.per_buyer_max:
        raise CodeUsedUp(ngettext("The code %(code)s can be used once per buyer, and you have used it already.",
                                  "The code %(code)s can be used %(num)s times per buyer, and you have used it"
                                  " already.", code.per_buyer_max, code=shown))


def _base_prices(session: Session, hold: Hold) -> tuple[list[int], list[int]]:
    """The hold's units' tiers and held prices, in unit_ids order."""
    rows = {r.id: (r.tier_id, r.price_minor) for r in session.execute(
        text("SELECT u.id, u.tier_id, t.price_minor FROM units u JOIN tiers t ON t.id = u.tier_id"
             " WHERE u.id = ANY(:ids)"), {"ids": list(hold.unit_ids)})}
    tiers = [rows[u][0] for u in hold.unit_ids]
    # The price held is the price paid; holds from before prices were kept per unit take the tier's.
    prices = list(hold.unit_prices) if hold.unit_prices else [rows[u][1] for u in hold.unit_ids]
    return tiers, prices


def _price_with(session: Session, hold: Hold, code: Code | None) -> None:
    tiers, prices = _base_prices(session, hold)
    if code is None:
        hold.code_id, hold.unit_discounts, hold.discount_minor = None, None, 0
        hold.total_minor = sum(prices)
        return
    off = unit_discounts(code, tiers, prices)
    covered = sum(1 for t in tiers if code.tier_ids is None or t in code.tier_ids)
    if covered == 0:
        raise CodeRefused(_("The code %(code)s does not apply to these tickets.", code=code.code))
    if code.min_quantity is not None and covered < code.min_quantity:
        raise CodeRefused(_("The code %(code)s needs at least %(least)s eligible tickets in one order; this"
                            " reservation has %(covered)s.", code=code.code, least=code.min_quantity, covered=covered))
    hold.code_id, hold.unit_discounts, hold.discount_minor = code.id, off, sum(off)
    hold.total_minor = sum(prices) - sum(off)


def _lock_live_hold(session: Session, hold_id: int, user_id: int) -> Hold:
    """The buyer's hold, locked, if its price may change now: one statement (someone else's is NotFound)."""
    pending = select(PaymentAttempt.id).where(PaymentAttempt.hold_id == Hold.id,
                                              PaymentAttempt.status == PaymentStatus.PENDING).exists()
    row = session.execute(
        select(Hold, ((Hold.status == HoldStatus.ACTIVE) & (Hold.expires_at > func.now())).label("live"),
               pending.label("pending"))
        .where(Hold.id == hold_id, Hold.user_id == user_id).with_for_update(of=Hold)
    ).first()
    if row is None:
        raise NotFound(_("No such reservation."))
    if not row.live:
        raise HoldNotActive(_("This reservation is no longer active, so a code cannot be added to it."))
    if row.pending:
        raise PaymentInProgress(_("A payment for this reservation is being processed; its price cannot change now."))
    return row[0]


def apply_discount(session: Session, *, hold_id: int, user_id: int, raw_code: str) -> Hold:
    """Apply a discount code to the buyer's live hold (replacing any other); the caller commits."""
    code_text = normalise(raw_code)
    if code_text is None:
        raise InvalidRequest(_("Enter a code: letters and digits, 3 to 40 characters."))
    # Lock order: the hold, then the code (module docstring).
    hold = _lock_live_hold(session, hold_id, user_id)
    code = _lock_code(session, hold.event_id, code_text)
    if code is None:
        raise cant_be_used(code_text)
    if hold.code_id == code.id:
        return hold
    _check_usable(session, code, hold)
    _price_with(session, hold, code)
    session.flush()
    return hold


def remove_discount(session: Session, *, hold_id: int, user_id: int) -> Hold:
    """Take the code off the buyer's live hold; its use goes back to the code."""
    hold = _lock_live_hold(session, hold_id, user_id)
    if hold.code_id is not None:
        _price_with(session, hold, None)
        session.flush()
    return hold


def claim_again(session: Session, hold: Hold) -> None:
    """A lapsed hold is being made live again to be paid: its code's use must be free again too.

    Called by checkout under the hold's lock, after its units were taken again.
    So must the access code that opened a hidden tier held here: a lapsed
    hold taken again is a new sale, which the code's window must allow.
    """
    if hold.access_code_id is not None and not session.execute(_ACCESS_LIVE, {"c": hold.access_code_id}).scalar():
        raise AccessCodeNeeded(_("Your reservation ran out, and the access code that opened these tickets is no"
                                 " longer valid; nothing was charged."))
    if hold.code_id is None:
        return
    code = session.scalars(
        select(Code).where(Code.id == hold.code_id).with_for_update().execution_options(populate_existing=True)
    ).one()
    try:
        _check_usable(session, code, hold, known=True)
    except CodeRefused as refused:
        raise CodeRefused(refused.message + " " + _("Your reservation ran out meanwhile and nothing was charged;"
                                                    " please reserve again.")) from None


@dataclass(frozen=True)
class AccessGrant:
    code: str
    tier_ids: tuple[int, ...]
    tier_names: tuple[str, ...]


_LIVE = ("c.active AND (c.valid_from IS NULL OR c.valid_from <= now())"
         " AND (c.valid_until IS NULL OR now() < c.valid_until)")
_ACCESS_LIVE = text(f"SELECT {_LIVE} FROM codes c WHERE c.id = :c")
_ACCESS = text(
    "SELECT c.code, c.tier_ids, array(SELECT t.name FROM tiers t WHERE t.id = ANY(c.tier_ids)"
    "                                 ORDER BY t.sort_order, t.id) AS names,"
    f"       {_LIVE} AS live"
    " FROM codes c WHERE c.event_id = :e AND c.code = :c AND c.kind = 'access'"
)


def unlock(session: Session, *, event_id: int, raw_code: str) -> AccessGrant:
    """The hidden tiers an access code opens now (refused when it opens nothing)."""
    code_text = normalise(raw_code)
    if code_text is None:
        raise InvalidRequest(_("Enter a code: letters and digits, 3 to 40 characters."))
    row = session.execute(_ACCESS, {"e": event_id, "c": code_text}).first()
    if row is None or not row.live:
        raise cant_be_used(code_text)
    return AccessGrant(row.code, tuple(row.tier_ids), tuple(row.names))
