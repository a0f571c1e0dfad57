"""Access codes the buyer has entered or followed a link with, remembered per event in the session.

The session (signed by Flask) keeps, per event, the codes and the hidden
tiers they opened when entered, so pages show those tiers with no query.
Whether a code still opens them is decided by the reserve statement
(tb_access_gate), which is handed the codes themselves.
"""
from __future__ import annotations

from flask import session

from webapp.services.selling.codes import AccessGrant

_KEY = "access"
_EVENTS_KEPT = 20
_CODES_KEPT = 5


def _kept() -> dict[str, list[list]]:
    kept = session.get(_KEY)
    return kept if isinstance(kept, dict) else {}


def codes_for(event_id: int) -> list[str]:
    """The buyer's access codes for this event, for the reserve statement."""
    return [str(code) for code, _ in _kept().get(str(event_id), [])]


def unlocked_tiers(event_id: int) -> frozenset[int]:
    """The hidden tiers the buyer's codes opened, for drawing the page."""
    return frozenset(int(t) for _, tiers in _kept().get(str(event_id), []) for t in tiers)


def remember(event_id: int, grant: AccessGrant) -> None:
    kept = dict(_kept())
    mine = [entry for entry in kept.get(str(event_id), []) if entry[0] != grant.code]
    kept[str(event_id)] = (mine + [[grant.code, list(grant.tier_ids)]])[-_CODES_KEPT:]
    while len(kept) > _EVENTS_KEPT:
        kept.pop(next(iter(kept)))
    session[_KEY] = kept
