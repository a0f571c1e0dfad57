"""Errors of the API as RFC 9457 problem details (`application/problem+json`).

The words are the pages' own: every refusal comes from the same service
error (`webapp/services/errors.py`) the HTML views show, and a problem only
adds what a program needs to act on it (which seats, how many are left).
This module asks nothing of the database, so the 503 of a database that is
away can be written with it.
"""
from __future__ import annotations

import json
from typing import Any

from flask import Response, request
from flask_babel import lazy_gettext as _l

from webapp.services.errors import BookingError

PREFIX = "/api/"
MEDIA_TYPE = "application/problem+json"

# Translated per request: an API client asks for its language with Accept-Language.
TITLES = {
    400: _l("Bad request"), 401: _l("Unauthorized"), 402: _l("Payment declined"), 403: _l("Forbidden"),
    404: _l("Not found"), 405: _l("Method not allowed"), 406: _l("Not acceptable"), 409: _l("Conflict"),
    410: _l("Gone"), 412: _l("Precondition failed"), 413: _l("Content too large"), 414: _l("URI too long"),
    415: _l("Unsupported media type"), 422: _l("Unprocessable content"), 428: _l("Precondition required"),
    429: _l("Too many requests"), 431: _l("Request header fields too large"), 500: _l("Internal server error"),
    503: _l("Service unavailable"),
}


def is_api_request() -> bool:
    return request.path.startswith(PREFIX)


def type_uri(slug: str) -> str:
    """Each kind of refusal has a section on the docs page."""
    return f"/api/docs#problem-{slug}"


def problem(status: int, detail: str, *, slug: str | None = None, retry_after: int | None = None,
            headers: dict[str, str] | None = None, **extensions: Any) -> Response:
    body: dict[str, Any] = {
        "type": type_uri(slug) if slug else "about:blank",
        "title": str(TITLES.get(status, _l("Error"))),
        "status": status,
        "detail": str(detail),
        "instance": request.path,
    }
    body.update(extensions)
    # default=str: a form's messages are lazy strings, translated when written out.
    response = Response(json.dumps(body, default=str), status=status, mimetype=MEDIA_TYPE)
    response.headers["Cache-Control"] = "no-store"
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _slug(error: BookingError) -> str:
    name = type(error).__name__
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


def booking_problem(error: BookingError, retry_after: int | None = None) -> Response:
    """A service refusal, with the message the page would show and the facts behind it."""
    extensions: dict[str, Any] = dict(error.facts)
    extensions.update(getattr(error, "problem_extensions", {}))
    return problem(error.status_code, error.message, slug=_slug(error), retry_after=retry_after, **extensions)
