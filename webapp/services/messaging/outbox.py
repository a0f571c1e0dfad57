"""E-mail that waits to be sent, written in the same transaction as its cause.

A message exists exactly when the change that prompted it committed, so a
rolled-back offer never mails anyone. Each row names its template in
`templates/email/` and what it is about (`params`: ids); it is rendered when
queued, or, for the order confirmation, by the delivery worker, which keeps
the payment's transaction short. The worker (`webapp/services/messaging/delivery.py`,
`flask deliver-mail`) takes due rows with `SKIP LOCKED`, so several workers
never send one message at the same time.
"""
from __future__ import annotations

import uuid
from email.utils import parseaddr
from typing import Any

from flask import current_app
from sqlalchemy import ScalarSelect, select
from sqlalchemy.orm import Session

from webapp.models import Order, OutboxMessage


def queue(session: Session, *, template: str, recipient: str | ScalarSelect[str], event_id: int | None = None,
          params: dict[str, Any] | None = None, defer: bool = False, locale: str | None = None) -> OutboxMessage:
    """Add a message to the outbox; rendered now unless `defer` (then the worker renders it).

    `recipient` may be a scalar subquery: the INSERT then reads the address itself.
    `locale`: the language it is written in, the one stored with the order or
    entry it is about; None: the language of the request queueing it (a
    password reset asked for in German is answered in German).
    """
    from webapp.services.messaging import language, mail

    mail.check_template(template)
    message = OutboxMessage(event_id=event_id, recipient=recipient, template=template, params=params or {},
                            subject="", message_id=new_message_id(template), locale=locale or language.current())
    if not defer:
        mail.render_into(session, message)
    session.add(message)
    return message


def queue_order_confirmation(session: Session, order: Order) -> OutboxMessage:
    """The buyer's tickets by mail, rendered by the worker: paying stays one INSERT longer, no more."""
    from webapp.models import User

    # The address as a subquery of the INSERT: no extra round trip for the user row.
    email = select(User.email).where(User.id == order.user_id).scalar_subquery()
    return queue(session, template="order_confirmation", recipient=email, event_id=order.event_id,
                 params={"order_id": order.id}, defer=True, locale=order.locale)


def new_message_id(template: str) -> str:
    """A Message-ID made once, when the message is queued, and sent with every attempt."""
    domain = parseaddr(current_app.config["MAIL_FROM"])[1].rpartition("@")[2] or "localhost"
    return f"<{uuid.uuid4().hex}.{template.replace('_', '-')}@{domain}>"


def take_unsent(session: Session, limit: int = 100) -> list[OutboxMessage]:
    """The oldest unsent messages, locked for this sender only (the `flask outbox` printer)."""
    return list(session.scalars(
        select(OutboxMessage).where(OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None))
        .order_by(OutboxMessage.id).limit(limit).with_for_update(skip_locked=True)
    ).all())
