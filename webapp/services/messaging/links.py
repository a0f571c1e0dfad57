"""What goes into a link that leaves the app: absolute URLs and their signed tokens.

Mails, calendar files and PDFs link back to the shop; reset and verification
links carry a token signed with SECRET_KEY. Kept apart from the outbox and
the renderer, which both need them, so that neither imports the other's
caller (services import each other without a cycle).
"""
from __future__ import annotations

import hashlib
import time
from datetime import datetime

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from webapp.models import User

RESET_SALT = "password-reset"
VERIFY_SALT = "email-verify"
INVITE_SALT = "organiser-invite"
TURN_SALT = "waiting-room-turn"


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def _fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def reset_token(user: User) -> str:
    return _serializer(RESET_SALT).dumps({"u": user.id, "p": _fingerprint(user)})


def verify_token(user: User) -> str:
    return _serializer(VERIFY_SALT).dumps({"u": user.id, "e": user.email})


def invite_token(*, organiser_id: int, email: str, role: str, invitation_id: int) -> str:
    """An invitation to an organiser's team, for the account with this address, in this role; its row (`i`) says
    whether it is still pending."""
    return _serializer(INVITE_SALT).dumps({"o": organiser_id, "e": email, "r": role, "i": invitation_id})


def read_invite_token(token: str, *, max_age: int) -> dict:
    """What an invitation carries; itsdangerous' SignatureExpired or BadSignature when it is not to be trusted."""
    data = _serializer(INVITE_SALT).loads(token, max_age=max_age)
    shape = (("o", int), ("e", str), ("r", str), ("i", int))
    if not isinstance(data, dict) or not all(isinstance(data.get(key), kind) for key, kind in shape):
        raise BadSignature("Not an invitation.")
    return data


def turn_token(*, entry_id: int, event_id: int, until: datetime) -> str:
    """The mailed "it is your turn" link's token: one place of one waiting room, until its admission ends."""
    return _serializer(TURN_SALT).dumps({"w": entry_id, "e": event_id, "x": int(until.timestamp())})


def read_turn_token(token: str, *, event_id: int) -> int | None:
    """The place a turn token names, if it is genuine, for this event and not past its end; else None.

    The end is checked here on this host's clock; whether the admission is
    still current is the database's to say (the link's view checks the row).
    """
    try:
        data = _serializer(TURN_SALT).loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("e") != event_id or not isinstance(data.get("w"), int):
        return None
    if not isinstance(data.get("x"), int) or data["x"] <= time.time():
        return None
    return data["w"]


def link(endpoint: str, **values) -> str:
    """An absolute link for a message, a calendar file or a PDF.

    Always built on `PUBLIC_URL`, inside a request or not: the Host header
    of whoever triggered the mail is no address to send people to.
    """
    base = current_app.config.get("PUBLIC_URL") or "http://127.0.0.1:8000"
    scheme, _, rest = base.rstrip("/").partition("://")
    host, _, prefix = rest.partition("/")
    adapter = current_app.url_map.bind(host, url_scheme=scheme, script_name="/" + prefix if prefix else None)
    return adapter.build(endpoint, values, force_external=True)
