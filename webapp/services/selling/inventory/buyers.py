"""Against hoarding: one buyer's claims on an event, counted under that buyer's lock.

The reserve statements apply the event's per-buyer limit and re-hold
cool-down themselves, under a per-(event, buyer) advisory lock taken before
any row lock. Every other path that adds to what a buyer has (joining the
waiting list, paying a hold that lapsed) counts under the same lock through
here, so the limit holds under any number of parallel requests.
"""
from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.models import Event
from webapp.services.errors import LimitExceeded

_BUYER_CLAIMS = text("SELECT tb_buyer_claims(:u, :e)")
# The same key as the reserve functions' pg_advisory_xact_lock((p_event << 32) | p_user).
_TRY_BUYER_LOCK = text("SELECT pg_try_advisory_xact_lock((CAST(:e AS bigint) << 32) | CAST(:u AS bigint))")


def buyer_claims(session: Session, *, user_id: int, event_id: int) -> int:
    """Take the buyer's lock for this event and count what they have: tickets, live holds, places in line.

    The lock is transaction-scoped and comes before any row lock, as in the
    reserve functions, so the two never wait on each other in a circle.
    """
    return session.execute(_BUYER_CLAIMS, {"u": user_id, "e": event_id}).scalar_one()


def try_buyer_lock(session: Session, *, user_id: int, event_id: int) -> bool:
    """Take the buyer's lock only if it is free at once.

    For a caller that already holds a row lock: waiting for the buyer's lock
    there could close a circle with a reserve holding it and waiting for the row.
    """
    return bool(session.execute(_TRY_BUYER_LOCK, {"e": event_id, "u": user_id}).scalar())


def buyer_limit_refusal(limit: int, have: int) -> LimitExceeded:
    """The buyer's words for "over the per-buyer limit of this event"."""
    if have == 0:
        return LimitExceeded(_("You can have at most %(limit)s tickets for this event.", limit=limit))
    if have < limit:
        return LimitExceeded(ngettext("You already have %(num)s ticket for this event; the limit is %(limit)s, so you"
                                      " can add %(more)s more.",
                                      "You already have %(num)s tickets for this event; the limit is %(limit)s, so"
                                      " you can add %(more)s more.", have, limit=limit, more=limit - have))
    return LimitExceeded(ngettext("You already have %(num)s ticket for this event; the limit is %(limit)s.",
                                  "You already have %(num)s tickets for this event; the limit is %(limit)s.",
                                  have, limit=limit))


def address_limit_refusal(limit: int, have: int) -> LimitExceeded:
    """The buyer's words for "over the event's limit per client address"."""
    if have < limit:
        return LimitExceeded(_("At most %(limit)s tickets for this event may be held or bought from one network"
                               " address, and %(have)s already are from yours; you can add %(more)s more.",
                               limit=limit, have=have, more=limit - have))
    return LimitExceeded(_("At most %(limit)s tickets for this event may be held or bought from one network"
                           " address, and %(have)s already are from yours.", limit=limit, have=have))


def check_buyer_room(session: Session, *, user_id: int, event: Event, adding: int) -> None:
    """Refuse (LimitExceeded) if `adding` more would take the buyer past the event's per-buyer limit."""
    have = buyer_claims(session, user_id=user_id, event_id=event.id)
    if have + adding > event.per_buyer_limit:
        raise buyer_limit_refusal(event.per_buyer_limit, have)
