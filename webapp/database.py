"""The database gone, restarting or full: which errors mean it, and how a request survives it.

Two things, both free while the database is healthy:

- **Classifying failures.** A refused connection, a connection the server
  closed, "too many clients", "the database system is starting up" and an
  exhausted pool all mean "not now": a 503 with `Retry-After`, never a 500.
- **Replacing dead pooled connections.** After PostgreSQL restarts, every
  pooled connection is dead, but nothing knows until it is used. `pool_pre_ping`
  would find out by spending a round trip on every checkout, forever. Instead
  we let the first statement fail: SQLAlchemy recognises the disconnect,
  invalidates that connection and every other one in the pool opened before
  it, and we run the view once more on a fresh connection. That is safe only
  while the request has not committed anything (the failed transaction was
  rolled back by the server), so a request that has committed, or that failed
  twice, gets the 503 instead.

And one shortcut: `single_statement`, a pooled connection in autocommit for
a statement that is a transaction of its own. psycopg2 opens every
transaction with its own BEGIN round trip, and a request's session ends with
a ROLLBACK or COMMIT round trip: three round trips for a page that reads one
row. In autocommit the statement *is* its transaction, atomic as any. The
hot reads (polls, the hold and order pages) and the reserve statement run
this way; anything that changes more than one statement's worth stays in an
ordinary session transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
from flask import Flask, g, has_request_context
from psycopg2 import errorcodes
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

log = logging.getLogger(__name__)

# Seconds a client should wait before trying again while the database is away.
RETRY_AFTER = 2

# Server states that refuse work for now: shutting down, starting up, full;
# or a standby (read-only) where the primary was a moment ago, while a
# failover or switchover moves the primary (deploy/cluster: HAProxy and
# PgBouncer follow within a second or two).
_UNAVAILABLE_CODES = {
    errorcodes.ADMIN_SHUTDOWN, errorcodes.CRASH_SHUTDOWN, errorcodes.CANNOT_CONNECT_NOW,
    errorcodes.TOO_MANY_CONNECTIONS, errorcodes.INSUFFICIENT_RESOURCES, errorcodes.READ_ONLY_SQL_TRANSACTION,
}


def is_unavailable(error: BaseException) -> bool:
    """True when `error` says the database cannot be reached or will not take a connection."""
    if isinstance(error, PoolTimeout):
        return True
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    orig = error.orig
    if getattr(orig, "pgcode", None) in _UNAVAILABLE_CODES:
        return True
    if isinstance(orig, psycopg2.InterfaceError):
        return True  # "connection already closed"
    if isinstance(orig, psycopg2.OperationalError):
        code = getattr(orig, "pgcode", None)
        # psycopg2 gives no code for a failed connect (refused, reset, "too many clients").
        return code is None or code.startswith("08") or code in _UNAVAILABLE_CODES
    return False


def _mark_committed(conn) -> None:
    if has_request_context():
        g._db_committed = True


def _mark_commits(engine: Engine) -> None:
    """Mark the request as having committed whenever a COMMIT goes to the database on this engine.

    The dialect's `do_commit` sends every COMMIT (an ORM session's, a
    `engine.begin()` block's, the payment gateway's), exactly where the
    engine's "commit" event would fire, and before it is sent, as that event
    is: a COMMIT that fails may have been applied. Not the event: one
    listener on the engine puts every statement of every request through
    SQLAlchemy's event dispatch (about 35-70 µs a statement, measured), for
    a mark that only commits need.
    """
    dialect = engine.dialect
    if getattr(dialect, "_marks_commits", False):
        return
    send_commit = dialect.do_commit

    def do_commit(dbapi_connection) -> None:
        _mark_committed(dbapi_connection)
        send_commit(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect._marks_commits = True  # type: ignore[attr-defined]


def retry_on_stale_connection(app: Flask) -> None:
    """Run a view once more when its connection turned out dead before it committed anything."""
    from webapp.extensions import db

    with app.app_context():
        _mark_commits(db.engine)

    dispatch = app.dispatch_request

    def dispatch_request(*args: Any, **kwargs: Any):
        try:
            return dispatch(*args, **kwargs)
        except DBAPIError as error:
            if not error.connection_invalidated or g.get("_db_committed"):
                raise
            log.warning("db.stale_connection_retry", extra={"error": str(error.orig).strip()[:200]})
            db.session.rollback()
            return dispatch(*args, **kwargs)

    app.dispatch_request = dispatch_request

    @app.teardown_appcontext
    def remove_session_quietly(exc: BaseException | None) -> None:
        # Runs before Flask-SQLAlchemy's own teardown (registered earlier, so
        # called later). Closing a session whose connection died mid-request
        # tries a rollback that raises; raised here, it would turn the 503
        # already written into a bare 500.
        try:
            db.session.remove()
        except DBAPIError:
            log.warning("db.session_close_failed", exc_info=True)


@contextmanager
def single_statement(*, writes: bool = False) -> Iterator[Connection]:
    """A pooled connection in autocommit: each statement commits on its own.

    `writes`: the statement changes data, so the request counts as having
    committed (a stale-connection retry must not run it twice). Autocommit is
    switched on the driver's connection directly and off again before it goes
    back to the pool: switching it through SQLAlchemy's isolation level would
    cost a `SET default_transaction_isolation` round trip at every return.
    """
    from webapp.extensions import db

    with db.engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        raw.autocommit = True
        try:
            yield connection
            if writes:
                _mark_committed(connection)
        finally:
            if raw is not None and not raw.closed:
                raw.autocommit = False
