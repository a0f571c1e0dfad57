"""The waiting room's shared state, `/events/<id>/waiting-room/now.json`, answered before Flask.

Everyone in a room needs the same few figures to place themselves: how far
the room has served, how many left, how fast it lets people in, whether it
is paused, sold out or open (`positions.shared_state`). Each page holds
its own number (signed, in its place cookie, and drawn into the page) and
works out its position from these; so the crowd's polls all ask for one
small public resource per room, the same for a thousand people or a
million, marked `Cache-Control: public, max-age=1` with an ETag: any HTTP
cache or CDN in front answers nearly all of them.

Without a cache in front, this process answers from memory: a room's
answer is made at most once a second per process, from the room's row (one
statement). When that row says no admission pass ran for
`WAITING_ROOM_LAZY_PASS_SECONDS` (the sweep is behind or not running), the
refresh runs one (`waiting_room.admit`, SKIP LOCKED on the room row as
always): the room keeps moving with no sweep, and the crowd's polls cost at
most one pass a second between them. The memory is a cache of public
figures a second old, never a source of truth.

It is a WSGI layer in front of the Flask app rather than a view: a fresh
answer touches no session cookie, CSRF token, user, rate limiter, request
id, template or database connection. Only while one thread of a process
refreshes a room do the others keep giving the answer it replaces (a second
old) rather than wait. A database that cannot be reached is a 503 with
Retry-After, itself kept for a second, so a million polls do not each try
to connect.

The draw's published numbers (`/events/<id>/waiting-room/draw/<file>.json`,
`positions.draw_numbers`) are answered the same way, each file kept for
two seconds: at the sale start every page waiting for it reads its number
there, a few hundred small public answers for the whole room instead of a
status ask per person.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from dataclasses import dataclass

from flask import Flask, Response
from sqlalchemy.exc import SQLAlchemyError

from webapp import security
from webapp.database import RETRY_AFTER, single_statement
from webapp.extensions import db
from webapp.parsing import INT_MAX
from webapp.services.waiting import waiting_room

log = logging.getLogger(__name__)

PATH = re.compile(r"/events/([1-9][0-9]{0,9})/waiting-room/(?:now|draw/([0-9]{1,9}))\.json")
# How long an answer is good for, here and in any cache in front: the room's
# figures, and a file of the draw's numbers (a number, once given, stays).
FRESH_SECONDS = 1.0
DRAW_FRESH_SECONDS = 2.0
ROOMS_KEPT = 1024
_JSON = "application/json"


@dataclass(frozen=True)
class Answer:
    status: str
    body: bytes
    etag: str | None
    cache_control: str
    made: float
    retry_after: int | None = None

    @property
    def status_code(self) -> int:
        return int(self.status.split(" ", 1)[0])


# What an answer is kept by: the room's event id, and which file of the draw's numbers (None: now.json).
Key = tuple[int, int | None]


def _answer(status: str, payload: dict, *, cacheable: bool, retry_after: int | None = None,
            fresh: float = FRESH_SECONDS) -> Answer:
    body = json.dumps(payload, separators=(",", ":")).encode()
    etag = f'"{hashlib.blake2b(body, digest_size=8).hexdigest()}"' if cacheable else None
    cache = f"public, max-age={int(fresh)}" if cacheable else "no-store"
    return Answer(status, body, etag, cache, time.monotonic(), retry_after)


def _fresh_seconds(key: Key) -> float:
    return FRESH_SECONDS if key[1] is None else DRAW_FRESH_SECONDS


class RoomNow:
    """The answers of one process, and the WSGI layer that gives them."""

    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app
        self._answers: dict[Key, Answer] = {}
        self._refreshing: dict[Key, threading.Lock] = {}
        self._guard = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            match = PATH.fullmatch(environ.get("PATH_INFO", ""))
            if match and int(match.group(1)) <= INT_MAX:
                file = int(match.group(2)) if match.group(2) is not None else None
                return self._give(self.answer(int(match.group(1)), file), environ, start_response)
        return self.wsgi_app(environ, start_response)

    def answer(self, event_id: int, file: int | None = None) -> Answer:
        """The room's answer (or a file of its draw's numbers): the one kept while fresh, else a new one.

        One thread refreshes; the others meanwhile give the answer it replaces.
        """
        key = (event_id, file)
        fresh_for = _fresh_seconds(key)
        kept = self._answers.get(key)
        if kept is not None and time.monotonic() - kept.made < fresh_for:
            return kept
        lock = self._lock_for(key)
        if kept is not None and not lock.acquire(blocking=False):
            return kept  # another thread is refreshing it
        if kept is None:
            lock.acquire()
        try:
            kept = self._answers.get(key)
            if kept is not None and time.monotonic() - kept.made < fresh_for:
                return kept
            fresh = self._refresh(event_id) if file is None else self._refresh_draw(event_id, file)
            with self._guard:
                self._answers.pop(key, None)
                self._answers[key] = fresh
                while len(self._answers) > ROOMS_KEPT:
                    oldest = next(iter(self._answers))
                    self._answers.pop(oldest)
                    self._refreshing.pop(oldest, None)
            return fresh
        finally:
            lock.release()

    def forget(self) -> None:
        """Drop every answer kept (the test suite, whose tables start empty for each test)."""
        with self._guard:
            self._answers.clear()

    def _lock_for(self, key: Key) -> threading.Lock:
        with self._guard:
            return self._refreshing.setdefault(key, threading.Lock())

    def _refresh_draw(self, event_id: int, file: int) -> Answer:
        with self.app.app_context():
            try:
                with single_statement() as connection:
                    numbers = waiting_room.draw_numbers(connection, event_id, file)
            except SQLAlchemyError as error:
                log.warning("waiting_room.draw_unavailable", extra={"event_id": event_id,
                                                                     "error": str(error).strip()[:200]})
                return _unavailable()
            finally:
                _close_session()
        if numbers is None:
            return _answer("404 Not Found", {"error": "This event has no waiting room."}, cacheable=True)
        return _answer("200 OK", numbers, cacheable=True, fresh=DRAW_FRESH_SECONDS)

    def _refresh(self, event_id: int) -> Answer:
        with self.app.app_context():
            try:
                with single_statement() as connection:
                    shared = waiting_room.shared_state(connection, event_id)
                if shared is not None and shared.pass_due:
                    result = waiting_room.admit(db.session, event_id)
                    db.session.commit()
                    if result.admitted:
                        log.info("waiting_room.admitted", extra={"event_id": event_id,
                                                                 "admitted": len(result.admitted)})
                    with single_statement() as connection:
                        shared = waiting_room.shared_state(connection, event_id)
            except SQLAlchemyError as error:
                log.warning("waiting_room.now_unavailable", extra={"event_id": event_id,
                                                                    "error": str(error).strip()[:200]})
                return _unavailable()
            finally:
                _close_session()
        if shared is None:
            return _answer("404 Not Found", {"error": "This event has no waiting room."}, cacheable=True)
        return _answer("200 OK", shared.state, cacheable=True)

    def _give(self, answer: Answer, environ, start_response):
        headers = [("Content-Type", _JSON), ("Cache-Control", answer.cache_control),
                   *security.every_response_headers(environ.get("wsgi.url_scheme") == "https")]
        if answer.retry_after is not None:
            headers.append(("Retry-After", str(answer.retry_after)))
        status, body = answer.status, answer.body
        if answer.etag is not None:
            headers.append(("ETag", answer.etag))
            if answer.etag in environ.get("HTTP_IF_NONE_MATCH", ""):
                status, body = "304 Not Modified", b""
        if environ["REQUEST_METHOD"] == "HEAD":
            body = b""
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]

    def response(self, event_id: int, file: int | None = None) -> Response:
        """The same answer as a Flask response (the view at this address, for a request that reached Flask)."""
        answer = self.answer(event_id, file)
        response = Response(answer.body, status=answer.status_code, mimetype=_JSON)
        response.headers["Cache-Control"] = answer.cache_control
        if answer.etag:
            response.headers["ETag"] = answer.etag
        if answer.retry_after is not None:
            response.headers["Retry-After"] = str(answer.retry_after)
        return response


def _unavailable() -> Answer:
    return _answer("503 Service Unavailable", {"error": "unavailable", "retry_after": RETRY_AFTER},
                   cacheable=False, retry_after=RETRY_AFTER)


def _close_session() -> None:
    try:
        db.session.remove()
    except SQLAlchemyError:
        log.warning("db.session_close_failed", exc_info=True)


def install(app: Flask) -> None:
    """Put the shared state in front of the app; `app.extensions["waiting_room_now"]` holds its answers."""
    layer = RoomNow(app, app.wsgi_app)
    app.extensions["waiting_room_now"] = layer
    app.wsgi_app = layer  # type: ignore[method-assign]
