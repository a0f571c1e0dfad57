"""E-mail that waits to be sent, written in the same transaction as its cause.

A message exists exactly when the change that prompted it committed, so a
rolled-back offer never mails anyone. A sender (the `flask outbox` command in
development, a mail worker in production) takes unsent rows with
`SKIP LOCKED`, so several senders never send one message twice.
"""
from __future__ import annotations

from flask import current_app, has_request_context, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import OutboxMessage


def queue(session: Session, *, recipient: str, subject: str, body: str, event_id: int | None = None) -> OutboxMessage:
    message = OutboxMessage(event_id=event_id, recipient=recipient, subject=subject[:200], body=body)
    session.add(message)
    return message


def take_unsent(session: Session, limit: int = 100) -> list[OutboxMessage]:
    """The oldest unsent messages, locked for this sender only."""
    return list(session.scalars(
        select(OutboxMessage).where(OutboxMessage.sent_at.is_(None)).order_by(OutboxMessage.id)
        .limit(limit).with_for_update(skip_locked=True)
    ).all())


def link(endpoint: str, **values) -> str:
    """An absolute link for a message body.

    Mail is often written outside a request (the sweep expiring an offer), so
    the host comes from `PUBLIC_URL` there; the route is still the app's own.
    """
    if has_request_context():
        return url_for(endpoint, _external=True, **values)
    base = current_app.config.get("PUBLIC_URL") or "http://127.0.0.1:8000"
    scheme, _, host = base.rstrip("/").partition("://")
    return current_app.url_map.bind(host, url_scheme=scheme).build(endpoint, values, force_external=True)
