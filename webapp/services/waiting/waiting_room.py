"""The waiting room: a fair line for a hot on-sale, kept in PostgreSQL.

Places. One row of `waiting_room_entries` per account, or per anonymous
visitor's random token (carried in a signed cookie), per event; a unique
index makes a second join a no-op. `line_key` orders the line: whoever
joins before the sale start gets a secret random key (negative, drawn from
`gen_random_uuid()`), whoever joins after gets the database's arrival time
in microseconds (positive). So everyone early is in random order ahead of
everyone late, and refreshing early or a fast connection buys nothing:
the key is fixed at the first join and never shown.

Admission. `admit(session, event_id)` is the only thing that lets people in.
It locks the event's `waiting_rooms` row with `FOR UPDATE SKIP LOCKED`: any
number of copies may run it on any number of hosts (the sweep's worker loop
runs it for every open room; a poll runs it when no pass has run for a
while), and while one admits the others skip the event at once. It retires
admissions that are used up (bought, or out of time with no live hold),
decides sold out, and lets in the next N waiting in `line_key` order, where
N is what the rate earned since the last pass and what the cap on shoppers
leaves free. Nothing of this lives in a process: a host that dies loses
nothing, and two hosts never admit twice.

Passes. An admitted, logged-in buyer gets a pass: the admission's id,
account id and event id, and its end, signed with SECRET_KEY
(itsdangerous). Views check the signature and the binding without the
database; the reserve's SQL function checks the admission row itself, by
the database clock, in the statement it runs anyway (migration 0008). A
hold made under a pass extends it to the hold's end.

Positions. Position = how many entries still waiting are ahead, counted on
`ix_wr_entries_line` (index only); polls read the room's `version` for
their ETag and take no lock. `version` is bumped by whatever can change
what someone in line sees (an admission, a leave, sold out, settings).

Services flush; the caller commits.
"""
from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass, replace
from datetime import datetime

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from webapp.models import Event, WaitingRoom, WaitingRoomEntry
from webapp.services.errors import InvalidRequest, NotFound

PASS_SALT = "waiting-room-pass"
PLACE_SALT = "waiting-room-place"
# Most admissions one pass may give from accumulated rate, in seconds of
# the rate: a pass that ran late does not let a burst in.
MAX_BURST_SECONDS = 10
# The slowest a page in line polls (see Standing.poll_seconds).
MAX_POLL_SECONDS = 30


def _bump(session: Session, event_id: int) -> None:
    session.execute(update(WaitingRoom).where(WaitingRoom.event_id == event_id)
                    .values(version=WaitingRoom.version + 1))


def room_for(session: Session, event_id: int) -> WaitingRoom | None:
    return session.get(WaitingRoom, event_id)


def configure(session: Session, event: Event, *, enabled: bool, sale_starts_at: datetime,
              admit_per_minute: int | None, max_shoppers: int | None, pass_minutes: float = 10) -> WaitingRoom:
    """Turn the room on or off for an event and set its rules (the admin's form)."""
    if admit_per_minute is None and max_shoppers is None:
        raise InvalidRequest("Set an admission rate, a cap on shoppers, or both.")
    for value, what in ((admit_per_minute, "The admission rate"), (max_shoppers, "The cap on shoppers")):
        if value is not None and not 1 <= value <= 100000:
            raise InvalidRequest(f"{what} must be between 1 and 100,000.")
    if not 0 < pass_minutes <= 60:
        raise InvalidRequest("A pass lasts between 1 and 60 minutes.")
    room = session.get(WaitingRoom, event.id, with_for_update=True)
    if room is None:
        room = WaitingRoom(event_id=event.id, sale_starts_at=sale_starts_at)
        session.add(room)
    room.enabled = enabled
    room.sale_starts_at = sale_starts_at
    room.admit_per_minute = admit_per_minute
    room.max_shoppers = max_shoppers
    room.pass_minutes = pass_minutes
    room.version = (room.version or 1) + 1
    event.waiting_room = enabled and not room.gate_open
    session.flush()
    return room


def control(session: Session, event: Event, *, paused: bool | None = None, gate_open: bool | None = None,
            admit_per_minute: int | None = None) -> WaitingRoom:
    """The live panel's buttons: pause or resume, open the gate to everyone, change the rate."""
    room = session.get(WaitingRoom, event.id, with_for_update=True)
    if room is None:
        raise NotFound("This event has no waiting room.")
    if paused is not None:
        room.paused = paused
    if gate_open is not None:
        room.gate_open = gate_open
    if admit_per_minute is not None:
        if not 1 <= admit_per_minute <= 100000:
            raise InvalidRequest("The admission rate must be between 1 and 100,000.")
        room.admit_per_minute = admit_per_minute
    room.version += 1
    event.waiting_room = room.enabled and not room.gate_open
    session.flush()
    return room


_LINE_KEY = """CASE WHEN now() < r.sale_starts_at
                -- A draw: 60 random bits, negative, so every early place is
                -- ahead of every late one and in no order anyone can choose.
                THEN -1 - ('x' || substr(md5(gen_random_uuid()::text), 1, 15))::bit(60)::bigint
                ELSE (extract(epoch FROM clock_timestamp()) * 1000000)::bigint END"""
_JOIN = text(f"""
    INSERT INTO waiting_room_entries (event_id, user_id, anon_token, line_key)
    SELECT r.event_id, :u, :t, {_LINE_KEY}
    FROM waiting_rooms r WHERE r.event_id = :e AND r.enabled
    ON CONFLICT DO NOTHING
    RETURNING id
""")
# The buyer's join in one statement of its own: the event on sale, the
# session the cookie claims still the account's, the place new.
_JOIN_NOW = text(f"""
    INSERT INTO waiting_room_entries (event_id, user_id, anon_token, line_key)
    SELECT r.event_id, CAST(:u AS integer), CAST(:t AS varchar), {_LINE_KEY}
    FROM waiting_rooms r JOIN events e ON e.id = r.event_id AND e.status = 'on_sale'
    WHERE r.event_id = :e AND r.enabled
      AND (CAST(:u AS integer) IS NULL
           OR EXISTS (SELECT 1 FROM users WHERE id = CAST(:u AS integer) AND session_version = :sv))
    ON CONFLICT DO NOTHING
    RETURNING id
""")
# Someone who gave their place up and comes back joins at the back.
_REJOIN = text("""
    UPDATE waiting_room_entries w
    SET status = 'waiting', admitted_at = NULL, pass_until = NULL, ended_at = NULL, joined_at = now(),
        line_key = CASE WHEN now() < r.sale_starts_at THEN w.line_key
                        ELSE (extract(epoch FROM clock_timestamp()) * 1000000)::bigint END
    FROM waiting_rooms r
    WHERE r.event_id = w.event_id AND w.id = :id AND w.status = 'left'
""")


def join(session: Session, event_id: int, *, user_id: int | None = None, anon_token: str | None = None) -> int:
    """The buyer's place in line (made now, or the one they already have): its id."""
    if user_id is None and anon_token is None:
        raise InvalidRequest("A place in line needs an account or a visitor token.")
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
    """A new place in one autocommitted statement, or None (already in line, room off, session ended:
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
    """The place this account (or, without one, this visitor token) has in the event's line."""
    if user_id is None and anon_token is None:
        return None
    return _entry_of(session, event_id, user_id=user_id, anon_token=anon_token)


def claim(session: Session, event_id: int, *, anon_token: str, user_id: int) -> int | None:
    """A visitor who waited anonymously logs in: the account keeps the better of its places.

    Returns the account's entry id afterwards (None when it has none).
    """
    anon = _entry_of(session, event_id, user_id=None, anon_token=anon_token)
    mine = _entry_of(session, event_id, user_id=user_id, anon_token=None)
    if anon is None or anon.status == "left":
        return mine.id if mine else None
    if mine is not None and mine.status != "left" and (mine.line_key, mine.id) <= (anon.line_key, anon.id):
        anon.status, anon.ended_at = "left", _now(session)
        session.flush()
        return mine.id
    if mine is not None:
        # The anonymous place is the better one: the account's own goes.
        session.delete(mine)
        session.flush()
    anon.user_id, anon.anon_token = user_id, None
    session.flush()
    return anon.id


def leave(session: Session, entry_id: int) -> None:
    """Give the place (or the admission) up; the next in line moves up."""
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
# In line order; the room row's lock keeps a second pass out, so no SKIP
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


_LAZY = text("""
    SELECT r.version, r.enabled AND NOT r.gate_open AS guarding, now() >= r.sale_starts_at AS started,
           r.enabled AND (r.last_pass_at IS NULL OR r.last_pass_at < now() - make_interval(secs => :lazy)
                          OR (r.credited_at IS NULL AND now() >= r.sale_starts_at)) AS pass_due,
           (SELECT session_version FROM users WHERE id = CAST(:u AS integer)) AS session_version
    FROM waiting_rooms r JOIN events e ON e.id = r.event_id AND e.status <> 'draft'
    WHERE r.event_id = :e
""")


@dataclass(frozen=True)
class RoomTag:
    version: int
    guarding: bool
    started: bool
    pass_due: bool
    session_version: int | None


def room_tag(connection, event_id: int, user_id: int | None = None) -> RoomTag | None:
    """What a poll needs to answer 304 (and the claimed user's session version): primary-key reads, no lock."""
    row = connection.execute(_LAZY, {"e": event_id, "u": user_id,
                                     "lazy": current_app.config["WAITING_ROOM_LAZY_PASS_SECONDS"]}).first()
    return RoomTag(row.version, row.guarding, row.started, row.pass_due, row.session_version) if row else None


_STANDING = text("""
    SELECT r.version, r.enabled, r.gate_open, r.paused, r.sold_out, r.sale_starts_at, r.admit_per_minute,
           r.max_shoppers, r.pass_minutes, now() AS now,
           w.id AS entry_id, w.status, w.user_id, w.anon_token, w.pass_until, c.ahead, c.ahead_all
    FROM waiting_rooms r
    LEFT JOIN waiting_room_entries w ON w.id = :entry AND w.event_id = r.event_id
    LEFT JOIN LATERAL (
        SELECT count(*) FILTER (WHERE a.status = 'waiting') AS ahead, count(*) AS ahead_all
        FROM waiting_room_entries a
        WHERE a.event_id = r.event_id AND (a.line_key, a.id) < (w.line_key, w.id)
    ) c ON w.id IS NOT NULL
    WHERE r.event_id = :e
""")


@dataclass(frozen=True)
class Standing:
    """Where a buyer stands, as the line page draws it."""

    version: int
    enabled: bool
    gate_open: bool
    paused: bool
    sold_out: bool
    sale_starts_at: datetime
    seconds_to_start: int
    entry_id: int | None
    status: str | None
    user_id: int | None
    anon_token: str | None
    pass_until: datetime | None
    ahead: int
    ahead_all: int
    wait_minutes: int | None
    wait_seconds: float
    pass_minutes: float

    @property
    def started(self) -> bool:
        return self.seconds_to_start <= 0

    def poll_seconds(self, base: int) -> int:
        """How often this buyer's page asks: `base` near the front, up to half a minute far back.

        The crowd's polls are most of the room's load; someone with minutes
        to wait loses nothing by asking less often. Before the start the
        countdown asks by itself when it reaches zero.
        """
        if not self.started:
            return int(min(MAX_POLL_SECONDS, max(base, self.seconds_to_start // 2)))
        if self.sold_out:
            # Told already; the line only moves again if tickets come back
            # and nobody on the waiting list takes them.
            return MAX_POLL_SECONDS
        if self.wait_minutes is None:
            return base
        return int(min(MAX_POLL_SECONDS, max(base, self.wait_seconds / 5)))

    @property
    def progress_percent(self) -> int:
        if not self.ahead_all:
            return 100
        return int(100 * (self.ahead_all - self.ahead) / self.ahead_all)


def standing(connection, event_id: int, entry_id: int | None) -> Standing | None:
    """The room and this place in it, in one statement (a count on the line's index)."""
    row = connection.execute(_STANDING, {"e": event_id, "entry": entry_id}).first()
    if row is None:
        return None
    ahead = int(row.ahead or 0)
    wait_seconds = 0.0
    if row.admit_per_minute:
        wait_seconds = ahead / row.admit_per_minute * 60
    elif row.max_shoppers:
        # Only a cap: each slot frees at the latest when a pass runs out.
        wait_seconds = ahead / row.max_shoppers * float(row.pass_minutes) * 60
    wait = math.ceil(wait_seconds / 60) if row.admit_per_minute or row.max_shoppers else None
    return Standing(
        version=row.version, enabled=row.enabled, gate_open=row.gate_open, paused=row.paused,
        sold_out=row.sold_out, sale_starts_at=row.sale_starts_at,
        seconds_to_start=max(0, math.ceil((row.sale_starts_at - row.now).total_seconds())),
        entry_id=row.entry_id, status=row.status, user_id=row.user_id, anon_token=row.anon_token,
        pass_until=row.pass_until,
        ahead=ahead, ahead_all=int(row.ahead_all or 0), wait_minutes=wait, wait_seconds=wait_seconds,
        pass_minutes=float(row.pass_minutes),
    )


def standing_without_place(stand: Standing) -> Standing:
    """The room's state alone: the place named by a cookie was not this buyer's."""
    return replace(stand, entry_id=None, status=None, user_id=None, anon_token=None, pass_until=None,
                   ahead=0, ahead_all=0, wait_minutes=None, wait_seconds=0.0)


# ---- Signed cookies: the pass, and an anonymous visitor's place.

def _signer(salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=salt)


def pass_cookie_name(event_id: int) -> str:
    return f"tb_pass_{event_id}"


def place_cookie_name(event_id: int) -> str:
    return f"tb_place_{event_id}"


def make_pass(*, admission_id: int, user_id: int, event_id: int, until: datetime) -> str:
    """A pass for one admission, bound to its account and event, valid until `until` (the database's)."""
    return _signer(PASS_SALT).dumps({"a": admission_id, "u": user_id, "e": event_id, "x": int(until.timestamp())})


@dataclass(frozen=True)
class PassCheck:
    admission_id: int | None
    problem: str | None


def check_pass(token: str | None, *, user_id: int | None, event_id: int) -> PassCheck:
    """The pass's verdict without the database: signature, account, event, time.

    The time is the end the database gave at admission, read on this host's
    clock; the reserve statement checks the admission again by the
    database's own clock, so a host whose clock is off grants nothing.
    """
    if not token:
        return PassCheck(None, "You need a pass from the waiting room to buy tickets for this event.")
    try:
        data = _signer(PASS_SALT).loads(token)
    except BadSignature:
        return PassCheck(None, "This pass is not valid. Please take your place in line.")
    if not isinstance(data, dict) or data.get("e") != event_id:
        return PassCheck(None, "This pass is for another event.")
    if user_id is None:
        return PassCheck(None, "Please log in to use your pass.")
    if data.get("u") != user_id:
        return PassCheck(None, "This pass belongs to another account.")
    if not isinstance(data.get("x"), int) or data["x"] <= time.time():
        return PassCheck(None, "Your pass has expired. You can take a new place in line.")
    return PassCheck(int(data["a"]), None)


def pass_end(token: str) -> int:
    """When a pass already checked by `check_pass` ends (epoch seconds)."""
    return int(_signer(PASS_SALT).loads(token)["x"])


def new_anon_token() -> str:
    return secrets.token_urlsafe(24)


def make_place(*, entry_id: int, anon_token: str) -> str:
    return _signer(PLACE_SALT).dumps({"n": entry_id, "t": anon_token})


def read_place(value: str | None) -> tuple[int, str] | None:
    """(entry id, anonymous token) from a visitor's signed place cookie, or None."""
    if not value:
        return None
    try:
        data = _signer(PLACE_SALT).loads(value)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("n"), int) or not isinstance(data.get("t"), str):
        return None
    return data["n"], data["t"]


# ---- The admin's live panel.

_PANEL = text("""
    SELECT count(*) FILTER (WHERE status = 'waiting') AS waiting,
           count(*) FILTER (WHERE status = 'admitted') AS shopping,
           count(*) FILTER (WHERE status IN ('admitted', 'done')) AS admitted,
           count(*) FILTER (WHERE admitted_at > now() - interval '1 minute') AS last_minute
    FROM waiting_room_entries WHERE event_id = :e
""")


@dataclass(frozen=True)
class Panel:
    room: WaitingRoom
    waiting: int
    shopping: int
    admitted: int
    last_minute: int


def panel(session: Session, event_id: int) -> Panel | None:
    room = session.get(WaitingRoom, event_id)
    if room is None:
        return None
    row = session.execute(_PANEL, {"e": event_id}).one()
    return Panel(room, row.waiting, row.shopping, row.admitted, row.last_minute)
