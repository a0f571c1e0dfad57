"""An event's waiting room rules: whether it is on, when the sale starts, how fast people go in, and what a join
must pass (a proof of work, a limit per client address) and what a flagged client meets (see `screening`).

The admin sets them (the form, and the live panel's buttons); the engine
reads them from the same `waiting_rooms` row on every pass. Kept apart
from the engine so that what an admin may change, and the bounds it is
checked against, read in one place. Every change bumps the room's
`version`, so the pages in the waiting room redraw.

Services flush; the caller commits.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from webapp.models import Event, WaitingRoom
from webapp.services.errors import InvalidRequest, NotFound

# What the admin's form proposes for a room it turns on for the first time: a
# join costs a computer's browser about a second (ROUNDS of PBKDF2 per try, half
# this many tries on average), and one address takes a handful of places a
# minute (a household, a small office behind one address).
PROPOSED_CHALLENGE_DIFFICULTY = 1000
PROPOSED_PLACES_PER_ADDRESS = 10
MAX_CHALLENGE_DIFFICULTY = 1_000_000
MAX_PLACES_PER_ADDRESS = 10_000


def room_for(session: Session, event_id: int) -> WaitingRoom | None:
    return session.get(WaitingRoom, event_id)


def configure(session: Session, event: Event, *, enabled: bool, sale_starts_at: datetime,
              admit_per_minute: int | None, max_shoppers: int | None, pass_minutes: float = 10,
              challenge_difficulty: int = 0, places_per_address: int | None = None,
              flagged_wait_forever: bool = False) -> WaitingRoom:
    """Turn the room on or off for an event and set its rules (the admin's form).

    `challenge_difficulty`: the most tries a browser may need for the proof
    of work on join (0: none); `places_per_address`: places one client
    address may take per minute (None: no limit); `flagged_wait_forever`: a
    flagged client is kept in an endless wait instead of being told.
    """
    if admit_per_minute is None and max_shoppers is None:
        raise InvalidRequest("Set an admission rate, a cap on shoppers, or both.")
    for value, what in ((admit_per_minute, "The admission rate"), (max_shoppers, "The cap on shoppers")):
        if value is not None and not 1 <= value <= 100000:
            raise InvalidRequest(f"{what} must be between 1 and 100,000.")
    if not 0 < pass_minutes <= 60:
        raise InvalidRequest("A pass lasts between 1 and 60 minutes.")
    if not 0 <= challenge_difficulty <= MAX_CHALLENGE_DIFFICULTY:
        raise InvalidRequest("The proof of work's difficulty must be between 0 (none) and"
                             f" {MAX_CHALLENGE_DIFFICULTY:,}.")
    if places_per_address is not None and not 1 <= places_per_address <= MAX_PLACES_PER_ADDRESS:
        raise InvalidRequest(f"The places per address must be between 1 and {MAX_PLACES_PER_ADDRESS:,}.")
    room = session.get(WaitingRoom, event.id, with_for_update=True)
    if room is None:
        room = WaitingRoom(event_id=event.id, sale_starts_at=sale_starts_at)
        session.add(room)
    room.enabled = enabled
    room.sale_starts_at = sale_starts_at
    room.admit_per_minute = admit_per_minute
    room.max_shoppers = max_shoppers
    room.pass_minutes = pass_minutes
    room.challenge_difficulty = challenge_difficulty
    room.places_per_address = places_per_address
    room.flagged_wait_forever = flagged_wait_forever
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
