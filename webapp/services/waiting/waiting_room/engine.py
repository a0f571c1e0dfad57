"""The waiting room's engine: places (join, leave, claim) and the admission passes that let people in.

Places. One row of `waiting_room_entries` per account, or per anonymous
visitor's random token (carried in a signed cookie, see `passes`), per
event; a unique index makes a second join a no-op. The `line_key` column
orders the room: an account that joins before the sale start gets a secret
random key (negative, drawn from `gen_random_uuid()`), everyone else the
database's arrival time in microseconds (positive). So the accounts that
came early are in random order ahead of everyone, and refreshing early or
a fast connection buys nothing: the key is fixed at the first join and
never shown.

One ticket in the draw per person, not per cookie: a visitor without an
account gets no draw of their own (anyone can take a thousand anonymous
places; a draw each would let them keep the luckiest), only their arrival
time, so the best of many anonymous places is the first one, exactly what
joining once then gives. Logging in binds a visitor's place to the account
once (`claim`): an account keeps the place it has, and takes the visitor's
only when it has none, drawing its key at that moment if the sale has not
started.

Admission. `admit(session, event_id)` is the only thing that lets people in.
It locks the event's `waiting_rooms` row with `FOR UPDATE SKIP LOCKED`: any
number of copies may run it on any number of hosts (the sweep's worker loop
runs it for every open room; a poll runs it when no pass has run for a
while), and while one admits the others skip the event at once. It retires
admissions that are used up (bought, or out of time with no live hold),
decides sold out, and lets in the next N waiting in `line_key` order, where
N is what the rate earned since the last pass and what the cap on shoppers
leaves free. Nothing of this lives in a process: a host that dies loses
nothing, and two hosts never admit twice. (The reserve's SQL function
lengthens an admission to its hold's end: see `passes`.)

Whatever changes what someone waiting sees (an admission, a leave, sold
out) bumps the room's `version`, the polls' ETag (see `positions`).

Services flush; the caller commits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.models import WaitingRoom, WaitingRoomEntry
from webapp.services.errors import InvalidRequest, NotFound

# Most admissions one pass may give from accumulated rate, in seconds of
# the rate: a pass that ran late does not let a burst in.
MAX_BURST_SECONDS = 10


def _bump(session: Session, event_id: int) -> None:
    session.execute(update(WaitingRoom).where(WaitingRoom.event_id == event_id)
                    .values(version=WaitingRoom.version + 1))


# A draw: 60 random bits, negative, so every place in the draw is ahead of
# every arrival and in no order anyone can choose.
_DRAW = "-1 - ('x' || substr(md5(gen_random_uuid()::text), 1, 15))::bit(60)::bigint"
_ARRIVAL = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"
# The `line_key` of a new place (:u, the account, or NULL for a visitor).
_ORDER_KEY = f"""CASE WHEN now() < r.sale_starts_at AND CAST(:u AS integer) IS NOT NULL
                 THEN {_DRAW} ELSE {_ARRIVAL} END"""
_JOIN = text(f"""
    INSERT INTO waiting_room_entries (event_id, user_id, anon_token, line_key)
    SELECT r.event_id, CAST(:u AS integer), CAST(:t AS varchar), {_ORDER_KEY}
    FROM waiting_rooms r WHERE r.event_id = :e AND r.enabled
    ON CONFLICT DO NOTHING
    RETURNING id
""")
# The buyer's join in one statement of its own: the event on sale, the
# session the cookie claims still the account's, the place new.
_JOIN_NOW = text(f"""
    INSERT INTO waiting_room_entries (event_id, user_id, anon_token, line_key)
    SELECT r.event_id, CAST(:u AS integer), CAST(:t AS varchar), {_ORDER_KEY}
    FROM waiting_rooms r JOIN events e ON e.id = r.event_id AND e.status = 'on_sale'
    WHERE r.event_id = :e AND r.enabled
      AND (CAST(:u AS integer) IS NULL
           OR EXISTS (SELECT 1 FROM users WHERE id = CAST(:u AS integer) AND session_version = :sv))
    ON CONFLICT DO NOTHING
    RETURNING id
""")
# Someone who gave their place up and comes back joins at the back (before
# the start, they keep their key: leaving and coming back draws nothing new).
_REJOIN = text(f"""
    UPDATE waiting_room_entries w
    SET status = 'waiting', admitted_at = NULL, pass_until = NULL, ended_at = NULL, joined_at = now(),
        line_key = CASE WHEN now() < r.sale_starts_at THEN w.line_key ELSE {_ARRIVAL} END
    FROM waiting_rooms r
    WHERE r.event_id = w.event_id AND w.id = :id AND w.status = 'left'
""")


def join(session: Session, event_id: int, *, user_id: int | None = None, anon_token: str | None = None) -> int:
    """The buyer's place in the waiting room (made now, or the one they already have): its id."""
    if user_id is None and anon_token is None:
        raise InvalidRequest("A place in the waiting room needs an account or a visitor token.")
    token = None if user_id is not None else anon_token
    entry_id = session.execute(_JOIN, {"e": event_id, "u": user_id, "t": token}).scalar()
    if entry_id is not None:
        return entry_id
    existing = _entry_of(session, event_id, user_id=user_id, anon_token=token)
    if existing is None:
        raise NotFound("This event has no waiting room.")
    if existing.status == "left":
        session.execute(_REJOIN, {"id": existing.id})
    return existing.id


def join_now(*, event_id: int, user_id: int | None, session_version: int | None,
             anon_token: str | None) -> int | None:
    """A new place in one autocommitted statement, or None (already waiting, room off, session ended:
    the caller takes the ordinary road, `join`, which says which)."""
    from webapp.database import single_statement

    with single_statement(writes=True) as connection:
        return connection.execute(_JOIN_NOW, {"e": event_id, "u": user_id, "sv": session_version,
                                              "t": None if user_id is not None else anon_token}).scalar()


def _entry_of(session: Session, event_id: int, *, user_id: int | None,
              anon_token: str | None) -> WaitingRoomEntry | None:
    query = select(WaitingRoomEntry).where(WaitingRoomEntry.event_id == event_id)
    if user_id is not None:
        query = query.where(WaitingRoomEntry.user_id == user_id)
    else:
        query = query.where(WaitingRoomEntry.anon_token == anon_token, WaitingRoomEntry.user_id.is_(None))
    return session.scalars(query).first()


def entry_of(session: Session, event_id: int, *, user_id: int | None,
             anon_token: str | None) -> WaitingRoomEntry | None:
    """The place this account (or, without one, this visitor token) has in the event's waiting room."""
    if user_id is None and anon_token is None:
        return None
    return _entry_of(session, event_id, user_id=user_id, anon_token=anon_token)


# A visitor's place becomes an account's: drawn now if the sale has not started.
_BIND = text(f"""
    UPDATE waiting_room_entries w
    SET user_id = :u, anon_token = NULL,
        line_key = CASE WHEN now() < r.sale_starts_at THEN {_DRAW} ELSE w.line_key END
    FROM waiting_rooms r
    WHERE r.event_id = w.event_id AND w.id = :id
""")


def claim(session: Session, event_id: int, *, anon_token: str, user_id: int) -> int | None:
    """A visitor who waited anonymously logs in: the account keeps its own place, or takes the visitor's.

    An account that has a place, in any state, keeps it, and the visitor's
    place is given up: however many anonymous places a client took, logging
    in never trades the account's place (or its draw, or its turn already
    had) for a luckier one. An account with none takes the visitor's, and
    before the sale start that place enters the draw now, with a key drawn
    now: which of its cookies a client logs in with changes nothing.
    Returns the account's entry id afterwards (None when it has none).
    """
    anon = _entry_of(session, event_id, user_id=None, anon_token=anon_token)
    mine = _entry_of(session, event_id, user_id=user_id, anon_token=None)
    if anon is None or anon.status == "left":
        return mine.id if mine else None
    if mine is None:
        try:
            with session.begin_nested():
                session.execute(_BIND, {"id": anon.id, "u": user_id})
            session.refresh(anon)
            return anon.id
        except IntegrityError:
            # The account joined in another tab at this very moment: that place is its own.
            mine = _entry_of(session, event_id, user_id=user_id, anon_token=None)
            assert mine is not None
    anon.status, anon.ended_at = "left", _now(session)
    _bump(session, event_id)
    session.flush()
    return mine.id


def leave(session: Session, entry_id: int) -> None:
    """Give the place (or the admission) up; the next one waiting moves up."""
    entry = session.get(WaitingRoomEntry, entry_id, with_for_update=True)
    if entry is None or entry.status in ("left", "done"):
        return
    entry.status, entry.ended_at = "left", _now(session)
    _bump(session, entry.event_id)
    session.flush()


def _now(session: Session) -> datetime:
    return session.execute(text("SELECT now()")).scalar_one()


_RETIRE = text("""
    UPDATE waiting_room_entries w SET status = 'done', ended_at = now()
    WHERE w.event_id = :e AND w.status = 'admitted'
      AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.event_id = :e AND h.user_id = w.user_id
                      AND h.status = 'active' AND h.expires_at > now())
      AND (w.pass_until <= now()
           OR EXISTS (SELECT 1 FROM orders o WHERE o.event_id = :e AND o.user_id = w.user_id
                      AND o.created_at >= w.admitted_at))
    RETURNING w.id
""")
_SOLD_OUT = text("""
    SELECT NOT EXISTS (
        SELECT 1 FROM tiers t
        WHERE t.event_id = :e AND NOT t.id = ANY(tb_waitlist_reserved_tiers(:e))
          AND EXISTS (SELECT 1 FROM units u WHERE u.tier_id = t.id AND u.status = 'available'))
""")
_SHOPPING = text("SELECT count(*) FROM waiting_room_entries WHERE event_id = :e AND status = 'admitted'")
# In `line_key` order; the room row's lock keeps a second pass out, so no SKIP
# LOCKED here (a buyer leaving at this moment is waited for, briefly).
_ADMIT = text("""
    UPDATE waiting_room_entries w
    SET status = 'admitted', admitted_at = now(), pass_until = now() + make_interval(secs => :secs)
    FROM (SELECT id FROM waiting_room_entries WHERE event_id = :e AND status = 'waiting'
          ORDER BY line_key, id LIMIT :n FOR UPDATE) nxt
    WHERE w.id = nxt.id
    RETURNING w.id
""")


@dataclass(frozen=True)
class PassResult:
    ran: bool
    admitted: list[int]
    retired: int = 0


def admit(session: Session, event_id: int) -> PassResult:
    """One admission pass for one event; safe to run in many copies at once (see the module docstring)."""
    room = session.scalars(
        select(WaitingRoom).where(WaitingRoom.event_id == event_id, WaitingRoom.enabled)
        .with_for_update(skip_locked=True)
    ).first()
    if room is None:
        return PassResult(False, [])
    now = _now(session)
    changed = False
    retired = len(session.execute(_RETIRE, {"e": event_id}).all())
    changed |= bool(retired)
    sold_out = bool(session.execute(_SOLD_OUT, {"e": event_id}).scalar_one())
    if sold_out != room.sold_out:
        room.sold_out, changed = sold_out, True
    admitted: list[int] = []
    started = now >= room.sale_starts_at
    if started and room.credited_at is None:
        # The sale starts: the countdowns turn into positions.
        room.credited_at, changed = room.sale_starts_at, True
    if started and not (room.paused or room.gate_open or sold_out):
        allowed = math.inf
        if room.admit_per_minute:
            elapsed = max(0.0, (now - (room.credited_at or now)).total_seconds())
            burst = max(1.0, room.admit_per_minute * MAX_BURST_SECONDS / 60)
            room.credit = min(burst, room.credit + room.admit_per_minute * elapsed / 60)
            allowed = math.floor(room.credit + 1e-9)
        if room.max_shoppers:
            shopping = session.execute(_SHOPPING, {"e": event_id}).scalar_one()
            allowed = min(allowed, max(0, room.max_shoppers - shopping))
        if allowed > 0:
            n = int(min(allowed, 100000))
            admitted = list(session.scalars(_ADMIT, {"e": event_id, "n": n,
                                                     "secs": float(room.pass_minutes) * 60}).all())
            if room.admit_per_minute:
                room.credit = max(0.0, room.credit - len(admitted))
                if len(admitted) < n:
                    # Nobody left to admit: rate earned while nobody waits is not saved up.
                    room.credit = 0.0
            room.admitted_total += len(admitted)
            changed |= bool(admitted)
    room.credited_at = now if started else room.credited_at
    room.last_pass_at = now
    if changed:
        room.version += 1
    session.flush()
    return PassResult(True, admitted, retired)


def admit_all_due(session: Session) -> int:
    """The sweep's share: one pass for every room that is on; commits per event. Returns admissions."""
    total = 0
    ids = session.scalars(select(WaitingRoom.event_id).where(WaitingRoom.enabled, WaitingRoom.gate_open.is_(False))
                          .order_by(WaitingRoom.event_id)).all()
    session.commit()
    for event_id in ids:
        total += len(admit(session, event_id).admitted)
        session.commit()
    return total
