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

from flask import g, session
from flask_login import UserMixin

_KEY = "_user_card"


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


def load(user_id: str):
    """The user for this request: from the cookie, or from the database for older sessions."""
    if not user_id.isdigit():
        return None
    card = session.get(_KEY)
    if card and card[0] == int(user_id):
        return SessionUser(card[0], card[1], card[2])
    from webapp.extensions import db
    from webapp.models import User

    return db.session.get(User, int(user_id))
