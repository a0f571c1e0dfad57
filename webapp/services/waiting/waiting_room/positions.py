"""What a buyer in the waiting room is shown: the room's state, their number, their position and wait.

A position is arithmetic on the place's number and the room's marks, never
a count of rows (the marks are the engine's: `served`, `issued`,
`left_count`). For a waiting place with number n:

    d = n - served - 1             numbers between the served mark and n
    L = left_count                 numbers above `served` that stopped waiting
    position = d - round(L * d / (issued - served - 1)) + 1

that is, the leavers are taken as spread evenly over the numbers above the
mark. How exact: let a be the leavers among the d numbers ahead and b those
behind (a + b = L). The estimate is never more than a places too far back
and never more than b places too near: it lies in [p - b, p + a] for the
true position p. It is exact for the first number waiting (the pass moves
`served` to just before it) and whenever nobody left; the pass consumes
the leavers at the front as the mark moves over them.

The estimated wait is the position over the room's measured admission
rate (the engine keeps it on the room row); until one is measured, the
rules' rate, or for a cap alone the cap per pass length (every slot frees
at the latest when its pass runs out).

Reads, none taking a lock or writing: `room_tag`, the personal status's
ETag (the room's `version`, bumped by whatever can change what someone
waiting sees); `standing`, the room row and the place by primary key, for
the waiting room page; `shared_state`, the public part everyone in the room
shares (waiting_room_now.py serves it from memory as now.json);
`draw_numbers`, the numbers of a thousand places by id, which pages waiting
for the start read theirs from once the draw is made (served the same way).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime

from flask import current_app
from sqlalchemy import text

# The slowest a page in the waiting room polls (see Standing.poll_seconds).
MAX_POLL_SECONDS = 30
# Places per file of the draw's published numbers (`draw_numbers`), by id.
DRAW_IDS = 1000

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
    row = connection.execute(_LAZY, {"e": event_id, "u": user_id, "lazy": _lazy_seconds()}).first()
    return RoomTag(row.version, row.guarding, row.started, row.pass_due, row.session_version) if row else None


def _lazy_seconds() -> float:
    return float(current_app.config["WAITING_ROOM_LAZY_PASS_SECONDS"])


def estimate_position(number: int, *, served: int, issued: int, left: int) -> int:
    """A waiting number's place in the room (1: next), from the marks alone; see the module docstring."""
    between = number - served - 1
    if between <= 0 or left <= 0:
        return max(1, between + 1)
    others = max(1, issued - served - 1)
    leavers_ahead = min(left, math.floor(left * between / others + 0.5))
    return max(1, min(between - leavers_ahead + 1, issued - served - left))


@dataclass(frozen=True)
class Pace:
    """How fast the room lets people in: measured where it can be, else from its rules."""

    per_minute: float | None
    measured: bool
    conversion: float | None

    @classmethod
    def of(cls, row) -> Pace:
        if row.admit_rate:
            return cls(float(row.admit_rate), True, row.conversion)
        if row.admit_per_minute:
            return cls(float(row.admit_per_minute), False, row.conversion)
        if row.max_shoppers:
            return cls(row.max_shoppers / float(row.pass_minutes), False, row.conversion)
        return cls(None, False, row.conversion)

    def seconds_for(self, people: int) -> float:
        return people / self.per_minute * 60 if self.per_minute else 0.0


# What a standing is drawn from: the room (r) and the place (w), also read by a join's own statement.
STANDING_COLUMNS = """
    r.version, r.enabled, r.gate_open, r.paused, r.sold_out, r.sale_starts_at, r.admit_per_minute,
    r.max_shoppers, r.pass_minutes, r.served, r.issued, r.left_count, r.admit_rate, r.conversion,
    r.credited_at IS NOT NULL AS opened, now() AS now,
    w.id AS entry_id, w.status, w.user_id, w.anon_token, w.pass_until, w.number, w.notify_email, w.turn_seen_at
"""
_STANDING = text(f"""
    SELECT {STANDING_COLUMNS}
    FROM waiting_rooms r
    LEFT JOIN waiting_room_entries w ON w.id = :entry AND w.event_id = r.event_id
    WHERE r.event_id = :e
""")


@dataclass(frozen=True)
class Standing:
    """Where a buyer stands, as the waiting room page draws it."""

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
    number: int | None
    served: int
    issued: int
    left: int
    ahead: int
    wait_minutes: int | None
    wait_seconds: float
    pass_minutes: float
    pace: Pace
    mail_to: str | None = None  # where "it is your turn" will be mailed, if the buyer asked
    opened: bool = False  # an admission pass saw the sale start: the draw is numbered, arrivals come after it
    turn_seen_at: datetime | None = None  # when this place's page collected its pass

    @property
    def started(self) -> bool:
        return self.seconds_to_start <= 0

    @property
    def learns_from_draw(self) -> bool:
        """A place waiting for the start: its page reads its number from the draw's published numbers."""
        return not self.started and self.status == "waiting" and self.number is None and self.entry_id is not None

    @property
    def draw_file(self) -> int | None:
        """Which file of the draw's published numbers holds this place's (see `draw_numbers`)."""
        return self.entry_id // DRAW_IDS if self.entry_id is not None else None

    @property
    def numbered_by_join(self) -> bool:
        """A place waiting for its number after the room opened: its own join may give it (tb_number_arrival)."""
        return self.opened and self.started and self.status == "waiting" and self.number is None

    @property
    def waiting_for_number(self) -> bool:
        """In the room after the start, the pass has not given this place its number yet (within a pass)."""
        return self.started and self.status == "waiting" and self.number is None

    def poll_seconds(self, base: int) -> int:
        """How often this buyer's page asks: `base` near the front, up to half a minute far back.

        The crowd's polls are most of the room's load; someone with minutes
        to wait loses nothing by asking less often. Before the start the
        countdown asks by itself when it reaches zero.
        """
        if not self.started:
            return int(min(MAX_POLL_SECONDS, max(base, self.seconds_to_start // 2)))
        if self.sold_out:
            # Told already; the waiting room only moves again if tickets come
            # back and nobody on the waiting list takes them.
            return MAX_POLL_SECONDS
        if self.wait_minutes is None:
            return base
        return int(min(MAX_POLL_SECONDS, max(base, self.wait_seconds / 5)))

    @property
    def progress_percent(self) -> int:
        """The share of the numbers ahead of this one that were served."""
        if not self.number or self.number <= 1:
            return 100
        return int(100 * min(self.served, self.number - 1) / (self.number - 1))


def standing(connection, event_id: int, entry_id: int | None) -> Standing | None:
    """The room and this place in it, in one statement (primary-key reads; the position is arithmetic)."""
    row = connection.execute(_STANDING, {"e": event_id, "entry": entry_id}).first()
    return None if row is None else standing_of(row)


def standing_of(row) -> Standing:
    """A standing from a row of STANDING_COLUMNS."""
    pace = Pace.of(row)
    ahead, wait_seconds, wait_minutes = _position(row.status, row.number, served=row.served, issued=row.issued,
                                                  left=row.left_count, pace=pace)
    return Standing(
        version=row.version, enabled=row.enabled, gate_open=row.gate_open, paused=row.paused,
        sold_out=row.sold_out, sale_starts_at=row.sale_starts_at,
        seconds_to_start=max(0, math.ceil((row.sale_starts_at - row.now).total_seconds())),
        entry_id=row.entry_id, status=row.status, user_id=row.user_id, anon_token=row.anon_token,
        pass_until=row.pass_until, number=row.number, served=row.served, issued=row.issued, left=row.left_count,
        ahead=ahead, wait_minutes=wait_minutes, wait_seconds=wait_seconds, pass_minutes=float(row.pass_minutes),
        pace=pace, mail_to=row.notify_email, opened=row.opened, turn_seen_at=row.turn_seen_at,
    )


def with_number(stand: Standing, number: int) -> Standing:
    """The standing once its place has the number its own join gave it (the highest given yet, or near it)."""
    issued = max(stand.issued, number)
    ahead, wait_seconds, wait_minutes = _position(stand.status, number, served=stand.served, issued=issued,
                                                  left=stand.left, pace=stand.pace)
    return replace(stand, number=number, issued=issued, ahead=ahead, wait_seconds=wait_seconds,
                   wait_minutes=wait_minutes)


def _position(status: str | None, number: int | None, *, served: int, issued: int, left: int,
              pace: Pace) -> tuple[int, float, int | None]:
    """How many are ahead of a place, and its wait in seconds and in whole minutes (None without a pace)."""
    ahead = 0
    if status == "waiting" and number is not None:
        ahead = estimate_position(number, served=served, issued=issued, left=left) - 1
    wait_seconds = pace.seconds_for(ahead)
    return ahead, wait_seconds, math.ceil(wait_seconds / 60) if pace.per_minute else None


def standing_without_place(stand: Standing) -> Standing:
    """The room's state alone: the place named by a cookie was not this buyer's."""
    return replace(stand, entry_id=None, status=None, user_id=None, anon_token=None, pass_until=None, number=None,
                   ahead=0, wait_minutes=None, wait_seconds=0.0, mail_to=None)


_SHARED = text("""
    SELECT r.enabled, r.gate_open, r.paused, r.sold_out, r.sale_starts_at, r.served, r.issued, r.left_count,
           r.admit_rate, r.conversion, r.admit_per_minute, r.max_shoppers, r.pass_minutes, now() AS now,
           r.enabled AND NOT r.gate_open
             AND (r.last_pass_at IS NULL OR r.last_pass_at < now() - make_interval(secs => :lazy)
                  OR (r.credited_at IS NULL AND now() >= r.sale_starts_at)) AS pass_due
    FROM waiting_rooms r JOIN events e ON e.id = r.event_id AND e.status <> 'draft'
    WHERE r.event_id = :e
""")


@dataclass(frozen=True)
class Shared:
    """The room's public state (now.json), and whether an admission pass is due."""

    state: dict
    pass_due: bool


def shared_state(connection, event_id: int) -> Shared | None:
    """What everyone in the room shares, from the room's row alone: the same for a thousand or a million."""
    row = connection.execute(_SHARED, {"e": event_id, "lazy": _lazy_seconds()}).first()
    if row is None:
        return None
    pace = Pace.of(row)
    if not row.enabled:
        state = "off"
    elif row.gate_open:
        state = "open"
    elif row.now < row.sale_starts_at:
        state = "before"
    elif row.sold_out:
        state = "sold_out"
    elif row.paused:
        state = "paused"
    else:
        state = "admitting"
    return Shared({
        "state": state,
        "starts_at": row.sale_starts_at.isoformat(timespec="seconds"),
        "served": row.served,
        "issued": row.issued,
        "left": row.left_count,
        "waiting": row.issued - row.served - row.left_count,
        "rate_per_minute": round(pace.per_minute, 1) if pace.per_minute else None,
        "rate_measured": pace.measured,
        "minutes_per_1000": round(1000 / pace.per_minute, 1) if pace.per_minute else None,
        "conversion": round(pace.conversion, 3) if pace.conversion is not None else None,
    }, bool(row.pass_due))


_DRAW_NUMBERS = text("""
    SELECT r.credited_at IS NOT NULL AS opened, w.id, w.number
    FROM waiting_rooms r JOIN events e ON e.id = r.event_id AND e.status <> 'draft'
    LEFT JOIN waiting_room_entries w
      ON w.event_id = r.event_id AND w.id >= :first AND w.id < :first + :ids AND w.number IS NOT NULL
    WHERE r.event_id = :e
""")


def draw_numbers(connection, event_id: int, file: int) -> dict | None:
    """The numbers given to the room's places whose ids fall in one file of DRAW_IDS ids (None: no room).

    At the sale start the draw's order becomes numbers all at once, and
    every page waiting for the start needs its own. Asked one by one, that
    is a request per person, through the app, at the same moment. Published
    instead in public files of a thousand places each, a room of 50,000
    costs 50 small answers, kept by any cache in front; each page finds its
    place's id in its file. The numbers say nothing about anyone: an id is
    only in its place's own cookie and page. `opened`: the pass has drawn
    the order (until then the file is empty).
    """
    rows = connection.execute(_DRAW_NUMBERS, {"e": event_id, "first": file * DRAW_IDS, "ids": DRAW_IDS}).all()
    if not rows:
        return None
    return {"opened": rows[0].opened, "numbers": {str(row.id): row.number for row in rows if row.id is not None}}
