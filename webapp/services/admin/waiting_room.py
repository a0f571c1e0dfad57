"""The waiting room's live panel for the admin: how many wait, shop and went in, how fast, and who buys.

Only the organiser asks these, so they live with the admin's services
rather than beside the engine the crowd's requests use; the rules the
panel's buttons change are `waiting.waiting_room.settings`. Read every few
seconds, so nothing here grows with the line: its size comes from the
room's marks (plus the places still without a number, a pass's worth after
the start, everyone before it), the pace and conversion from what the
admission passes measured, the shop's delay from the processes' reports
(`waiting_room.outflow`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.models import WaitingRoom
from webapp.services.waiting import waiting_room
from webapp.services.waiting.waiting_room import outflow

_PANEL = text("""
    SELECT (SELECT count(*) FROM waiting_room_entries
            WHERE event_id = :e AND number IS NULL AND status = 'waiting') AS unnumbered,
           (SELECT count(*) FROM waiting_room_entries WHERE event_id = :e AND status = 'admitted') AS shopping
""")


# The joins the room's screening flagged, by reason (summed over the counters' shards).
_FLAGS = text("SELECT reason, sum(count)::bigint AS n FROM waiting_room_flags WHERE event_id = :e GROUP BY reason")


@dataclass(frozen=True)
class Flags:
    """Joins flagged by the room's screening (waiting.waiting_room.screening), by reason."""

    over_limit: int = 0  # places refused (or sent to the endless wait) by the limit per address
    failed_challenge: int = 0  # proofs of work forged, tampered with, for another event or used twice
    forged_cookie: int = 0
    endless: int = 0  # of all those, the ones kept in the endless wait

    @property
    def clients(self) -> int:
        return self.over_limit + self.failed_challenge + self.forged_cookie


@dataclass(frozen=True)
class Panel:
    room: WaitingRoom
    waiting: int
    shopping: int
    admitted: int
    pace: waiting_room.Pace
    flags: Flags = Flags()
    # The worst queueing delay the shop's processes reported just now, and whether the room follows it.
    shop_delay_ms: float = 0.0
    follows_shop: bool = False

    @property
    def per_minute(self) -> int | None:
        return round(self.pace.per_minute) if self.pace.per_minute else None

    @property
    def conversion_percent(self) -> int | None:
        return round(self.pace.conversion * 100) if self.pace.conversion is not None else None

    @property
    def wait_at_the_back_minutes(self) -> int | None:
        """How long the last one in line can expect to wait, at the measured pace."""
        if not self.waiting or not self.pace.per_minute:
            return None
        return math.ceil(self.pace.seconds_for(self.waiting) / 60)


def panel(session: Session, event_id: int) -> Panel | None:
    room = session.get(WaitingRoom, event_id)
    if room is None:
        return None
    row = session.execute(_PANEL, {"e": event_id}).one()
    waiting = room.issued - room.served - room.left_count + row.unnumbered
    flags = Flags(**{reason: n for reason, n in session.execute(_FLAGS, {"e": event_id}).all()})
    follows = outflow.target_ms() > 0
    return Panel(room, waiting, row.shopping, room.admitted_total, waiting_room.Pace.of(room), flags,
                 shop_delay_ms=outflow.worst_delay_ms(session) if follows else 0.0, follows_shop=follows)
