"""Webhooks: endpoints admins register, and the worker that delivers the outbox of events to them.

Deliveries are written by database triggers in the transaction of the change
they report (migration 0009), so an event exists exactly when its cause
committed. `deliver_once` works like the mail worker (`delivery.py`): take
due rows with `FOR UPDATE SKIP LOCKED` and lease them, commit, POST each
with no transaction open, then record each outcome in a short transaction
of its own. Delivery is at least once: a worker that dies mid-send leaves
the row to another after the lease, and every attempt carries the same
`Ticketbooth-Delivery` id, so a receiver can tell a repeat.

Each request is signed: `Ticketbooth-Signature: t=<unix time>,v1=<hex>`,
the HMAC-SHA256 of `<t>.<body>` under the endpoint's secret.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from webapp.models import Event, WebhookDelivery, WebhookEndpoint
from webapp.services import audit
from webapp.services.errors import InvalidRequest, NotFound

log = logging.getLogger(__name__)

EVENT_TYPES = ("order.confirmed", "order.cancelled", "order.refunded", "waitlist.offered", "ticket.checked_in",
               "event.cancelled")
MAX_BACKOFF_SECONDS = 3600
# What is kept of a receiver's answer for the delivery log.
RESPONSE_KEPT = 2000


def sign(secret: str, timestamp: int, body: str) -> str:
    """The signature header's value for this body at this time."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: str, *, tolerance: int = 300, now: float | None = None) -> bool:
    """What a receiver does: recompute the HMAC and refuse old timestamps (replays)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), f"t={timestamp},v1={parts.get('v1', '')}")


def _allowed_hosts() -> tuple[str, ...]:
    return tuple(current_app.config.get("WEBHOOK_ALLOWED_HOSTS") or ())


def check_url(url: str) -> str:
    """An HTTPS URL whose host resolves to public addresses only (or one the allow-list names)."""
    url = (url or "").strip()
    parts = urlsplit(url)
    allowed = _allowed_hosts()
    host = parts.hostname or ""
    listed = host in allowed or parts.netloc in allowed
    if len(url) > 500 or not host or parts.username or parts.password:
        raise InvalidRequest("Give a full https:// address (no user or password in it), up to 500 characters.")
    if parts.scheme != "https" and not (listed and parts.scheme == "http"):
        raise InvalidRequest("Webhook addresses must use https://.")
    if listed:
        return url
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)}
    except (socket.gaierror, UnicodeError, ValueError):
        raise InvalidRequest(f"The host {host} could not be found.") from None
    for address in addresses:
        if not ipaddress.ip_address(address.split("%")[0]).is_global:
            raise InvalidRequest(f"The host {host} is a loopback, private or reserved address; "
                                 "webhooks go to public addresses only.")
    return url


def create_endpoint(session: Session, *, actor_id: int, url: str, event_id: int | None,
                    event_types: list[str]) -> WebhookEndpoint:
    """Register an endpoint; its secret is made here. The caller commits."""
    kinds = sorted(set(event_types))
    unknown = [k for k in kinds if k not in EVENT_TYPES]
    if not kinds or unknown:
        raise InvalidRequest("Pick event types from: " + ", ".join(EVENT_TYPES) + ".")
    if event_id is not None and session.get(Event, event_id) is None:
        raise NotFound("No such event.")
    endpoint = WebhookEndpoint(url=check_url(url), event_id=event_id, event_types=kinds,
                               secret="whsec_" + secrets.token_urlsafe(32), created_by=actor_id)
    session.add(endpoint)
    session.flush()
    audit.record(session, actor_id=actor_id, action="webhook.create", entity="webhook", entity_id=endpoint.id,
                 event_id=event_id, after={"url": endpoint.url, "event_types": kinds})
    return endpoint


def endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)).all())


def get_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound("No such webhook.")
    return endpoint


def delete_endpoint(session: Session, *, actor_id: int, endpoint_id: int) -> None:
    """Remove an endpoint and its delivery log. The caller commits."""
    endpoint = get_endpoint(session, endpoint_id)
    audit.record(session, actor_id=actor_id, action="webhook.delete", entity="webhook", entity_id=endpoint.id,
                 event_id=endpoint.event_id, before={"url": endpoint.url})
    session.delete(endpoint)
    session.flush()


def deliveries(session: Session, endpoint_id: int, limit: int = 100) -> list[WebhookDelivery]:
    """The endpoint's delivery log, newest first."""
    return list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
                                .order_by(WebhookDelivery.id.desc()).limit(limit)).all())


def redeliver(session: Session, *, actor_id: int, delivery_id: int) -> WebhookDelivery:
    """Send a delivery again soon, whatever happened to it before. The caller commits."""
    delivery = session.scalars(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                               .with_for_update()).first()
    if delivery is None:
        raise NotFound("No such delivery.")
    session.execute(text("UPDATE webhook_deliveries SET failed_at = NULL, delivered_at = NULL, attempts = 0,"
                         " next_attempt_at = now() WHERE id = :i"), {"i": delivery.id})
    audit.record(session, actor_id=actor_id, action="webhook.redeliver", entity="webhook_delivery",
                 entity_id=delivery.id, event_id=delivery.event_id)
    session.refresh(delivery)
    return delivery


@dataclass
class PassResult:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    ids_delivered: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Job:
    id: int
    url: str
    secret: str
    event_type: str
    body: str


def claim(session: Session, limit: int) -> list[_Job]:
    """Due deliveries for this worker alone: locked past other workers, then leased. Commits."""
    rows = session.execute(
        text("UPDATE webhook_deliveries d SET attempts = attempts + 1,"
             " next_attempt_at = now() + make_interval(secs => :lease)"
             " FROM webhook_endpoints w WHERE w.id = d.endpoint_id AND d.id IN ("
             "   SELECT id FROM webhook_deliveries WHERE delivered_at IS NULL AND failed_at IS NULL"
             "   AND next_attempt_at <= now() ORDER BY next_attempt_at, id LIMIT :n FOR UPDATE SKIP LOCKED)"
             " RETURNING d.id, w.url, w.secret, d.event_type, d.body"),
        {"n": limit, "lease": current_app.config["WEBHOOK_LEASE_SECONDS"]},
    ).all()
    session.commit()
    return sorted((_Job(*r) for r in rows), key=lambda j: j.id)


def _send(job: _Job) -> tuple[int | None, str, str | None]:
    """POST the body; (status, start of the answer, error). Never raises for the receiver's faults."""
    try:
        check_url(job.url)  # again at send time: a name may point elsewhere now
    except InvalidRequest as refused:
        return None, "", refused.message
    timestamp = int(time.time())
    request = urllib.request.Request(job.url, data=job.body.encode(), method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "Ticketbooth-Webhooks/1",
        "Ticketbooth-Event": job.event_type, "Ticketbooth-Delivery": str(job.id),
        "Ticketbooth-Signature": sign(job.secret, timestamp, job.body),
    })
    try:
        with _OPENER.open(request, timeout=current_app.config["WEBHOOK_TIMEOUT_SECONDS"]) as answer:
            return answer.status, answer.read(RESPONSE_KEPT).decode("utf-8", "replace"), None
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read(RESPONSE_KEPT).decode("utf-8", "replace"), f"HTTP {refused.code}"
    except (OSError, ValueError) as failure:
        return None, "", f"{type(failure).__name__}: {failure}"[:500]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect could lead to an address the URL check would refuse.
    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _record(session: Session, job: _Job, status: int | None, response: str, error: str | None) -> str:
    config = current_app.config
    if status is not None and 200 <= status < 300:
        session.execute(text("UPDATE webhook_deliveries SET delivered_at = now(), last_status = :s,"
                             " last_response = :r, last_error = NULL WHERE id = :i"),
                        {"i": job.id, "s": status, "r": response})
        outcome = "delivered"
    else:
        attempts = session.execute(text("SELECT attempts FROM webhook_deliveries WHERE id = :i"),
                                   {"i": job.id}).scalar_one()
        params = {"i": job.id, "s": status, "r": response, "e": error or f"HTTP {status}"}
        if attempts >= config["WEBHOOK_MAX_ATTEMPTS"]:
            session.execute(text("UPDATE webhook_deliveries SET failed_at = now(), last_status = :s,"
                                 " last_response = :r, last_error = :e WHERE id = :i"), params)
            outcome = "failed"
        else:
            # 30 s, 1 min, 2 min, ... capped at an hour.
            delay = min(config["WEBHOOK_RETRY_BASE_SECONDS"] * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)
            session.execute(text("UPDATE webhook_deliveries SET last_status = :s, last_response = :r,"
                                 " last_error = :e, next_attempt_at = now() + make_interval(secs => :d)"
                                 " WHERE id = :i"), {**params, "d": delay})
            outcome = "retry"
    session.commit()
    log.log(logging.INFO if outcome == "delivered" else logging.WARNING, f"webhook.{outcome}",
            extra={"delivery_id": job.id, "status": status, "error": error})
    return outcome


def deliver_once(session: Session, *, limit: int = 50) -> PassResult:
    """One pass of the worker: claim, send with no transaction open, record."""
    result = PassResult()
    for job in claim(session, limit):
        outcome = _record(session, job, *_send(job))
        if outcome == "delivered":
            result.delivered += 1
            result.ids_delivered.append(job.id)
        elif outcome == "retry":
            result.retried += 1
        else:
            result.failed += 1
    return result
