"""The door offline: the signed list of an event's codes a phone decides by, and syncing what it let in.

Before doors, the door page downloads `code_list`: the SHA-256 of every
valid ticket's code (the codes themselves never leave the server, so a lost
phone admits nobody), split into "not in yet" and "in", signed with
HMAC-SHA256 under a key derived from SECRET_KEY (over the event, the time
issued and the lists' digest); a sync names the list it decided by, and one
that is not ours, or was changed on the device, is refused. Offline, the page
decides from the list and queues each check-in with the device's clock.

`sync` replays a device's queue, each scan under its ticket's row lock (the
same row the online check-in updates). A ticket not in yet is checked in and
remembers the device and its time. A ticket already let in keeps the first
admission by device time: a later one is flagged (`door_duplicates`); an
earlier one takes the ticket's first place and the other is flagged. The
same scan sent twice (a sync whose answer was lost) is recognised and not
flagged. Each answer lists every flag that involves the device, so both
gates learn of a double entry at their next sync. The caller commits.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from webapp.models import DoorDuplicate, Ticket, TicketStatus
from webapp.services import audit
from webapp.services.admin import checkin
from webapp.services.errors import InvalidRequest
from webapp.services.selling import transfers

MAX_SCANS = 500


def code_hash(code: str) -> str:
    """The first 128 bits of the code's SHA-256: half the list's size, and still no code can be found from it."""
    return hashlib.sha256(code.encode()).hexdigest()[:32]


def _key(secret: str) -> bytes:
    return hashlib.sha256(b"door-code-list:" + secret.encode()).digest()


def _sign(secret: str, event_id: int, issued_at: str, digest: str) -> str:
    return hmac.new(_key(secret), f"{event_id}|{issued_at}|{digest}".encode(), hashlib.sha256).hexdigest()


def list_digest(valid: list[str], inside: list[str]) -> str:
    """What the signature covers: the two lists as compact JSON (the page computes the same with JSON.stringify)."""
    return hashlib.sha256(json.dumps([valid, inside], separators=(",", ":")).encode()).hexdigest()


_CODES = text("""
SELECT code, checked_in_at IS NOT NULL AS inside FROM tickets
WHERE event_id = :e AND status = 'valid' ORDER BY id
""")


def code_list(session: Session, *, event_id: int, secret: str) -> dict[str, Any]:
    """The event's valid codes, hashed, as the door decides by them offline; signed."""
    rows = session.execute(_CODES, {"e": event_id}).all()
    valid = [code_hash(r.code) for r in rows if not r.inside]
    inside = [code_hash(r.code) for r in rows if r.inside]
    issued_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    digest = list_digest(valid, inside)
    return {"event_id": event_id, "issued_at": issued_at, "valid": valid, "in": inside, "digest": digest,
            "signature": _sign(secret, event_id, issued_at, digest)}


def check_list(secret: str, *, event_id: int, issued_at: Any, digest: Any, signature: Any) -> None:
    """The list a device decided by must be one this server issued for this event."""
    if not all(isinstance(v, str) and len(v) <= 100 for v in (issued_at, digest, signature)) or not \
            hmac.compare_digest(_sign(secret, event_id, issued_at, digest), signature):
        raise InvalidRequest("These scans were decided by a code list this server did not issue for this event: "
                             "reload the door page online.")


@dataclass(frozen=True)
class Scan:
    id: str  # the device's own id for the scan, echoed back
    code: str
    at: datetime  # the device's clock when it let the ticket in


def parse_scans(raw: Any) -> list[Scan]:
    """A device's queue as sent; InvalidRequest names what is wrong, and nothing is applied."""
    if not isinstance(raw, list) or len(raw) > MAX_SCANS:
        raise InvalidRequest(f"Send the scans as a list of at most {MAX_SCANS}.")
    scans = []
    for item in raw:
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("id", "code", "at")):
            raise InvalidRequest("Each scan needs an id, a code and the time it was let in.")
        try:
            at = datetime.fromisoformat(item["at"].replace("Z", "+00:00"))
        except ValueError:
            raise InvalidRequest("A scan's time is not an ISO 8601 time.") from None
        if at.tzinfo is None:
            raise InvalidRequest("A scan's time needs its zone (Z for UTC).")
        scans.append(Scan(item["id"][:64], "".join(item["code"].split())[:64], at))
    return scans


def _flag(session: Session, ticket: Ticket, device: str, at: datetime, first_device: str,
          first_at: datetime) -> None:
    session.execute(insert(DoorDuplicate).values(
        event_id=ticket.event_id, ticket_id=ticket.id, device=device, device_at=at, first_device=first_device,
        first_device_at=first_at).on_conflict_do_nothing())


def _one(session: Session, *, event_id: int, device: str, scan: Scan, staff_id: int) -> dict[str, Any]:
    ticket = session.scalars(select(Ticket).where(Ticket.code == scan.code, Ticket.event_id == event_id)
                             .with_for_update().execution_options(populate_existing=True)).first()
    if ticket is None:
        outcome = checkin.TRANSFERRED if transfers.transferred_code(session, scan.code) else checkin.UNKNOWN
        return {"id": scan.id, "outcome": outcome}
    if ticket.status != TicketStatus.VALID:
        return {"id": scan.id, "outcome": checkin.CANCELLED}
    if ticket.checked_in_at is None:
        ticket.checked_in_at = scan.at if scan.at < datetime.now(timezone.utc) else datetime.now(timezone.utc)
        ticket.checked_in_by = staff_id
        ticket.door_device, ticket.door_device_at = device, scan.at
        session.flush()
        audit.record(session, actor_id=staff_id, action="ticket.check_in", entity="ticket", entity_id=ticket.id,
                     event_id=event_id, after={"checked_in_at": ticket.checked_in_at, "device": device,
                                               "device_at": scan.at})
        return {"id": scan.id, "outcome": checkin.VALID}
    # Let in before: online (its server time stands for the device's) or at another offline gate.
    first_device = ticket.door_device or "online"
    first_at = ticket.door_device_at or ticket.checked_in_at
    if first_device == device and first_at == scan.at:
        return {"id": scan.id, "outcome": checkin.VALID}  # the same scan, sent again
    if scan.at < first_at:
        # This gate was first by the devices' clocks: it takes the ticket's first place, the other is flagged.
        _flag(session, ticket, first_device, first_at, device, scan.at)
        ticket.door_device, ticket.door_device_at = device, scan.at
        session.flush()
        return {"id": scan.id, "outcome": checkin.VALID}
    _flag(session, ticket, device, scan.at, first_device, first_at)
    return {"id": scan.id, "outcome": "duplicate", "first_device": first_device,
            "first_at": first_at.isoformat()}


def sync(session: Session, *, event_id: int, device: str, scans: list[Scan], staff_id: int) -> dict[str, Any]:
    """Apply a device's queued check-ins (oldest first) and tell it every double entry it is part of."""
    device = (device or "").strip()[:64]
    if not device:
        raise InvalidRequest("Name the device (its id) that made these scans.")
    results = [_one(session, event_id=event_id, device=device, scan=scan, staff_id=staff_id)
               for scan in sorted(scans, key=lambda s: s.at)]
    return {"results": results, "flags": flags_of(session, event_id=event_id, device=device),
            "synced_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def flags_of(session: Session, *, event_id: int, device: str | None = None) -> list[dict[str, Any]]:
    """The event's double entries (those involving `device`, if given), oldest first."""
    query = (select(DoorDuplicate, Ticket.code).join(Ticket, Ticket.id == DoorDuplicate.ticket_id)
             .where(DoorDuplicate.event_id == event_id).order_by(DoorDuplicate.id))
    if device is not None:
        query = query.where(or_(DoorDuplicate.device == device, DoorDuplicate.first_device == device))
    return [{"ticket_id": d.ticket_id, "code_hash": code_hash(code), "code_end": code[-6:], "device": d.device,
             "at": d.device_at.isoformat(), "first_device": d.first_device,
             "first_at": d.first_device_at.isoformat()} for d, code in session.execute(query).all()]
