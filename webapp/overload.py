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

The same measure tells the waiting room how the shop is doing
(`WAITING_ROOM_SHOP_DELAY_MS`, see `ShopDelay` and
webapp/services/waiting/waiting_room/outflow.py): a room lets fewer in
while the people it already let in queue.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
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


class ShopDelay:
    """This process's measure of how long the shop's requests queue, reported each second for the waiting room.

    Every request that is not the waiting room's crowd (its join, its
    status asks, its page: they queue by design, and may have processes of
    their own) adds its queueing time; once a second a thread of the
    process reports the mean (`outflow.report`), while it is at least a
    quarter of the target or the last report was (so a recovery is
    reported too). A quiet shop reports nothing: no statement at all.
    """

    def __init__(self, app: Flask, target_ms: int, *, every: float = 1.0, thread: bool = True):
        self.app = app
        self.floor_ms = target_ms / 4
        self.every = every
        self.source = f"{socket.gethostname()}:{os.getpid()}"
        self.reported_ms = 0.0
        self._total = 0.0
        self._count = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._start_thread = thread

    def observe(self, waited: float) -> None:
        with self._lock:
            self._total += waited
            self._count += 1
        if self._thread is None and self._start_thread:
            self._start()

    def report_due(self) -> float | None:
        """Report the last second's mean if it is worth it; the delay reported (ms), or None."""
        from webapp.services.waiting.waiting_room import outflow

        with self._lock:
            total, count = self._total, self._count
            self._total, self._count = 0.0, 0
        mean_ms = total / count * 1000 if count else 0.0
        if mean_ms < self.floor_ms and self.reported_ms < self.floor_ms:
            return None
        outflow.report(self.source, mean_ms)
        self.reported_ms = mean_ms
        return mean_ms

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            # Started in the worker that serves (after gunicorn's fork): its pid names the row.
            self.source = f"{socket.gethostname()}:{os.getpid()}"
            self._thread = threading.Thread(target=self._run, name="shop-delay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from sqlalchemy.exc import SQLAlchemyError

        while True:
            time.sleep(self.every)
            with self.app.app_context():
                try:
                    self.report_due()
                except SQLAlchemyError as error:
                    log.warning("shop_delay.report_failed", extra={"error": str(error).strip()[:200]})


def _crowd(path: str) -> bool:
    """The waiting room's crowd: its requests queue by design and say nothing of the shop's health."""
    return "/waiting-room" in path and "turn" not in request.args


def register(app: Flask) -> None:
    budget_ms = int(app.config.get("QUEUE_BUDGET_MS") or 0)
    target_ms = int(app.config.get("WAITING_ROOM_SHOP_DELAY_MS") or 0)
    if budget_ms <= 0 and target_ms <= 0:
        return
    shop_delay = ShopDelay(app, target_ms) if target_ms > 0 else None
    app.extensions["shop_delay"] = shop_delay

    @app.before_request
    def measure_queue():
        waited = queued_seconds(request.headers.get("X-Request-Start"), time.time())
        if waited is None:
            return None
        if shop_delay is not None and not _crowd(request.path):
            shop_delay.observe(waited)
        if budget_ms <= 0 or waited * 1000 <= budget_ms:
            return None
        from webapp.errors import error_response

        log.warning("request.queued_too_long", extra={"path": request.path, "waited_ms": int(waited * 1000)})
        return error_response(503, str(QUEUE_MESSAGE), retry_after=RETRY_AFTER)
