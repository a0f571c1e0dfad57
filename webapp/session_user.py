"""The signed-in user as the signed session cookie knows them, checked against one row.

Loading the `users` row through the ORM on every request cost a query and
the ORM work around it for what pages need: the id, the name in the header,
and whether to show the admin link. At login those go into the session,
which Flask signs with SECRET_KEY, so they cannot be forged.

A signed cookie alone cannot be taken back, though: a copy made before
logout kept working. So the card also carries the user's `session_version`,
and the loader compares it with the row, in one primary-key lookup of two
columns (`SELECT session_version, is_admin FROM users WHERE id = …`).
Flask-Login calls the loader lazily, the first time a request touches
`current_user`, so static files, `/healthz` and anonymous visitors pay
nothing. Logout bumps the version, which ends every copy of every session
of that user. The same lookup answers "is this still an admin?", so
demoting an admin takes effect at once, with no second query.

Timeouts need no database: the card holds when the user logged in
(absolute limit) and the session when it was last seen (idle limit,
refreshed at most once a minute so the cookie is not rewritten per request).
"""
from __future__ import annotations

import time

from flask import current_app, g, session
from flask.sessions import SecureCookieSessionInterface
from flask_login import UserMixin
from sqlalchemy import text, update

from webapp.parsing import parse_id

_KEY = "_user_card"
_SEEN = "_seen"
IN_A_TEAM = "_in_a_team"
# Rewrite the last-seen stamp (and so the cookie) at most this often.
_SEEN_RESOLUTION = 60
# Built once: a fresh select() per request cost more Python than the round trip.
_CHECK = text("SELECT session_version, is_admin FROM users WHERE id = :id")
_CHECK_FOR_PAGE: text | None = None  # built on first use: see _check_for_page


class SigningOnce(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signing serializer built once per key set.

    Flask builds a new serializer (and its signer) to open and again to save
    the session of every request; the keys only change with the config.
    """

    def __init__(self) -> None:
        self._built: tuple[tuple, object] | None = None

    def get_signing_serializer(self, app):
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        built = self._built
        if built is None or built[0] != keys:
            built = self._built = (keys, super().get_signing_serializer(app))
        return built[1]


class SessionUser(UserMixin):
    def __init__(self, user_id: int, name: str, is_admin: bool, offers: list | None = None):
        self.id = user_id
        self.name = name
        self.is_admin = is_admin
        # The waiting-list offers of the banner, when read with the check (full pages); None: not read.
        self.offers = offers


def _check_for_page():
    # A full page shows the offers banner: the check reads the offers in the
    # same statement, so the banner costs no round trip of its own.
    global _CHECK_FOR_PAGE
    if _CHECK_FOR_PAGE is None:
        from webapp.services.waiting.waitlist_read import LIVE_OFFERS_JSON

        _CHECK_FOR_PAGE = text(
            f"SELECT session_version, is_admin, {LIVE_OFFERS_JSON} AS offers FROM users WHERE id = :id")
    return _CHECK_FOR_PAGE


def remember(user) -> None:
    """Called when a user logs in: what the loader needs, in the signed cookie, and a fresh CSRF token."""
    now = int(time.time())
    session[_KEY] = [int(user.id), user.name, bool(user.is_admin), int(user.session_version or 0), now]
    session[_SEEN] = now
    # Whether to show the admin link to a team member (only a link: the admin guard decides access).
    session[IN_A_TEAM] = bool(user.is_admin) or _in_a_team(int(user.id))
    # A token seen before login (on a shared machine, say) must not work after it.
    forget_csrf_token()


def _in_a_team(user_id: int) -> bool:
    from sqlalchemy import exists, select

    from webapp.extensions import db
    from webapp.models import OrganiserMember

    return bool(db.session.scalar(select(exists().where(OrganiserMember.user_id == user_id))))


def forget_csrf_token() -> None:
    """Drop the CSRF token (Flask-WTF keeps it in the session and caches it in `g`): the next page gets a new one."""
    field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    session.pop(field, None)
    g.pop(field, None)


def end_all_sessions(db_session, user_id: int) -> None:
    """Logout: every cookie issued to this user so far stops working. The caller commits."""
    from webapp.models import User

    db_session.execute(update(User).where(User.id == user_id).values(session_version=User.session_version + 1))


def _expired(card: list, now: int) -> bool:
    config = current_app.config
    logged_in_at = card[4]
    seen = session.get(_SEEN, 0)
    if now - logged_in_at > config["SESSION_ABSOLUTE_HOURS"] * 3600:
        return True
    if now - seen > config["SESSION_IDLE_MINUTES"] * 60:
        return True
    if now - seen > _SEEN_RESOLUTION:
        session[_SEEN] = now
    return False


def _card(user_id) -> list | None:
    """The session's card if it is for this user and its time is not up (no database)."""
    uid = parse_id(user_id) if user_id is not None else None
    card = session.get(_KEY)
    if uid is None or not card or len(card) != 5 or card[0] != uid or _expired(card, int(time.time())):
        return None
    return card


def claimed() -> tuple[int, int] | None:
    """(user id, session version) as the signed cookie claims them, not yet checked.

    For the polls, which stay one statement: they read the user's
    `session_version` in their own statement and pass it to `confirmed`.
    """
    card = _card(session.get("_user_id"))
    return (card[0], card[3]) if card else None


def confirmed(claim: tuple[int, int] | None, version_in_database: int | None) -> int | None:
    """The claimed user's id if the database still knows that session version; None otherwise."""
    if claim is None or version_in_database is None or version_in_database != claim[1]:
        return None
    return claim[0]


def adopt(claim: tuple[int, int] | None, owner) -> int | None:
    """For a view whose own statement read the user's row (`checkout_read.OWNER_COLUMNS`):
    confirm the cookie's claim with it and make that the request's user, so
    `current_user` (and the offers banner) cost no statement of their own.
    The user's id, or None (no claim, or a session that was ended: it is forgotten)."""
    from webapp.services.waiting.waitlist_read import offers_from_json

    user_id = confirmed(claim, owner.session_version if owner is not None else None)
    if user_id is None:
        if claim is not None:
            _forget()
        return None
    # Flask-Login's current_user reads the request's user from g._login_user.
    g._login_user = SessionUser(user_id, session[_KEY][1], bool(owner.is_admin), offers_from_json(owner.offers))
    return user_id


def owner_read(read):
    """A signed-in page that reads one row of the buyer's own (a hold, an order) in one
    statement, the session check included: `read(connection, user_id)` returns
    (view, owner row). The view; a login redirect for no or an ended session; 404 for
    what is not theirs."""
    from flask import abort
    from flask_login import current_user

    from webapp.database import single_statement

    claim = claimed()
    if claim is None:
        abort(current_app.login_manager.unauthorized())
    with single_statement() as connection:
        view, owner = read(connection, claim[0])
    if view is None:
        # Someone else's, or nothing: 404 once the session is known to be live.
        if not current_user.is_authenticated:
            abort(current_app.login_manager.unauthorized())
        abort(404)
    if adopt(claim, owner) is None:
        abort(current_app.login_manager.unauthorized())
    return view


def load(user_id: str):
    """The user for this request, or None when the session was ended, timed out or is from an older release."""
    from webapp.database import single_statement

    card = _card(user_id)
    if card is None:
        return _forget()
    uid = card[0]
    from webapp.htmx import is_partial_request

    page = not is_partial_request()
    # A statement of its own (autocommit): a poll or a reserve that reads
    # nothing else through the session then pays no BEGIN/ROLLBACK for it.
    with single_statement() as connection:
        row = connection.execute(_check_for_page() if page else _CHECK, {"id": uid}).first()
    if row is None or row.session_version != card[3]:
        return _forget()
    offers = None
    if page:
        from webapp.services.waiting.waitlist_read import offers_from_json

        offers = offers_from_json(row.offers)
    return SessionUser(uid, card[1], bool(row.is_admin), offers)


def forget() -> None:
    """This request's session is over: it carries on, and goes on, as anonymous."""
    _forget()


def _forget() -> None:
    for key in ("_user_id", "_fresh", "_id", _KEY, _SEEN, IN_A_TEAM, "organiser_id"):
        session.pop(key, None)
    return None
