"""The waiting list from the admin side: its entries come from `waitlist`; removals are audited here."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from webapp.models import WaitlistEntry
from webapp.services import audit
from webapp.services.waiting import waitlist


def recently_ended(session: Session, event_id: int, limit: int = 20) -> list[WaitlistEntry]:
    return list(session.scalars(
        select(WaitlistEntry).where(WaitlistEntry.event_id == event_id, WaitlistEntry.status.not_in(waitlist.LIVE))
        .options(joinedload(WaitlistEntry.user), joinedload(WaitlistEntry.tier))
        .order_by(WaitlistEntry.updated_at.desc(), WaitlistEntry.id.desc()).limit(limit)
    ).all())


def remove_entry(session: Session, *, actor_id: int, event_id: int, entry_id: int) -> WaitlistEntry:
    """Take someone out of the waiting list; an offer they hold is withdrawn and passes to the next person."""
    before = session.scalar(select(WaitlistEntry.status).where(WaitlistEntry.id == entry_id))
    entry = waitlist.remove_entry(session, event_id=event_id, entry_id=entry_id)
    audit.record(session, actor_id=actor_id, action="waitlist.remove", entity="waitlist_entry", entity_id=entry.id,
                 event_id=event_id, before={"status": before.value if before else None},
                 after={"status": entry.status.value, "user": entry.user.email, "quantity": entry.quantity})
    return entry
