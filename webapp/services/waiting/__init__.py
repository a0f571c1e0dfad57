"""Waiting: the waiting list for freed tickets, and the waiting room before a hot on-sale.

Two ideas, two words: `waitlist` and `waitlist_read` for the waiting list,
`waiting_room` for the waiting room. The waiting list's offer engine takes
units through `selling.inventory`; inventory reaches the engine only through
the interface the engine installs (see `selling.inventory`), so the imports
go one way, waiting to selling.
"""
