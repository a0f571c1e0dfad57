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
