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
import http.client
import ipaddress
import logging
import secrets
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from webapp.models import Event, WebhookDelivery, WebhookEndpoint
from webapp.services import audit, organiser_scope
from webapp.services.errors import InvalidRequest, NotFound

log = logging.getLogger(__name__)

EVENT_TYPES = ("order.confirmed", "order.cancelled", "order.refunded", "waitlist.offered", "ticket.checked_in",
               "ticket.attendee_changed", "event.cancelled", "refund.succeeded", "refund.failed")
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


# IPv6 forms that carry an IPv4 address in their low 32 bits and reach it:
# "IPv4-compatible" ::a.b.c.d (deprecated, RFC 4291) and the NAT64 prefix.
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
    if ip in _IPV4_COMPATIBLE or ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [v4 for v4 in found if v4 is not None]


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """An address on the public internet, by the whole of `ipaddress`' classification.

    `is_global` alone lets multicast through (224.0.0.1 is "global"), and
    an IPv6 address can carry an IPv4 one that the connection really
    reaches (::ffff:127.0.0.1, ::127.0.0.1, 2002:7f00:1::, Teredo), so
    both the address and any IPv4 inside it must pass.
    """
    if ip.is_multicast or ip.is_private or ip.is_reserved or ip.is_loopback or ip.is_link_local \
            or ip.is_unspecified or not ip.is_global:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        return not ip.is_site_local and all(is_public(v4) for v4 in _embedded_ipv4(ip))
    return True


def resolve(host: str, port: int) -> list[str]:
    """The addresses a name has now (tests stand in for DNS here)."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)]


@dataclass(frozen=True)
class _Destination:
    scheme: str
    host: str
    port: int
    target: str  # path and query
    addresses: tuple[str, ...]  # what the host resolved to, checked: connections go here and nowhere else


def _destination(url: str) -> _Destination:
    """Where a URL sends a delivery, resolved now; an address that is not public is refused (unless allow-listed)."""
    parts = urlsplit(url)
    allowed = _allowed_hosts()
    host = parts.hostname or ""
    listed = host in allowed or parts.netloc in allowed
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # past 65535, or not a number
        port = 0
    if len(url) > 500 or not host or not port or parts.username or parts.password:
        raise InvalidRequest("Give a full https:// address (no user or password in it), up to 500 characters.")
    if parts.scheme != "https" and not (listed and parts.scheme == "http"):
        raise InvalidRequest("Webhook addresses must use https://.")
    try:
        addresses = tuple(dict.fromkeys(address.split("%")[0] for address in resolve(host, port)))
    except (OSError, UnicodeError, ValueError):
        raise InvalidRequest(f"The host {host} could not be found.") from None
    if not addresses:
        raise InvalidRequest(f"The host {host} could not be found.")
    for address in () if listed else addresses:
        if not is_public(ipaddress.ip_address(address)):
            where = host if address == host else f"{host} (at {address})"
            raise InvalidRequest(f"The host {where} is not a public address (it is loopback, private, reserved "
                                 "or multicast); webhooks go to public addresses only.")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Destination(parts.scheme, host, port, target, addresses)


def check_url(url: str) -> str:
    """An HTTPS URL whose host resolves to public addresses only (or one the allow-list names)."""
    url = (url or "").strip()
    _destination(url)
    return url


def create_endpoint(session: Session, *, actor_id: int, url: str, event_id: int | None,
                    event_types: list[str], organiser_id: int | None = None) -> WebhookEndpoint:
    """Register an endpoint; its secret is made here. The caller commits."""
    kinds = sorted(set(event_types))
    unknown = [k for k in kinds if k not in EVENT_TYPES]
    if not kinds or unknown:
        raise InvalidRequest("Pick event types from: " + ", ".join(EVENT_TYPES) + ".")
    event = session.get(Event, event_id) if event_id is not None else None
    if event_id is not None and event is None:
        raise NotFound("No such event.")
    if organiser_id is None:
        # The event's organiser, or the one the session acts for (the admin guards scope it).
        organiser_id = event.organiser_id if event else organiser_scope.organiser_for_new_rows(session)
    endpoint = WebhookEndpoint(url=check_url(url), organiser_id=organiser_id, event_id=event_id, event_types=kinds,
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


class _PinnedConnection(http.client.HTTPConnection):
    """HTTP(S) to addresses already checked: the name is not looked up again, so DNS that answers
    otherwise a moment later (rebinding) cannot steer the connection. TLS still checks the name."""

    def __init__(self, destination: _Destination, timeout: float):
        super().__init__(destination.host, destination.port, timeout=timeout)
        self.addresses = destination.addresses
        self.tls = ssl.create_default_context() if destination.scheme == "https" else None

    def connect(self) -> None:
        failure: OSError = OSError("no address to connect to")
        for address in self.addresses:
            try:
                sock = socket.create_connection((address, self.port), self.timeout)
                break
            except OSError as refused:
                failure = refused
        else:
            raise failure
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host) if self.tls else sock


def _send(job: _Job) -> tuple[int | None, str, str | None]:
    """POST the body; (status, start of the answer, error). Never raises for the receiver's faults."""
    try:
        destination = _destination(job.url)  # again at send time: a name may point elsewhere now
    except InvalidRequest as refused:
        return None, "", refused.message
    timestamp = int(time.time())
    # No redirects are followed (http.client follows none): one could lead to an address the check refuses.
    connection = _PinnedConnection(destination, current_app.config["WEBHOOK_TIMEOUT_SECONDS"])
    try:
        connection.request("POST", destination.target, body=job.body.encode(), headers={
            "Content-Type": "application/json", "User-Agent": "Ticketbooth-Webhooks/1",
            "Ticketbooth-Event": job.event_type, "Ticketbooth-Delivery": str(job.id),
            "Ticketbooth-Signature": sign(job.secret, timestamp, job.body),
        })
        answer = connection.getresponse()
        text = answer.read(RESPONSE_KEPT).decode("utf-8", "replace")
    except (OSError, ValueError, http.client.HTTPException) as failure:
        return None, "", f"{type(failure).__name__}: {failure}"[:500]
    finally:
        connection.close()
    return answer.status, text, None if 200 <= answer.status < 300 else f"HTTP {answer.status}"


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
