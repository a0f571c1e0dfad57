"""The waiting list as inventory sees it: units freed or added are offered to it first.

Dependencies point one way: the waiting list imports inventory, never the
reverse. The offer engine needs to take units, which only inventory may do,
and inventory must offer freed units to the waiting list, which only the engine knows
how to do; the small interface here is what lets both hold without an import
cycle. `webapp.services.waiting.waitlist` installs itself when it is imported
(`webapp/services/__init__.py` imports it, so it is always there).

Callers look the waiting list up here at call time (`waitlist_hook.waitlist.…`),
never copy it at import, so the one installed is the one every module uses.
"""
from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.orm import Session

from webapp.models import Hold


class Waitlist(Protocol):
    """What inventory asks of the waiting list (implemented by `webapp.services.waiting.waitlist`)."""

    def offer_released_units(self, session: Session, event_id: int) -> list[Hold]: ...

    def offer_ended(self, session: Session, hold: Hold) -> None: ...


class _NoWaitlist:
    def __getattr__(self, name: str) -> Any:
        # Loud, never silent: selling without the waiting list would let the
        # public take units that people waiting were promised first.
        raise RuntimeError("The waiting list is not installed: import webapp.services.waiting.waitlist.")


waitlist: Waitlist = _NoWaitlist()


def install_waitlist(engine: Waitlist) -> None:
    """Called once by `webapp.services.waiting.waitlist` on import."""
    global waitlist
    waitlist = engine
