"""Signed links for password reset and e-mail verification, and what happens when they are used.

No token is stored. A reset token is signed with SECRET_KEY and carries the
user id, its issue time (checked against `PASSWORD_RESET_MAX_AGE_SECONDS`)
and a fingerprint of the current password hash: once the password changes,
every reset link issued before is dead, so each works once. Verification
tokens carry the address they verify, so a changed address is not verified
by an old link.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, SignatureExpired
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.models import User
from webapp.services import audit
from webapp.services.errors import BookingError
from webapp.services.messaging import outbox
from webapp.services.messaging.links import (
    RESET_SALT,
    VERIFY_SALT,
    _fingerprint,
    _serializer,
    reset_token,
    verify_token,
)
from webapp.services.people import accounts, api_tokens


class TokenRefused(BookingError):
    status_code = 400
    default_message = _l("This link is invalid or has expired.")


def _load(salt: str, token: str, max_age_setting: str, *, expired: str, invalid: str) -> dict:
    """What a signed link carries, or TokenRefused in the link's own words."""
    try:
        return _serializer(salt).loads(token, max_age=current_app.config[max_age_setting])
    except SignatureExpired:
        raise TokenRefused(expired) from None
    except BadSignature:
        raise TokenRefused(invalid) from None


def request_reset(session: Session, email: str) -> None:
    """Mail a reset link if the address has an account; do nothing visible otherwise."""
    user = session.scalars(select(User).where(User.email == email.strip().lower())).first()
    if user is None:
        return
    outbox.queue(session, template="password_reset", recipient=user.email,
                 params={"user_id": user.id, "token": reset_token(user)})


def user_for_reset(session: Session, token: str) -> User:
    """The account a reset link is for, or TokenRefused (forged, expired or already used)."""
    data = _load(RESET_SALT, token, "PASSWORD_RESET_MAX_AGE_SECONDS",
                 expired=_("This reset link has expired. Ask for a new one."),
                 invalid=_("This reset link is not valid. Ask for a new one."))
    user = session.scalars(select(User).where(User.id == data.get("u")).with_for_update()).first()
    if user is None or data.get("p") != _fingerprint(user):
        raise TokenRefused(_("This reset link was already used. Ask for a new one."))
    return user


@dataclass(frozen=True)
class PasswordReset:
    user: User
    api_tokens_revoked: int


def reset_password(session: Session, token: str, password: str) -> PasswordReset:
    """Set a new password through a reset link; every session begun before now ends, and every API token.

    A reset says "someone else may have had my password", and whoever had it
    could have made tokens that outlive any session. The caller commits.
    """
    user = user_for_reset(session, token)
    problem = accounts.password_problem(password, user.email)
    if problem:
        raise TokenRefused(problem)
    user.password_hash = accounts.hash_password(password)
    user.password_changed_at = func.now()
    # Every session begun before now ends (session_user checks the version).
    user.session_version = User.session_version + 1
    # Whoever reads the mail controls the address: a reset also proves it.
    if user.email_verified_at is None:
        user.email_verified_at = func.now()
    session.flush()
    revoked = api_tokens.revoke_all(session, user_id=user.id)
    audit.record(session, actor_id=user.id, action="account.password_reset", entity="user", entity_id=user.id,
                 after={"api_tokens_revoked": revoked})
    session.refresh(user, ["password_changed_at", "session_version"])
    return PasswordReset(user, revoked)


def send_verification(session: Session, user: User) -> None:
    outbox.queue(session, template="verify_email", recipient=user.email,
                 params={"user_id": user.id, "token": verify_token(user)})


def verify_email(session: Session, token: str) -> User:
    data = _load(VERIFY_SALT, token, "EMAIL_VERIFY_MAX_AGE_SECONDS",
                 expired=_("This verification link has expired. Log in to get a new one."),
                 invalid=_("This verification link is not valid."))
    user = session.get(User, data.get("u"))
    if user is None or user.email != data.get("e"):
        raise TokenRefused(_("This verification link is not valid."))
    if user.email_verified_at is None:
        user.email_verified_at = func.now()
        session.flush()
    return user
