"""Overload: a request that waited too long in the server's queue is answered 503 at once, not served late.

The time a request spent queued is measured from the `X-Request-Start`
header that the reverse proxy in front of the app sets when it receives the
request (nginx: `proxy_set_header X-Request-Start "t=${msec}";`). gunicorn
itself cannot say: a request waits in the listen socket's backlog before a
worker accepts it, and nothing records when it arrived there. Accepted
forms: `t=<seconds with a fraction>` (nginx), or `t=` milliseconds or
microseconds (as other proxies write it); anything else is ignored.

`QUEUE_BUDGET_MS` (0: off) is the budget. The proxy's clock and the app
host's must agree to well within it (NTP); a header from the future counts
as no wait. The check costs no database and runs before anything else, so
a request over budget is answered in microseconds and the worker moves on
to one that can still be served in time; the client is told when to retry.
"""
from __future__ import annotations

import logging
import time

from flask import Flask, request
from flask_babel import lazy_gettext as _l

log = logging.getLogger(__name__)

RETRY_AFTER = 2
QUEUE_MESSAGE = _l("We are very busy right now. Please try again in a moment.")  # Busy's words too


def queued_seconds(header: str | None, now: float) -> float | None:
    """How long ago the proxy received the request, from its X-Request-Start; None when unreadable."""
    if not header:
        return None
    raw = header.strip()
    if raw.startswith("t="):
        raw = raw[2:]
    try:
        value = float(raw)
    except ValueError:
        return None
    if value > 1e14:  # microseconds
        value /= 1e6
    elif value > 1e11:  # milliseconds
        value /= 1e3
    if value <= 0:
        return None
    return max(0.0, now - value)


def register(app: Flask) -> None:
    budget_ms = int(app.config.get("QUEUE_BUDGET_MS") or 0)
    if budget_ms <= 0:
        return

    @app.before_request
    def refuse_if_queued_too_long():
        waited = queued_seconds(request.headers.get("X-Request-Start"), time.time())
        if waited is None or waited * 1000 <= budget_ms:
            return None
        from webapp.errors import error_response

        log.warning("request.queued_too_long", extra={"path": request.path, "waited_ms": int(waited * 1000)})
        return error_response(503, str(QUEUE_MESSAGE), retry_after=RETRY_AFTER)
