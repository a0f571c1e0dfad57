"""A request is one unit of work: services flush, views answer, and this module commits.

Once the view has answered, before anything of the answer leaves:

- **A 2xx or 3xx answer** (an htmx `HX-Redirect` is a 204) commits the
  session's open transaction. A commit that fails is an error of the view
  like any other: the error handlers (`errors.py`) roll back and answer 503
  with Retry-After for a database that is away or busy, 409 for a conflict,
  exactly as for a view that committed itself. And the cookie session goes
  back to what the request brought, so that answer carries none of the
  view's changes to it: no "saved" flash for what was not saved, no login or logout
  that did not happen.
- **A 4xx or 5xx answer** rolls back. No view answers an error while meaning
  to keep a change; a raised error is rolled back by its handler.

Only an open transaction is ended, so a request that never used the session
(the autocommit reads, the reserve statement) sends nothing. One that used
it only to read ends with a COMMIT where the session's removal at teardown
used to send a ROLLBACK: the same one round trip.

A few views still commit in the middle, for reasons of their own (each says
why, and `tests/test_architecture.py` lists them): a read on a connection of
its own must see the change; a lock that buyers queue on must not be held
while the answer is read and drawn. Services commit where they must (the
payment's phases around the gateway, the reserve statement, the delivery
workers, the waiting room's pass). CLI commands commit for themselves.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, g, request, session
from sqlalchemy.exc import DBAPIError
from werkzeug.wrappers import Response

from webapp.extensions import db

log = logging.getLogger(__name__)


def register(app: Flask) -> None:
    """Commit or roll back in the view's dispatch, where a failed commit still becomes the error answer."""
    dispatch = app.dispatch_request

    def dispatch_request(*args: Any, **kwargs: Any) -> Response:
        response = app.make_response(dispatch(*args, **kwargs))
        _end_transaction(app, keep=response.status_code < 400)
        return response

    app.dispatch_request = dispatch_request  # type: ignore[method-assign]


def _end_transaction(app: Flask, *, keep: bool) -> None:
    if not db.session.registry.has():
        return
    current = db.session()
    if not current.in_transaction():
        return
    if not keep:
        try:
            current.rollback()
        except DBAPIError:
            # A dead connection cannot roll back (the server already did);
            # the error answer stands, and the pool replaces the connection.
            log.warning("db.rollback_failed", exc_info=True)
        return
    try:
        current.commit()
    except Exception:
        _forget_cookie_session_changes(app)
        raise


def _forget_cookie_session_changes(app: Flask) -> None:
    interface = app.session_interface
    brought = interface.open_session(app, request)
    if brought is not None and not interface.is_null_session(session):
        # Back to what the request brought, and not sent again.
        session.clear()
        session.update(brought)
        session.modified = False
    # Flask-WTF caches the signed CSRF token in `g`: it may sign a token the
    # restored session does not hold. Made again on first use.
    g.pop(app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)
    # Flask-Login caches the user in `g`: after a login or logout that did
    # not happen, it is loaded again from the restored session.
    user = g.get("_login_user")
    if user is not None and user.get_id() != session.get("_user_id"):
        g.pop("_login_user")
