"""The waiting room's engine: places (join, leave, claim) and the admission passes that number and let people in.

Places. One row of `waiting_room_entries` per account, or per anonymous
visitor's random token (carried in a signed cookie, see `passes`), per
event; a unique index makes a second join a no-op. A join is one INSERT and
touches nothing shared: the place's `line_key` is a secret random draw
(negative, from `gen_random_uuid()`) for an account that joins before the
sale start, and the database's arrival time in microseconds (positive) for
everyone else.

One ticket in the draw per person, not per cookie: a visitor without an
account gets no draw of their own (anyone can take a thousand anonymous
places; a draw each would let them keep the luckiest), only their arrival
time, so the best of many anonymous places is the first one, exactly what
joining once then gives. Logging in binds a visitor's place to the account
once (`claim`): an account keeps the place it has, and takes the visitor's
only when it has none, drawing its key at that moment if the sale has not
started.

Numbers. A place's `number` is its place in the room, dense per room, and is
given under the room row's lock, always by the same SQL function
(`tb_number_places`, in `line_key` order): by the admission pass at the
sale start to every early place (so the accounts that came early are in an
order nobody chose, ahead of everyone else), then to each new place in
order of arrival, by its own join once a pass has opened the room
(`tb_number_arrival`), so the page gets its number in the join's answer and
never asks the room for it. The join waits at most 20 ms for the room row's
lock (other joins hold it for a statement each); a join that finds it held
longer, by a pass, leaves its place to the next pass. Refreshing early or a
fast connection buys nothing.

Marks. The room row keeps `served` (every number up to it was let in or
stopped waiting), `issued` (the highest number given) and `left_count`
(numbers above `served` that stopped waiting). Whatever stops a numbered
place from waiting (leave, claim, a rejoin at the back) counts it in
`left_count` in the same transaction, after locking the room row: the lock
order is always the room row, then places, as in the pass. A position is
then arithmetic on a number and these marks (see `positions`).

Admission. `admit(session, event_id)` is the only thing that lets people in.
It locks the event's `waiting_rooms` row with `FOR UPDATE SKIP LOCKED`: any
number of copies may run it on any number of hosts (the sweep runs it for
every open room; the waiting room's shared status runs it when no pass ran
for a while), and while one admits the others skip the event at once. It
retires admissions that are used up (bought, or out of time with no live
hold), decides sold out, numbers new places, and lets in the next N waiting
in number order, where N is what the rate earned since the last pass, what
the cap on shoppers leaves free and, when the room follows the shop, what
the shop's measured delay leaves free (`outflow`); then it moves `served` up to just
before the first number still waiting, so the front is exact. Nothing of
this lives in a process: a host that dies loses nothing, and two hosts never
admit twice. (The reserve's SQL function lengthens an admission to its
hold's end: see `passes`.)

Measured rates. Each pass also keeps, on the room row, the admissions per
minute it measures (weighted exponentially, a time constant of
`RATE_SECONDS`; measured only while people wait, so a pause or an empty room
does not read as a slow one) and the share of finished admissions that
bought. The estimated waits come from these, not from the configured rate.

Whatever changes what someone waiting sees (an admission, a leave, sold
out) bumps the room's `version`, the personal status's ETag (see `positions`).

"E-mail me when it is my turn." A waiting place may carry an address
(`ask_for_mail`); the pass that admits it queues the mail in the outbox in
its own transaction, so a rolled-back pass mails nobody. The mail carries a
signed link to this one place, valid until its admission ends
(`links.turn_token`, rendered by the mail worker).

Services flush; the caller commits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.models import WaitingRoom, WaitingRoomEntry
from webapp.services.errors import InvalidRequest, NotFound
from webapp.services.messaging import language, outbox
from webapp.services.waiting.waiting_room import outflow
from webapp.services.waiting.waiting_room.positions import STANDING_COLUMNS, Standing, standing_of, with_number

# Most admissions one pass may give from accumulated rate, in seconds of
# the rate: a pass that ran late does not let a burst in.
MAX_BURST_SECONDS = 10
# Most places one pass numbers: at the start of a room with a million early
# places, numbering takes a few passes and no pass holds the room's row long.
NUMBER_BATCH = 50_000
# The measured admission rate's time constant: a minute-old pass weighs 1/e.
RATE_SECONDS = 60.0
# Each finished admission's weight in the conversion (about the last 20 count most).
CONVERSION_WEIGHT = 0.05


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
_JOIN_NOW_INSERT = f"""
    INSERT INTO waiting_room_entries (event_id, user_id, anon_token, line_key)
    SELECT r.event_id, CAST(:u AS integer), CAST(:t AS varchar), {_ORDER_KEY}
    FROM waiting_rooms r JOIN events e ON e.id = r.event_id AND e.status = 'on_sale'
    WHERE r.event_id = :e AND r.enabled
      AND (CAST(:u AS integer) IS NULL
           OR EXISTS (SELECT 1 FROM users WHERE id = CAST(:u AS integer) AND session_version = :sv))
    ON CONFLICT DO NOTHING
"""
_JOIN_NOW = text(f"{_JOIN_NOW_INSERT} RETURNING id")
# The same join, answered with the standing it makes (the room and the new place) in the same
# statement: the join posted by the page needs no second one to draw its status.
_JOIN_NOW_STANDING = text(f"""
    WITH w AS ({_JOIN_NOW_INSERT}
        RETURNING id, status, user_id, anon_token, pass_until, number, notify_email, turn_seen_at)
    SELECT {STANDING_COLUMNS} FROM waiting_rooms r LEFT JOIN w ON true WHERE r.event_id = :e
""")
# Someone who gave their place up and comes back joins at the back: a new
# number at the next pass (before the start, the same key: leaving and
# coming back draws nothing new).
_REJOIN = text(f"""
    UPDATE waiting_room_entries w
    SET status = 'waiting', admitted_at = NULL, pass_until = NULL, ended_at = NULL, joined_at = now(),
        number = NULL,
        line_key = CASE WHEN now() < r.sale_starts_at THEN w.line_key ELSE {_ARRIVAL} END
    FROM waiting_rooms r
    WHERE r.event_id = w.event_id AND w.id = :id AND w.status = 'left'
""")


def join(session: Session, event_id: int, *, user_id: int | None = None, anon_token: str | None = None) -> int:
    """The buyer's place in the waiting room (made now, or the one they already have): its id."""
    if user_id is None and anon_token is None:
        raise InvalidRequest(_("A place in the waiting room needs an account or a visitor token."))
    token = None if user_id is not None else anon_token
    entry_id = session.execute(_JOIN, {"e": event_id, "u": user_id, "t": token}).scalar()
    if entry_id is not None:
        return entry_id
    existing = _entry_of(session, event_id, user_id=user_id, anon_token=token)
    if existing is None:
        raise NotFound(_("This event has no waiting room."))
    if existing.status == "left":
        session.execute(_REJOIN, {"id": existing.id})
    return existing.id


def join_now(*, event_id: int, user_id: int | None, session_version: int | None,
             anon_token: str | None) -> int | None:
    """A new place in one autocommitted statement, or None (already waiting, room off, session ended:
    the caller takes the ordinary road, `join`, which says which)."""
    from webapp.database import single_statement

    with single_statement(writes=True) as connection:
        entry_id = connection.execute(_JOIN_NOW, {"e": event_id, "u": user_id, "sv": session_version,
                                                  "t": None if user_id is not None else anon_token}).scalar()
        if entry_id is not None:
            connection.execute(_NUMBER_ARRIVAL, {"e": event_id, "w": entry_id})
        return entry_id


def join_now_standing(*, event_id: int, user_id: int | None, session_version: int | None,
                      anon_token: str | None) -> Standing | None:
    """`join_now`, answered with the new place's standing (None as join_now's None: the ordinary road)."""
    from webapp.database import single_statement

    with single_statement(writes=True) as connection:
        row = connection.execute(_JOIN_NOW_STANDING, {"e": event_id, "u": user_id, "sv": session_version,
                                                      "t": None if user_id is not None else anon_token}).first()
        if row is None or row.entry_id is None:
            return None
        stand = standing_of(row)
        if stand.numbered_by_join:
            # After the start the join gives the number, so the page need not ask for it.
            number = connection.execute(_NUMBER_ARRIVAL, {"e": event_id, "w": stand.entry_id}).scalar()
            if number is not None:
                stand = with_number(stand, number)
    return stand


def _entry_of(session: Session, event_id: int, *, user_id: int | None, anon_token: str | None,
              lock: bool = False) -> WaitingRoomEntry | None:
    query = select(WaitingRoomEntry).where(WaitingRoomEntry.event_id == event_id)
    if user_id is not None:
        query = query.where(WaitingRoomEntry.user_id == user_id)
    else:
        query = query.where(WaitingRoomEntry.anon_token == anon_token, WaitingRoomEntry.user_id.is_(None))
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalars(query).first()


def entry_of(session: Session, event_id: int, *, user_id: int | None,
             anon_token: str | None) -> WaitingRoomEntry | None:
    """The place this account (or, without one, this visitor token) has in the event's waiting room."""
    if user_id is None and anon_token is None:
        return None
    return _entry_of(session, event_id, user_id=user_id, anon_token=anon_token)


def _lock_room(session: Session, event_id: int) -> WaitingRoom | None:
    # Always before any place: the pass locks the room, then places.
    return session.scalars(select(WaitingRoom).where(WaitingRoom.event_id == event_id).with_for_update()
                           .execution_options(populate_existing=True)).first()


def _stop_waiting(room: WaitingRoom, entry: WaitingRoomEntry) -> None:
    """Count a numbered place that stops waiting among the room's leavers (the room's row is locked).

    A waiting place's number is always above `served`: the pass moves
    `served` only over numbers that no longer wait.
    """
    if entry.status == "waiting" and entry.number is not None:
        room.left_count += 1


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
    room = _lock_room(session, event_id)
    anon = _entry_of(session, event_id, user_id=None, anon_token=anon_token, lock=True)
    mine = _entry_of(session, event_id, user_id=user_id, anon_token=None, lock=True)
    if room is None or anon is None or anon.status == "left":
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
    _stop_waiting(room, anon)
    anon.status, anon.ended_at = "left", _now(session)
    room.version += 1
    session.flush()
    return mine.id


def leave(session: Session, entry_id: int) -> None:
    """Give the place (or the admission) up; the next one waiting moves up."""
    found = session.get(WaitingRoomEntry, entry_id)
    if found is None:
        return
    room = _lock_room(session, found.event_id)
    entry = session.scalars(select(WaitingRoomEntry).where(WaitingRoomEntry.id == entry_id).with_for_update()
                            .execution_options(populate_existing=True)).first()
    if room is None or entry is None or entry.status in ("left", "done"):
        return
    _stop_waiting(room, entry)
    entry.status, entry.ended_at = "left", _now(session)
    room.version += 1
    session.flush()


_PASS_COLLECTED = text("""
    UPDATE waiting_room_entries SET turn_seen_at = statement_timestamp()
    WHERE id = :w AND status = 'admitted' AND turn_seen_at IS NULL
""")


def pass_collected(entry_id: int) -> None:
    """The page of a place let in was given its pass: the buyer reached the shop (the window's growth counts
    them, outflow.py). One autocommitted statement; once per place."""
    from webapp.database import single_statement

    with single_statement(writes=True) as connection:
        connection.execute(_PASS_COLLECTED, {"w": entry_id})


_ADMITTED_PLACE = text("""
    SELECT id, user_id, anon_token, number FROM waiting_room_entries
    WHERE id = :w AND event_id = :e AND status = 'admitted' AND pass_until > now()
""")


def admitted_place(session: Session, event_id: int, entry_id: int):
    """The place if it is admitted now, by the database's clock (id, user_id, anon_token, number); else None."""
    return session.execute(_ADMITTED_PLACE, {"w": entry_id, "e": event_id}).first()


_ASK_FOR_MAIL = text("""
    UPDATE waiting_room_entries w
    SET notify_email = coalesce(CAST(:m AS varchar), (SELECT u.email FROM users u WHERE u.id = w.user_id)),
        notify_locale = :lang
    WHERE w.id = :w AND w.event_id = :e AND w.status = 'waiting'
    RETURNING w.notify_email
""")


def ask_for_mail(session: Session, event_id: int, entry_id: int, email: str | None) -> str | None:
    """Mail `email` (None: the place's account's address) when this place is admitted.

    The address it will be mailed to; None when the place no longer waits (nothing is changed).
    """
    # The turn mail, sent by the admission pass, speaks the language of the request that asked for it.
    return session.execute(_ASK_FOR_MAIL, {"m": email, "w": entry_id, "e": event_id,
                                           "lang": language.current()}).scalar()


def _now(session: Session) -> datetime:
    # Read under the room's lock: the pass's own time, whenever its transaction began (see _ADMIT).
    return session.execute(text("SELECT statement_timestamp()")).scalar_one()


_RETIRE = text("""
    UPDATE waiting_room_entries w SET status = 'done', ended_at = now()
    WHERE w.event_id = :e AND w.status = 'admitted'
      AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.event_id = :e AND h.user_id = w.user_id
                      AND h.status = 'active' AND h.expires_at > now())
      AND (w.pass_until <= now()
           OR EXISTS (SELECT 1 FROM orders o WHERE o.event_id = :e AND o.user_id = w.user_id
                      AND o.created_at >= w.admitted_at))
    RETURNING w.id, EXISTS (SELECT 1 FROM orders o WHERE o.event_id = :e AND o.user_id = w.user_id
                            AND o.created_at >= w.admitted_at) AS bought
""")
_SOLD_OUT = text("""
    SELECT NOT EXISTS (
        SELECT 1 FROM tiers t
        WHERE t.event_id = :e AND NOT t.id = ANY(tb_waitlist_reserved_tiers(:e))
          AND EXISTS (SELECT 1 FROM units u WHERE u.tier_id = t.id AND u.status = 'available'))
""")
# Everyone let in, and those of them whose page collected its pass (who reached the shop).
_SHOPPING = text("SELECT count(*), count(turn_seen_at) FROM waiting_room_entries"
                 " WHERE event_id = :e AND status = 'admitted'")
# The places still without a number, in `line_key` order (the partial index
# holds only these), numbered on from `issued` (migrations/sql/tb_number_places.sql).
_NUMBER = text("SELECT tb_number_places(:e, :issued, :batch)")
# A join after the start numbers itself, when the room row is free (migrations/sql/tb_number_arrival.sql).
_NUMBER_ARRIVAL = text("SELECT tb_number_arrival(:e, :w)")
# In number order from the served mark; the room row's lock keeps a second
# pass out, so no SKIP LOCKED here (a buyer leaving at this moment is
# waited for, briefly). Stamped with the statement's time, taken under the
# room's lock, not the transaction's start (now()): a pass whose transaction
# began before another pass took the lock (a busy host, a request that read
# something first) would otherwise record its later admissions as earlier.
_ADMIT = text("""
    UPDATE waiting_room_entries w
    SET status = 'admitted', admitted_at = statement_timestamp(),
        pass_until = statement_timestamp() + make_interval(secs => :secs)
    FROM (SELECT id FROM waiting_room_entries WHERE event_id = :e AND number > :served AND status = 'waiting'
          ORDER BY number LIMIT :n FOR UPDATE) nxt
    WHERE w.id = nxt.id
    RETURNING w.id, w.number, w.notify_email, w.notify_locale
""")
# The first number still waiting past a mark: `served` moves up to just before it.
_FIRST_WAITING = text("""
    SELECT min(number) FROM waiting_room_entries WHERE event_id = :e AND number > :after AND status = 'waiting'
""")


@dataclass(frozen=True)
class PassResult:
    ran: bool
    admitted: list[int]
    retired: int = 0
    numbered: int = 0


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
    retired = session.execute(_RETIRE, {"e": event_id}).all()
    _convert(room, bought=sum(1 for r in retired if r.bought), finished=len(retired))
    changed |= bool(retired)
    sold_out = bool(session.execute(_SOLD_OUT, {"e": event_id}).scalar_one())
    if sold_out != room.sold_out:
        room.sold_out, changed = sold_out, True
    started = now >= room.sale_starts_at
    opening = started and room.credited_at is None
    if opening:
        # The sale starts: the draw's order becomes numbers, the countdowns positions.
        room.credited_at, changed = room.sale_starts_at, True
    numbered = 0
    if started:
        numbered = session.execute(_NUMBER, {"e": event_id, "issued": room.issued,
                                             "batch": NUMBER_BATCH}).scalar_one()
        room.issued += numbered
        changed |= bool(numbered)
    admitted: list[tuple[int, int]] = []
    admitting = started and not (room.paused or room.gate_open or sold_out)
    if admitting:
        allowed = math.inf
        if room.admit_per_minute:
            elapsed = max(0.0, (now - (room.credited_at or now)).total_seconds())
            burst = max(1.0, room.admit_per_minute * MAX_BURST_SECONDS / 60)
            room.credit = min(burst, room.credit + room.admit_per_minute * elapsed / 60)
            allowed = math.floor(room.credit + 1e-9)
        target = outflow.target_ms()
        if room.max_shoppers or target:
            shopping, arrived = session.execute(_SHOPPING, {"e": event_id}).one()
        if room.max_shoppers:
            allowed = min(allowed, max(0, room.max_shoppers - shopping))
        if target:
            # The shop's measured delay moves the window (outflow.py); a sale starting begins small.
            window = room.outflow_window
            if opening or window is None:
                window = min(outflow.FIRST_WINDOW, room.max_shoppers or outflow.FIRST_WINDOW)
                room.outflow_changed_at = now
            elif (now - (room.outflow_changed_at or now)).total_seconds() >= outflow.HOLD_SECONDS:
                moved = outflow.next_window(window, delay_ms=outflow.worst_delay_ms(session), target=target,
                                            in_use=shopping, arrived=arrived, cap=room.max_shoppers)
                if moved != window:
                    window, room.outflow_changed_at = moved, now
            room.outflow_window = window
            allowed = min(allowed, max(0, window - shopping))
        if allowed > 0:
            n = int(min(allowed, 100000))
            rows = session.execute(_ADMIT, {"e": event_id, "n": n, "served": room.served,
                                            "secs": float(room.pass_minutes) * 60}).all()
            admitted = [(r.id, r.number) for r in rows]
            for row in rows:
                if row.notify_email:
                    # Rendered by the mail worker (with the link's token): the pass only adds a row.
                    outbox.queue(session, template="waiting_room_turn", recipient=row.notify_email,
                                 event_id=event_id, params={"entry_id": row.id}, defer=True,
                                 locale=row.notify_locale)
            if room.admit_per_minute:
                room.credit = max(0.0, room.credit - len(admitted))
                if len(admitted) < n:
                    # Nobody left to admit: rate earned while nobody waits is not saved up.
                    room.credit = 0.0
            room.admitted_total += len(admitted)
            changed |= bool(admitted)
    if started:
        changed |= _advance_served(session, room, admitted)
    _measure(room, now, admitted=len(admitted), counts=admitting and not opening and _waiting(room) > 0)
    room.credited_at = now if started else room.credited_at
    room.last_pass_at = now
    if changed:
        room.version += 1
    session.flush()
    return PassResult(True, [entry_id for entry_id, _ in admitted], len(retired), numbered)


def _waiting(room: WaitingRoom) -> int:
    """Numbered places still waiting, from the marks alone."""
    return room.issued - room.served - room.left_count


def _advance_served(session: Session, room: WaitingRoom, admitted: list[tuple[int, int]]) -> bool:
    """Move `served` up to just before the first number still waiting; the leavers it passes leave the count.

    Every number between the old mark and the new one was either admitted by
    this pass or had stopped waiting (and so was counted in `left_count`).
    """
    after = max([room.served, *(number for _, number in admitted)])
    first = session.execute(_FIRST_WAITING, {"e": room.event_id, "after": after}).scalar()
    served = first - 1 if first is not None else room.issued
    if served == room.served:
        return False
    room.left_count -= (served - room.served) - len(admitted)
    room.served = served
    return True


def _measure(room: WaitingRoom, now: datetime, *, admitted: int, counts: bool) -> None:
    """Bring the measured admission rate up to date (exponentially weighted, per minute).

    `counts`: this pass ran with people left waiting after it, so what it let
    in is what the room can let in. A paused, empty or just opened room (the
    opening fills every free slot at once) is not measured; its time is not
    either.
    """
    if counts and room.rated_at is not None:
        seconds = (now - room.rated_at).total_seconds()
        if seconds > 0:
            measured = admitted * 60 / seconds
            if room.admit_rate is None:
                # The first measurement starts from the rules' rate where there is one.
                room.admit_rate = float(room.admit_per_minute) if room.admit_per_minute else measured
            weight = 1 - math.exp(-seconds / RATE_SECONDS)
            room.admit_rate += weight * (measured - room.admit_rate)
    room.rated_at = now


def _convert(room: WaitingRoom, *, bought: int, finished: int) -> None:
    """Fold finished admissions into the conversion: each weighs CONVERSION_WEIGHT against the past."""
    if not finished:
        return
    share = bought / finished
    if room.conversion is None:
        room.conversion = share
        return
    kept = (1 - CONVERSION_WEIGHT) ** finished
    room.conversion = room.conversion * kept + share * (1 - kept)


def admit_all_due(session: Session) -> int:
    """The sweep's share: one pass for every room that is on; commits per event. Returns admissions."""
    total = 0
    ids = session.scalars(select(WaitingRoom.event_id).where(WaitingRoom.enabled, WaitingRoom.gate_open.is_(False))
                          .order_by(WaitingRoom.event_id)).all()
    outflow.forget_gone(session)
    session.commit()
    for event_id in ids:
        total += len(admit(session, event_id).admitted)
        session.commit()
    return total
