"""The inventory clock, and the reads a unit of work may reuse until inventory changes.

Open seat maps ask "has anything changed?" every few seconds; the answer is
the event's clock, bumped once per committed change of its units, so the
question costs one indexed sum instead of a scan. The same idea serves one
request: a page asks what is left from several places, and one statement
answers them all until this session writes.

The session listeners here are registered once, when the package is first
imported, and serve every session of the process.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

# Spread over a few rows, so concurrent commits of one event rarely wait on
# the same clock row; the version is their sum.
CLOCK_SHARDS = 8
_TOUCHED = "inventory_touched_events"
READS = "inventory_reads"


def touch_inventory(session: Session, event_id: int) -> None:
    """Mark the event's inventory as changed in this transaction (its clock moves at commit)."""
    session.info.setdefault(_TOUCHED, set()).add(event_id)


@sa_event.listens_for(Session, "before_commit")
def _bump_inventory_clocks(session: Session) -> None:
    # Bumped last, right before commit, so the shard row's lock is held for
    # an instant and never while unit rows are still being locked.
    touched = session.info.pop(_TOUCHED, None)
    if not touched:
        return
    for event_id in sorted(touched):
        session.execute(
            text(
                "INSERT INTO inventory_clock (event_id, shard, version) VALUES (:e, :s, 1)"
                " ON CONFLICT (event_id, shard) DO UPDATE SET version = inventory_clock.version + 1"
            ),
            {"e": event_id, "s": random.randrange(CLOCK_SHARDS)},
        )


@sa_event.listens_for(Session, "after_rollback")
def _forget_touched(session: Session) -> None:
    session.info.pop(_TOUCHED, None)
    session.info.pop(READS, None)


def read_once(session: Session, key: tuple, compute: Callable[[], Any]) -> Any:
    """A read-only answer reused within one unit of work of this session.

    A page asks "what is left?" and "which tiers does the line keep?" from
    several places (tier picker, summary, waiting-list panel); one statement
    each is enough. Forgotten at every flush, commit and rollback, so a
    change in the same session is always seen.
    """
    reads = session.info.setdefault(READS, {})
    if key not in reads:
        reads[key] = compute()
    return reads[key]


@sa_event.listens_for(Session, "after_flush")
@sa_event.listens_for(Session, "after_commit")
def _forget_reads(session: Session, *args) -> None:
    session.info.pop(READS, None)


@sa_event.listens_for(Session, "do_orm_execute")
def _forget_reads_on_write(state) -> None:
    # Raw UPDATE/INSERT/DELETE statements do not flush: forget on them too.
    if state.session.info.get(READS) and not state.is_select:
        sql = str(state.statement).lstrip()[:6].upper()
        if sql in ("UPDATE", "INSERT", "DELETE"):
            state.session.info.pop(READS, None)


_VERSION = text("SELECT coalesce(sum(version), 0) FROM inventory_clock WHERE event_id = :e")
_VERSION_AND_SESSION = text(
    "SELECT coalesce(sum(version), 0) AS version,"
    " (SELECT session_version FROM users WHERE id = CAST(:u AS integer)) AS session_version"
    " FROM inventory_clock WHERE event_id = :e"
)


def inventory_version_and_session(connection, event_id: int, user_id: int | None) -> tuple[int, int | None]:
    """The event's inventory clock and the claimed user's session version: the map poll's one statement."""
    row = connection.execute(_VERSION_AND_SESSION, {"e": event_id, "u": user_id}).one()
    return row.version, row.session_version


def inventory_version(session, event_id: int) -> int:
    """The event's inventory clock (a session, or a connection of `single_statement`)."""
    def read() -> int:
        return session.execute(_VERSION, {"e": event_id}).scalar_one()

    return read() if isinstance(session, Connection) else read_once(session, ("version", event_id), read)
