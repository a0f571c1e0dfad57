"""Admin: seat properties by range, and how best available chooses (focal point, orphan seats); audited."""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from webapp.models import Event
from webapp.services import audit
from webapp.services.admin.events import lock_event
from webapp.services.errors import InvalidRequest
from webapp.services.selling import inventory
from webapp.services.selling.inventory import SeatRange

__all__ = ["SeatRange", "set_best_available", "set_seat_property"]

# A focal point far outside any layout is a typing slip, not a choice.
_FOCAL_LIMIT = 100_000


def set_seat_property(session: Session, *, actor_id: int, event_id: int, seats: SeatRange, prop: str,
                      on: bool) -> int:
    """Give a range of seats a property (wheelchair, companion, restricted view, aisle) or take it away."""
    event = lock_event(session, event_id)
    changed = inventory.set_seat_property(session, event.id, seats, prop, on)
    audit.record(session, actor_id=actor_id, action="seat.property", entity="event", entity_id=event.id,
                 event_id=event.id, after={"seats": seats.words, "property": prop, "on": on, "changed": changed})
    return changed


def set_best_available(session: Session, *, actor_id: int, event_id: int, focal_x: float | None,
                       focal_y: float | None, avoid_orphans: bool) -> Event:
    """Place the focal point best available measures from (None, None: the centre front), and the orphan rule."""
    if (focal_x is None) != (focal_y is None):
        raise InvalidRequest(_("Give the focal point both across and deep, or neither for the centre front."))
    if any(v is not None and abs(v) > _FOCAL_LIMIT for v in (focal_x, focal_y)):
        raise InvalidRequest(_("Place the focal point within the seat map's positions."))
    event = lock_event(session, event_id)
    before = {"focal_x": event.focal_x, "focal_y": event.focal_y, "avoid_orphans": event.avoid_orphans}
    event.focal_x, event.focal_y, event.avoid_orphans = focal_x, focal_y, avoid_orphans
    session.flush()
    inventory.rank_seats(session, event.id, [], "front_centre")
    audit.record(session, actor_id=actor_id, action="event.best_available", entity="event", entity_id=event.id,
                 event_id=event.id, before=before,
                 after={"focal_x": focal_x, "focal_y": focal_y, "avoid_orphans": avoid_orphans})
    return event
