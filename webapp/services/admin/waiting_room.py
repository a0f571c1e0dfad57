"""The waiting room's live panel for the admin: how many wait, shop and went in, read every few seconds.

Only the organiser asks these counts, so they live with the admin's
services rather than beside the engine the crowd's requests use; the
rules the panel's buttons change are `waiting.waiting_room.settings`.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.models import WaitingRoom

_PANEL = text("""
    SELECT count(*) FILTER (WHERE status = 'waiting') AS waiting,
           count(*) FILTER (WHERE status = 'admitted') AS shopping,
           count(*) FILTER (WHERE status IN ('admitted', 'done')) AS admitted,
           count(*) FILTER (WHERE admitted_at > now() - interval '1 minute') AS last_minute
    FROM waiting_room_entries WHERE event_id = :e
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
    last_minute: int
    flags: Flags = Flags()


def panel(session: Session, event_id: int) -> Panel | None:
    room = session.get(WaitingRoom, event_id)
    if room is None:
        return None
    row = session.execute(_PANEL, {"e": event_id}).one()
    flags = Flags(**{reason: n for reason, n in session.execute(_FLAGS, {"e": event_id}).all()})
    return Panel(room, row.waiting, row.shopping, row.admitted, row.last_minute, flags)
