"""What goes into a link that leaves the app: absolute URLs and their signed tokens.

Mails, calendar files and PDFs link back to the shop; reset and verification
links carry a token signed with SECRET_KEY. Kept apart from the outbox and
the renderer, which both need them, so that neither imports the other's
caller (services import each other without a cycle).
"""
from __future__ import annotations

import hashlib

from flask import current_app
from itsdangerous import URLSafeTimedSerializer

from webapp.models import User

RESET_SALT = "password-reset"
VERIFY_SALT = "email-verify"


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def _fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def reset_token(user: User) -> str:
    return _serializer(RESET_SALT).dumps({"u": user.id, "p": _fingerprint(user)})


def verify_token(user: User) -> str:
    return _serializer(VERIFY_SALT).dumps({"u": user.id, "e": user.email})


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
