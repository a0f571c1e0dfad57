"""Every change to inventory goes through this package: it is the only writer of unit rows.

Two guards hold it to that (tests/ownership.py): the source check of
tests/test_architecture.py, and a run-time check of every statement of the
test run, which also knows the SQL functions that write units or holds. Every
change a unit can go through has a public function here, each bumps the
inventory clock, and each that frees or adds units offers them to the waiting
list itself, so no caller can forget either:

- reserve (`reserve`, one statement; `reserve_in_session` within a caller's
  transaction), hold for an offer (`hold_for_offer`) — reserve.py, holds.py;
- release and expire (`release_hold`, `release_hold_by_id`, `expire_holds`) — expiry.py;
- take again, sell, free sold units (`take_units_again`, `sell_hold`,
  `free_sold_units`) — holds.py;
- add, copy, remove, block and unblock (`create_units_for_tier`, `add_seats`,
  `add_places`, `copy_units`, `remove_places`, `remove_units`,
  `remove_tier_units`, `block_seat`, `unblock_seat`) — stock.py;
- a sold ticket's new holder and code (`lock_ticket`, `reissue_ticket`) — tickets.py.
- seat properties by range (`set_seat_property`) — properties.py: what the
  map draws changes, so the layout version moves (a trigger), and the clock,
  so the API's seat list (tagged with it) is read again.

The rest serves them: the clock and the per-unit-of-work read cache
(clock.py), the waiting list's hook (waitlist_hook.py), the buyer's lock and the
rules against hoarding (buyers.py), counts for display (counts.py).

Locking discipline (see docs/design.md, "Locking"):
- parent rows before units: a hold, order or waiting-list row is locked
  before the unit rows it owns, and unit rows are always locked in id order,
  so two transactions never wait on each other in a circle;
- a buyer's lock for an event comes before any row lock;
- general admission takes places with `FOR UPDATE SKIP LOCKED`, so buyers
  never queue behind one another;
- expiry is decided by the database clock (`now()`), never the app host's.

Functions here flush; the caller (a view or CLI command) commits, or rolls
back on error. The one exception is `reserve`, whose statement is its own
transaction.

Callers use the package (`from webapp.services.selling import inventory`),
never its modules: the names below are its interface.
"""
from __future__ import annotations

from webapp.services.selling.inventory.buyers import buyer_claims, buyer_limit_refusal, check_buyer_room
from webapp.services.selling.inventory.clock import (
    READS,
    inventory_version,
    inventory_version_and_session,
    read_once,
    touch_inventory,
)
from webapp.services.selling.inventory.counts import (
    TIER_COUNTS_SQL,
    WAITLIST_FIGURES_COLUMNS,
    TierCounts,
    WaitlistFigures,
    tier_counts,
    tiers_kept_for_waitlist,
    waitlist_figures,
)
from webapp.services.selling.inventory.expiry import (
    expire_due_holds_now,
    expire_holds,
    lock_hold,
    release_hold,
    release_hold_by_id,
)
from webapp.services.selling.inventory.holds import (
    free_sold_units,
    get_event,
    hold_for_offer,
    sell_hold,
    take_units_again,
)
from webapp.services.selling.inventory.properties import SeatRange, set_seat_property
from webapp.services.selling.inventory.reserve import (
    REFUSALS,
    BestSeats,
    Reservation,
    release_active_basket,
    reserve,
    reserve_in_session,
)
from webapp.services.selling.inventory.stock import (
    SeatBlock,
    add_places,
    add_seats,
    block_seat,
    copy_units,
    create_units_for_tier,
    rank_seats,
    remove_places,
    remove_tier_units,
    remove_units,
    unblock_seat,
)
from webapp.services.selling.inventory.tickets import lock_ticket, reissue_ticket
from webapp.services.selling.inventory.waitlist_hook import Waitlist, install_waitlist

__all__ = [
    "READS", "REFUSALS", "TIER_COUNTS_SQL", "WAITLIST_FIGURES_COLUMNS", "BestSeats", "Reservation", "SeatBlock",
    "SeatRange", "TierCounts", "Waitlist", "set_seat_property",
    "WaitlistFigures", "add_places", "add_seats", "block_seat", "buyer_claims", "buyer_limit_refusal",
    "check_buyer_room", "copy_units", "create_units_for_tier", "expire_due_holds_now", "expire_holds",
    "free_sold_units", "get_event", "hold_for_offer", "install_waitlist", "inventory_version",
    "inventory_version_and_session", "lock_hold", "lock_ticket", "rank_seats", "read_once", "reissue_ticket",
    "release_active_basket",
    "release_hold", "release_hold_by_id", "remove_places", "remove_tier_units", "remove_units", "reserve",
    "reserve_in_session", "sell_hold", "take_units_again", "tier_counts", "tiers_kept_for_waitlist",
    "touch_inventory", "unblock_seat", "waitlist_figures",
]
