"""The signed-in user as the signed session cookie knows them.

Loading the `users` row on every request cost one query per request (and
the ORM work around it) for what the pages need: the id, the name in the
header, and whether to show the admin link. At login those go into the
session, which Flask signs with SECRET_KEY, so they cannot be forged; the
user loader then builds the user from the cookie with no query.

Admin rights are the one thing a stale cookie must not keep: a claim of
"admin" is checked against the database (once per request, admins only),
so demoting an admin takes effect at once. A buyer's claim needs no check:
the worst a stale one can do is hide an admin link until the next login.
"""
from __future__ import annotations

import time

from flask import g, session
from flask_login import UserMixin

_KEY = "_user_card"
# When the account's password last changed, as this session saw it at login.
# A reset moves it on in the database, and every older session ends.
_PASSWORD_KEY = "_pw_epoch"
_CHECKED_KEY = "_pw_checked"


class SessionUser(UserMixin):
    def __init__(self, user_id: int, name: str, admin_claim: bool):
        self.id = user_id
        self.name = name
        self._admin_claim = admin_claim

    @property
    def is_admin(self) -> bool:
        if not self._admin_claim:
            return False
        verified = g.get("_admin_verified")
        if verified is None:
            from webapp.extensions import db
            from webapp.models import User

            user = db.session.get(User, self.id)
            verified = g._admin_verified = bool(user is not None and user.is_admin)
        return verified


def remember(user) -> None:
    """Called when a user logs in: what the loader needs, in the signed cookie."""
    session[_KEY] = [int(user.id), user.name, bool(user.is_admin)]
    session[_PASSWORD_KEY] = password_epoch(getattr(user, "password_changed_at", None))
    session[_CHECKED_KEY] = time.time()  # what login just read is as fresh as a check


def password_epoch(changed_at) -> int:
    return round(changed_at.timestamp() * 1_000_000) if changed_at is not None else 0


def _still_valid(user_id: int) -> bool:
    """Whether this session began after the account's last password change.

    A signed cookie cannot be revoked, so the database must say whether it
    still counts. Asking on every request would put back the users query
    this module exists to avoid, so a session is re-checked at most every
    `SESSION_RECHECK_SECONDS` (the time of the last check rides in the signed
    cookie): a reset ends other sessions within that time; 0 checks always.
    """
    from flask import current_app

    now = time.time()
    interval = current_app.config.get("SESSION_RECHECK_SECONDS", 30)
    if interval and now - session.get(_CHECKED_KEY, 0) < interval:
        return True
    if not _password_unchanged(user_id):
        session.clear()  # over for good: later requests are anonymous, with no query
        return False
    session[_CHECKED_KEY] = now
    return True


def _password_unchanged(user_id: int) -> bool:
    from sqlalchemy import select

    from webapp.extensions import db
    from webapp.models import User

    changed_at = db.session.scalar(select(User.password_changed_at).where(User.id == user_id))
    return password_epoch(changed_at) == session.get(_PASSWORD_KEY, 0)


def load(user_id: str):
    """The user for this request: from the cookie, or from the database for older sessions."""
    if not user_id.isdigit():
        return None
    if not _still_valid(int(user_id)):
        return None
    card = session.get(_KEY)
    if card and card[0] == int(user_id):
        return SessionUser(card[0], card[1], card[2])
    from webapp.extensions import db
    from webapp.models import User

    return db.session.get(User, int(user_id))
