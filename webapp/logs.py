"""Structured logs: one JSON object per line, with the request id and user.

python-json-logger does the JSON encoding (it handles `extra` fields and
exceptions robustly); this module adds request context to every record and
one access line per request.
"""
from __future__ import annotations

import logging
import re
import sys
import time
import uuid

from flask import Flask, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = getattr(g, "request_id", None)
            if not hasattr(record, "user_id"):
                # Only a user already loaded for this request: logging must
                # never cost a query of its own.
                user = g.get("_login_user")
                api_caller = g.get("api_caller")  # an API request: its token's user
                if user is not None and user.is_authenticated:
                    record.user_id = user.get_id()
                else:
                    record.user_id = api_caller.user_id if api_caller is not None else None
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
        if access.isEnabledFor(logging.INFO) and request.endpoint not in ("static", "health.healthz"):
            access.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "ms": round((time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000, 1),
                },
            )
        return response
