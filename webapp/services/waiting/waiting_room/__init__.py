"""The waiting room: a fair queue for a hot on-sale, kept in PostgreSQL.

Split by job: `settings` holds an event's rules (the admin's form and
buttons), `engine` the places, their numbers and the admission passes (the
only writer of all three), `positions` the lock-free reads of where a buyer
stands (arithmetic on a number and the room's marks, never a count) and of
the room's shared state, and `passes` the signed cookies checked without
the database; `screening` the checks a join passes first (a proof of work,
a limit per client address, a genuine cookie) and the endless wait of a
client that fails them. The admin's live figures are the admin group's
(`services.admin.waiting_room`).

Callers use the package, `waiting_room.join(...)`, `waiting_room.check_pass(...)`:
the names below are its surface.
"""
from webapp.services.waiting.waiting_room.engine import (
    MAX_BURST_SECONDS,
    NUMBER_BATCH,
    RATE_SECONDS,
    PassResult,
    admit,
    admit_all_due,
    admitted_place,
    ask_for_mail,
    claim,
    entry_of,
    join,
    join_now,
    join_now_standing,
    leave,
    pass_collected,
)
from webapp.services.waiting.waiting_room.passes import (
    PASS_SALT,
    PLACE_SALT,
    PassCheck,
    Place,
    check_pass,
    make_pass,
    make_place,
    new_anon_token,
    pass_cookie_name,
    pass_end,
    place_cookie_name,
    read_place,
)
from webapp.services.waiting.waiting_room.positions import (
    DRAW_IDS,
    MAX_POLL_SECONDS,
    Pace,
    RoomTag,
    Shared,
    Standing,
    draw_numbers,
    estimate_position,
    room_tag,
    shared_state,
    standing,
    standing_without_place,
)
from webapp.services.waiting.waiting_room.screening import (
    Rules,
    Screening,
    challenge_for,
    endless_standing,
    forget_spent_challenges,
    is_endless,
    rules,
    screen_join,
)
from webapp.services.waiting.waiting_room.settings import (
    PROPOSED_CHALLENGE_DIFFICULTY,
    PROPOSED_PLACES_PER_ADDRESS,
    configure,
    control,
    room_for,
)

__all__ = [
    "DRAW_IDS", "MAX_BURST_SECONDS", "MAX_POLL_SECONDS", "NUMBER_BATCH", "PASS_SALT", "PLACE_SALT", "RATE_SECONDS",
    "Pace",
    "PassCheck", "PassResult", "Place", "RoomTag", "Shared", "Standing", "admit", "admit_all_due", "admitted_place",
    "ask_for_mail", "check_pass",
    "claim", "configure", "control", "draw_numbers", "entry_of", "estimate_position", "join", "join_now",
    "join_now_standing", "leave", "make_pass", "pass_collected",
    "make_place", "new_anon_token", "pass_cookie_name", "pass_end", "place_cookie_name", "read_place", "room_for",
    "room_tag", "shared_state", "standing", "standing_without_place",
    "PROPOSED_CHALLENGE_DIFFICULTY", "PROPOSED_PLACES_PER_ADDRESS", "Rules", "Screening", "challenge_for",
    "endless_standing", "forget_spent_challenges", "is_endless", "rules", "screen_join",
]
