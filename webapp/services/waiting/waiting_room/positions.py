"""What a buyer in the waiting room is shown: the room's state, their place, how many are ahead.

These are the poll's reads, the room's hot path: the whole crowd asks
every few seconds. `room_tag` is one primary-key read for the ETag (the
room's `version`, which the engine and the settings bump whenever what
someone waiting sees can change), so "nothing changed" is a 304;
`standing` is one statement, the count ahead taken on the entries' order
index `ix_wr_entries_line` (index only). Neither takes a lock, and
neither writes: they run on a plain connection, outside any ORM session.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime

from flask import current_app
from sqlalchemy import text

# The slowest a page in the waiting room polls (see Standing.poll_seconds).
MAX_POLL_SECONDS = 30

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
            # Told already; the waiting room only moves again if tickets come
            # back and nobody on the waiting list takes them.
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
    """The room and this place in it, in one statement (a count on the entries' order index)."""
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
