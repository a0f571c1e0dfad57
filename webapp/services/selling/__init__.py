"""Selling: the inventory of seats and places, what buyers see of it, and codes.

`inventory` is the only writer of unit rows and holds. `catalog` reads what
the buyer pages show (with `listings`, `event_snapshots` and `hall_layout`,
whose names it re-exports); `codes` prices a hold; `events` creates events,
tiers and layouts. Nothing here imports another group of services but the base
modules (`errors`, `audit`) and `messaging`.
"""
