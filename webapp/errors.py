"""Errors are content too: a clear page, or a partial for htmx, never a traceback.

htmx requests get the message swapped into the page's `#flash` region
(HX-Retarget), so a refused action explains itself where the buyer looks.
"""
from __future__ import annotations

import logging
import time

from flask import Flask, g, make_response, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import AnonymousUserMixin
from flask_wtf.csrf import CSRFError
from psycopg2 import errorcodes
from sqlalchemy.exc import DBAPIError, IntegrityError
from werkzeug.exceptions import HTTPException

from webapp import database, metrics
from webapp.api import problems
from webapp.extensions import db, limiter
from webapp.htmx import is_partial_request
from webapp.services.errors import BookingError, Busy

log = logging.getLogger(__name__)

# Lazy: written in the request's language when an error page is made.
TITLES = {
    400: _l("That request was not valid"),
    402: _l("Payment declined"),
    403: _l("Not allowed"),
    404: _l("Not found"),
    405: _l("Not allowed"),
    409: _l("That could not be done"),
    410: _l("Reservation expired"),
    413: _l("Too large"),
    414: _l("Address too long"),
    429: _l("Too many requests"),
    431: _l("Headers too large"),
    500: _l("Something went wrong"),
    503: _l("Busy right now"),
}

# Lock wait or statement ran out of time: overload, not a bug.
_OVERLOAD_CODES = {errorcodes.LOCK_NOT_AVAILABLE, errorcodes.QUERY_CANCELED}


UNAVAILABLE_MESSAGE = _l("We cannot reach our database for a moment. Nothing was changed; "
                         "please try again in a few seconds.")
# A payment cut off by the outage may have been authorised already: the
# sweep's reconciliation settles it once the database is back (an order, or
# nothing charged). "Nothing was changed" would be untrue.
PAYMENT_UNKNOWN_MESSAGE = _l("We lost touch with our database while taking your payment, so we do not know yet "
                             "whether your payment went through. If it did, your order appears under My tickets "
                             "within a few minutes and we send your tickets by e-mail; you will not be charged "
                             "twice. Please look there before you try again in a few seconds.")
PAYMENT_ENDPOINTS = frozenset({"checkout.pay", "api.pay"})


def _unavailable():
    message = PAYMENT_UNKNOWN_MESSAGE if request.endpoint in PAYMENT_ENDPOINTS else UNAVAILABLE_MESSAGE
    return error_response(503, str(message), retry_after=database.RETRY_AFTER)


def _keep_own_retry_after() -> None:
    """This answer's Retry-After is not the rate limit's: keep Flask-Limiter from writing its own over it.

    On a limited route the limiter's after-request hook sets Retry-After to
    the end of the limit's window (up to a minute) on every response,
    whatever the answer said; with no current limit it adds no headers.
    """
    if limiter.enabled and limiter.initialized:
        limiter.context.view_rate_limit = None


def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:  # a dead connection cannot even roll back; the pool replaces it
        log.warning("db.rollback_failed", exc_info=True)


def error_response(status: int, message: str, retry_after: int | None = None):
    _rollback()
    if retry_after is not None and status != 429:
        _keep_own_retry_after()
    if problems.is_api_request():
        # The API answers every error, its own or the app's, as problem details.
        return problems.problem(status, message, retry_after=retry_after)
    title = str(TITLES.get(status, _l("Error")))
    response = make_response(_error_body(status, title, message), status)
    response.vary.add("HX-Request")
    if is_partial_request():
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _error_body(status: int, title: str, message: str) -> str:
    """The error as a partial or a page; a 5xx page (or one whose header failed) asks nothing of the database."""
    template = "errors/_error.html" if is_partial_request() else "errors/error.html"
    if status < 500:
        try:
            return render_template(template, status=status, title=title, message=message)
        except Exception as error:
            # Loading the user, the header's menu or the offer banner needed the database.
            log.warning("error_page.degraded", extra={"cause": type(error).__name__})
            db.session.rollback()
    if g.get("_login_user") is None:
        # Flask-Login puts `current_user` into every template's context, which
        # would load (and so query) the user: a stand-in keeps it off the database.
        g._login_user = AnonymousUserMixin()
    return render_template(template, status=status, title=title, message=message, db_free=True)


def register(app: Flask) -> None:
    @app.errorhandler(BookingError)
    def booking_error(error: BookingError):
        retry = 2 if isinstance(error, Busy) else error.retry_after
        metrics.note_refusal(error)
        if problems.is_api_request():
            _rollback()
            if retry is not None:
                _keep_own_retry_after()
            return problems.booking_problem(error, retry)
        return error_response(error.status_code, error.message, retry)

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return error_response(400, _("Your session has expired or the form is stale. Reload the page and try"
                                     " again."))

    @app.errorhandler(429)
    def rate_limited(error: HTTPException):
        window = limiter.current_limit
        retry_after = max(1, int(window.reset_at - time.time())) if window is not None else 60
        return error_response(
            429, _("Too many attempts. Please wait %(seconds)s seconds and try again.", seconds=retry_after),
            retry_after
        )

    @app.errorhandler(413)
    def too_large(error: HTTPException):
        limit = app.config.get("MAX_CONTENT_LENGTH") or 0
        return error_response(413, _("That form is too large to send (the limit is %(size)s KB). Shorten what you"
                                     " typed and try again.", size=limit // 1024))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        status = error.code or 500
        message = error.description if status != 404 else _("We could not find that page.")
        return error_response(status, message)

    @app.errorhandler(database.PoolTimeout)
    def pool_exhausted(error: database.PoolTimeout):
        log.warning("db.pool_exhausted", extra={"path": request.path})
        metrics.POOL_TIMEOUTS.inc()
        return _unavailable()

    @app.errorhandler(DBAPIError)
    def database_error(error: DBAPIError):
        if database.is_unavailable(error):
            log.warning("db.unavailable", extra={"path": request.path, "error": str(error.orig).strip()[:200]})
            return _unavailable()
        code = getattr(error.orig, "pgcode", None)
        if code in _OVERLOAD_CODES:
            log.warning("db.overload", extra={"pgcode": code, "path": request.path})
            return error_response(503, str(Busy.default_message), retry_after=2)
        if isinstance(error, IntegrityError):
            # A concurrent request changed the same thing first (double
            # submit, two tabs): a conflict the user can simply retry.
            log.info("db.conflict", extra={"constraint": getattr(error.orig.diag, "constraint_name", None)})
            return error_response(409, _("That was changed by another request at the same moment. Please try"
                                         " again."))
        log.exception("db.error")
        return error_response(500, _("Something went wrong on our side. Please try again."))

    @app.errorhandler(Exception)
    def unhandled(error: Exception):
        cause = error.__cause__ or error.__context__
        if database.is_unavailable(error) or (cause is not None and database.is_unavailable(cause)):
            log.warning("db.unavailable", extra={"path": request.path, "error": type(error).__name__})
            return _unavailable()
        log.exception("unhandled")
        return error_response(500, _("Something went wrong on our side. Please try again."))
