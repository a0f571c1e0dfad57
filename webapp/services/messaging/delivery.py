"""Delivering the outbox over SMTP: at least once, retried with backoff, failures kept.

A worker pass is three steps, so no transaction stays open while a mail
server thinks:

1. `claim`: take due messages with `FOR UPDATE SKIP LOCKED` and push their
   `next_attempt_at` one lease ahead, then commit. Another worker skips
   them while they are locked and ignores them while the lease runs; a
   worker that dies mid-send leaves them to be retried when it ends.
2. send each over one SMTP connection, with the Message-ID made at queue time;
3. record each outcome in its own short transaction: sent; or, for a
   temporary refusal (4xx, a dropped connection), tried again after
   `MAIL_RETRY_BASE_SECONDS * 2**(attempts-1)`; or failed for good (5xx,
   a message that cannot be rendered, too many attempts), shown to admins.

A crash between 2 and 3 sends the message again after the lease: at least
once, never lost. The stable Message-ID lets a receiver spot the repeat.
"""
from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from webapp.models import OutboxMessage
from webapp.services.errors import NotFound
from webapp.services.messaging import mail

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 3600


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # "none", "starttls" (required), "auto" (when offered) or "tls"
    username: str | None = None
    password: str | None = None


def parse_smtp_url(url: str) -> SmtpSettings:
    """`smtp://[user:pass@]host[:port]`, `smtp+starttls://…` or `smtps://…`."""
    parts = urlsplit(url)
    schemes = {"smtp": ("none", 25), "smtp+starttls": ("starttls", 587), "smtps": ("tls", 465)}
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"SMTP_URL must look like smtp://host:port, smtp+starttls://… or smtps://…, not {url!r}.")
    security, default_port = schemes[parts.scheme]
    if security == "none" and parse_qs(parts.query).get("starttls") == ["1"]:
        security = "auto"
    return SmtpSettings(host=parts.hostname, port=parts.port or default_port, security=security,
                        username=unquote(parts.username) if parts.username else None,
                        password=unquote(parts.password) if parts.password else None)


def connect(settings: SmtpSettings, timeout: float) -> smtplib.SMTP:
    if settings.security == "tls":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=timeout,
                                              context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=timeout)
        smtp.ehlo()
        if settings.security == "starttls" or (settings.security == "auto" and smtp.has_extn("starttls")):
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
    if settings.username:
        smtp.login(settings.username, settings.password or "")
    return smtp


@dataclass
class PassResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0
    ids_sent: list[int] = field(default_factory=list)


def claim(session: Session, limit: int) -> list[int]:
    """Due messages for this worker alone: locked past other workers, then leased. Commits."""
    ids = session.execute(
        text("SELECT id FROM outbox_messages WHERE sent_at IS NULL AND failed_at IS NULL"
             " AND next_attempt_at <= now() ORDER BY next_attempt_at, id LIMIT :n FOR UPDATE SKIP LOCKED"),
        {"n": limit},
    ).scalars().all()
    if ids:
        session.execute(
            text("UPDATE outbox_messages SET attempts = attempts + 1,"
                 " next_attempt_at = now() + make_interval(secs => :lease) WHERE id = ANY(:ids)"),
            {"ids": list(ids), "lease": current_app.config["MAIL_LEASE_SECONDS"]},
        )
    session.commit()
    return list(ids)


def _permanent(exc: Exception) -> bool:
    """A 5xx answer will not change on a retry; anything else (4xx, network) may."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    code = getattr(exc, "smtp_code", None)
    return isinstance(code, int) and code >= 500


def _record(session: Session, message_id: int, *, sent: bool = False, error: str | None = None,
            permanent: bool = False) -> str:
    config = current_app.config
    if sent:
        session.execute(text("UPDATE outbox_messages SET sent_at = now(), last_error = NULL WHERE id = :i"),
                        {"i": message_id})
        outcome = "sent"
    else:
        attempts = session.execute(text("SELECT attempts FROM outbox_messages WHERE id = :i"),
                                   {"i": message_id}).scalar_one()
        if permanent or attempts >= config["MAIL_MAX_ATTEMPTS"]:
            session.execute(text("UPDATE outbox_messages SET failed_at = now(), last_error = :e WHERE id = :i"),
                            {"i": message_id, "e": error})
            outcome = "failed"
        else:
            delay = min(config["MAIL_RETRY_BASE_SECONDS"] * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)
            session.execute(
                text("UPDATE outbox_messages SET last_error = :e,"
                     " next_attempt_at = now() + make_interval(secs => :d) WHERE id = :i"),
                {"i": message_id, "e": error, "d": delay},
            )
            outcome = "retry"
    session.commit()
    log.log(logging.WARNING if outcome != "sent" else logging.INFO, f"mail.{outcome}",
            extra={"outbox_id": message_id, "error": error})
    return outcome


def release(session: Session, ids: list[int]) -> None:
    """Claimed messages this worker will not send after all (it is stopping): due again at once, their
    claim not counted as an attempt. Commits."""
    session.execute(
        text("UPDATE outbox_messages SET attempts = attempts - 1, next_attempt_at = now()"
             " WHERE id = ANY(:ids) AND sent_at IS NULL AND failed_at IS NULL"),
        {"ids": ids},
    )
    session.commit()


def deliver_once(session: Session, *, limit: int = 50, stop: Callable[[], bool] = lambda: False) -> PassResult:
    """One pass of the worker: claim, send, record. `stop()` true between two messages ends the pass there,
    the rest released for the next worker."""
    settings = parse_smtp_url(current_app.config["SMTP_URL"] or "")
    result = PassResult()
    ids = claim(session, limit)
    smtp: smtplib.SMTP | None = None
    try:
        for position, message_id in enumerate(ids):
            if stop():
                release(session, ids[position:])
                result.released = len(ids) - position
                break
            message = session.get(OutboxMessage, message_id)
            # Just claimed, and nothing deletes outbox rows.
            assert message is not None, f"claimed outbox message {message_id} is gone"
            try:
                mail.render_into(session, message)
                files = mail.attachments(session, message)
                email = mail.build(message, files, mail.sender_of(session, message))
                session.commit()  # keep what was rendered: every attempt sends the same text
            except SQLAlchemyError:
                raise  # the database, not the message: the pass fails and the lease brings it back
            except Exception as exc:  # a message that cannot be made will not be made by retrying
                session.rollback()
                if not isinstance(exc, NotFound):
                    log.exception("mail.render_failed", extra={"outbox_id": message_id})
                _record(session, message_id, error=f"cannot render: {exc}", permanent=True)
                result.failed += 1
                continue
            try:
                if smtp is None:
                    smtp = connect(settings, current_app.config["SMTP_TIMEOUT_SECONDS"])
                smtp.send_message(email)
            except (smtplib.SMTPException, OSError) as exc:
                outcome = _record(session, message_id, error=_describe(exc), permanent=_permanent(exc))
                if outcome == "failed":
                    result.failed += 1
                else:
                    result.retried += 1
                smtp = _reset_or_drop(smtp, exc)
                continue
            _record(session, message_id, sent=True)
            result.sent += 1
            result.ids_sent.append(message_id)
    finally:
        _drop(smtp)
        session.rollback()
    return result


def _reset_or_drop(smtp: smtplib.SMTP | None, exc: Exception) -> smtplib.SMTP | None:
    """After a refused message the connection may serve the next one; after a broken one, reconnect."""
    # smtplib's errors are OSErrors too: only a non-SMTP one is a broken socket.
    broken = isinstance(exc, smtplib.SMTPServerDisconnected) or not isinstance(exc, smtplib.SMTPException)
    if smtp is None or broken:
        _drop(smtp)
        return None
    try:
        smtp.rset()
        return smtp
    except (smtplib.SMTPException, OSError):
        _drop(smtp)
        return None


def _drop(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def _describe(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        detail = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{exc.smtp_code} {detail}"[:1000]
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{r}: {c} {m.decode(errors='replace')}" for r, (c, m) in exc.recipients.items())[:1000]
    return f"{type(exc).__name__}: {exc}"[:1000]


def retry_now(session: Session, message_id: int) -> None:
    """An admin's "try again" on a failed message: due at once, with a fresh count."""
    changed = session.execute(
        text("UPDATE outbox_messages SET failed_at = NULL, attempts = 0, next_attempt_at = now()"
             " WHERE id = :i AND sent_at IS NULL"),
        {"i": message_id},
    ).rowcount  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult; the stubs cannot say so
    if not changed:
        raise NotFound("No such unsent message.")
