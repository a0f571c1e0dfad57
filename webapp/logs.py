"""Structured logs: one JSON object per line, with the request id and user.

python-json-logger does the JSON encoding (it handles `extra` fields and
exceptions robustly); this module adds request context to every record and
one access line per request: request id, route (the Flask endpoint), method,
path, status, duration, user id and event id. Never an e-mail address,
password, token or card number: a path that carries a token (a password
reset link) is logged as its rule, `/password/reset/<token>`.
"""
from __future__ import annotations

import logging
import re
import sys
import time
import uuid

from flask import Flask, g, has_request_context, request, session
from pythonjsonlogger.json import JsonFormatter

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# URL parts that are secrets: a path holding one is logged as its rule.
_SECRET_URL_PARTS = frozenset({"token"})


def path_for_logs(app: Flask, method: str, path: str) -> str:
    """A path as a log line may show it, outside a request (gunicorn's access log): the rule of a path
    that holds a secret, as the app's own access line shows it. A path no rule matches holds none of the
    app's secrets; one a rule matches but does not serve (another method, a redirect) is shown as "-"."""
    from werkzeug.exceptions import HTTPException, NotFound

    try:
        rule, view_args = app.url_map.bind("localhost").match(path, method, return_rule=True)
    except NotFound:
        return path
    except HTTPException:
        return "-"
    return rule.rule if not _SECRET_URL_PARTS.isdisjoint(view_args) else path


def elapsed_seconds() -> float | None:
    """How long this request has taken so far (from the first before-request hook)."""
    started = g.get("request_started")
    return None if started is None else time.perf_counter() - started


def _user_id() -> int | None:
    """The request's user, as far as it is known without a query of its own."""
    user = g.get("_login_user")
    if user is not None and user.is_authenticated:
        return int(user.get_id())
    api_caller = g.get("api_caller")  # an API request: its token's user
    if api_caller is not None:
        return api_caller.user_id
    if session.accessed:
        # The view read the signed cookie's claim (the reserve, the polls):
        # read it again. A request that never opened the session is not made
        # to (that would add `Vary: Cookie` to cacheable answers).
        from webapp import session_user

        claim = session_user.claimed()
        return claim[0] if claim else None
    return None


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = getattr(g, "request_id", None)
            if not hasattr(record, "user_id"):
                # Only a user already known to this request: logging must
                # never cost a query of its own.
                record.user_id = _user_id()
        return True


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time of the record.

    gunicorn and test runners swap stderr; a handler bound to the old object
    would write to a closed file.
    """

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def json_lines(handler: logging.Handler) -> logging.Handler:
    """The handler, writing one JSON object per record with the request's context."""
    handler.setFormatter(
        JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", rename_fields={"levelname": "level"},
                      timestamp=False)
    )
    handler.addFilter(RequestContextFilter())
    return handler


_NOT_LOGGED = frozenset({"static", "health.healthz", "metrics.scrape"})


def configure(app: Flask) -> None:
    handler = json_lines(StderrHandler())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(app.config["LOG_LEVEL"])
    logging.getLogger("werkzeug").setLevel("WARNING")
    logging.getLogger("alembic.runtime.plugins").setLevel("WARNING")
    logging.getLogger("pgserver").setLevel("WARNING")
    access = logging.getLogger("webapp.access")

    @app.before_request
    def assign_request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def log_request(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        if access.isEnabledFor(logging.INFO) and request.endpoint not in _NOT_LOGGED:
            view_args = request.view_args or {}
            secret = request.url_rule is not None and not _SECRET_URL_PARTS.isdisjoint(view_args)
            access.info(
                "request",
                extra={
                    "method": request.method,
                    "route": request.endpoint,
                    "path": request.url_rule.rule if secret else request.path,
                    "status": response.status_code,
                    "ms": round((elapsed_seconds() or 0.0) * 1000, 1),
                    "event_id": view_args.get("event_id", g.get("event_id")),
                },
            )
        return response
