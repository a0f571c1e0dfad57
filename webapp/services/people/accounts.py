"""Accounts: creating users and checking passwords.

Passwords are hashed with Argon2id (argon2-cffi), the OWASP first choice,
at OWASP's minimum cost (19 MiB, 2 passes) so a login rush cannot blow a
worker's memory.
"""
from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.models import User
from webapp.services.errors import BookingError

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verifying against this keeps a login for an unknown e-mail as slow as one
# for a known e-mail, so timing does not reveal who has an account.
_DUMMY_HASH = _hasher.hash("not-a-real-password")

MIN_PASSWORD_LENGTH = 12
# Trailing digits and symbols people add to a common word ("sunshine2024!").
_DECORATION = "0123456789!@#$%^&*?._-+= "


class EmailTaken(BookingError):
    default_message = _l("An account with this e-mail already exists.")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_problem(password: str, email: str = "") -> str | None:
    """Why a password is too weak, or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return _("Use at least %(count)s characters.", count=MIN_PASSWORD_LENGTH)
    lowered = password.lower()
    core = lowered.rstrip(_DECORATION).lstrip(_DECORATION)
    common = common_passwords()
    if lowered in common or (len(core) >= 6 and core in common):
        return _("That password is on a list of common passwords; choose another.")
    if email and password.lower() == email.lower():
        return _("Your password cannot be your e-mail address.")
    if len(set(password)) < 4:
        return _("Use a less repetitive password.")
    return None


@functools.cache
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of real leaks, as shipped with zxcvbn (no network)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def email_taken(session: Session, email: str) -> bool:
    return session.execute(select(func.count()).where(User.email == email.strip().lower())).scalar_one() > 0


def register(session: Session, *, email: str, password: str, name: str, is_admin: bool = False) -> User:
    email = email.strip().lower()
    if email_taken(session, email):
        raise EmailTaken()
    user = User(email=email, name=name.strip(), password_hash=hash_password(password), is_admin=is_admin)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = session.scalars(select(User).where(User.email == email.strip().lower())).first()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user
