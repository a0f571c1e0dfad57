"""Personal API tokens: made and revoked on the account page, checked on every API request.

The secret is 32 random bytes, shown once when the token is made; the
database keeps its SHA-256 only. A fast hash is right here (unlike for
passwords): a 256-bit secret cannot be guessed, so there is nothing for a
slow hash to slow down, and every API request checks one.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from webapp.models import ApiToken
from webapp.services.errors import InvalidRequest, NotFound
from webapp.services.people import organisers

PREFIX = "tb_"
SCOPES = ("buyer", "admin")
MAX_LIVE_TOKENS = 20


def digest(secret: str) -> str:
    """What the database keeps of a secret (and what rate limits key on)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # shown once, never stored


def create(session: Session, *, user_id: int, is_admin: bool, name: str, scope: str,
           organiser_id: int | None = None) -> NewToken:
    """A new token for this user; admin scope only for an organiser's members, and it carries that
    organiser (`organiser_id`, else their first) and the role they have there now. The caller commits."""
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise InvalidRequest(_("Name the token (up to 80 characters), e.g. “box office laptop”."))
    if scope not in SCOPES:
        raise InvalidRequest(_("A token's scope is “buyer” or “admin”."))
    acting = organisers.acting(session, user_id=user_id, is_admin=is_admin, wanted=organiser_id) \
        if scope == "admin" else None
    if scope == "admin" and acting is None:
        raise InvalidRequest(_("Only members of an organiser team can make admin tokens."))
    live = session.scalar(select(func.count()).select_from(ApiToken)
                          .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))) or 0
    if live >= MAX_LIVE_TOKENS:
        raise InvalidRequest(_("You have %(count)s tokens already; revoke one first.", count=MAX_LIVE_TOKENS))
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user_id, name=name, token_hash=digest(secret), prefix=secret[:10], scope=scope,
                     organiser_id=acting.organiser_id if acting else None, role=acting.role if acting else None)
    session.add(token)
    session.flush()
    return NewToken(token, secret)


def tokens_of(session: Session, user_id: int) -> list[ApiToken]:
    """The user's tokens, live ones first, newest first."""
    return list(session.scalars(
        select(ApiToken).where(ApiToken.user_id == user_id)
        .order_by(ApiToken.revoked_at.is_not(None), ApiToken.id.desc())
    ).all())


def revoke(session: Session, *, user_id: int, token_id: int) -> ApiToken:
    """The token stops working at once (the next request is refused). The caller commits."""
    token = session.scalars(
        select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id).with_for_update()
    ).first()
    if token is None:
        raise NotFound(_("No such token."))
    if token.revoked_at is None:
        session.execute(update(ApiToken).where(ApiToken.id == token.id).values(revoked_at=func.now()))
        session.refresh(token)
    return token


def revoke_all(session: Session, *, user_id: int) -> int:
    """Every live token of the user stops working at once; how many there were. The caller commits."""
    revoked = session.execute(update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
                              .values(revoked_at=func.now()).returning(ApiToken.id)).all()
    return len(revoked)


@dataclass(frozen=True)
class Caller:
    """Who an API request acts for, as its token says."""

    token_id: int
    user_id: int
    scope: str
    is_admin: bool  # a platform administrator now (a demoted one's token reaches only what their role does)
    # An admin token's organiser and its maker's role when it was made (the admin guard checks both are still so).
    organiser_id: int | None = None
    role: str | None = None

    @property
    def admin(self) -> bool:
        return self.scope == "admin"


# One statement: find the live token and its user, and note the use at most
# once a minute (a busy script must not turn every read into a row write).
_AUTHENTICATE = text("""
WITH found AS (
    SELECT t.id, t.user_id, t.scope, t.last_used_at, u.is_admin, t.organiser_id, t.role
    FROM api_tokens t JOIN users u ON u.id = t.user_id
    WHERE t.token_hash = :h AND t.revoked_at IS NULL
), used AS (
    UPDATE api_tokens SET last_used_at = now()
    WHERE id = (SELECT id FROM found)
      AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
)
SELECT id, user_id, scope, is_admin, organiser_id, role FROM found
""")


def authenticate(connection, secret: str) -> Caller | None:
    """The caller behind a bearer secret, or None for an unknown or revoked one."""
    if not secret.startswith(PREFIX) or len(secret) > 100:
        return None
    row = connection.execute(_AUTHENTICATE, {"h": digest(secret)}).first()
    if row is None:
        return None
    return Caller(row.id, row.user_id, row.scope, bool(row.is_admin), row.organiser_id, row.role)
