"""Our own record of which authorisations the gateway captured (`payment_attempts.captured_at`).

Captures happen in two places (the checkout after its commit, the sweep for
leftovers) and a partial refund of an authorisation captures it too: each
notes it here, so the money by state reads our rows whatever the gateway.
"""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

_CAPTURED = text("UPDATE payment_attempts SET captured_at = now()"
                 " WHERE id = :a AND status = 'approved' AND captured_at IS NULL")


def note_captured(session: Session, attempt_id: int) -> None:
    """The gateway took this approved attempt's money (a second note changes nothing); the caller commits."""
    session.execute(_CAPTURED, {"a": attempt_id})



def note_captured_now(attempt_id: int) -> None:
    """The same note as a statement of its own, after the checkout's commit: one round trip, no BEGIN or COMMIT
    (`single_statement`; one UPDATE of one row is its own transaction)."""
    from webapp.database import single_statement

    with single_statement(writes=True) as connection:
        connection.execute(_CAPTURED, {"a": attempt_id})
