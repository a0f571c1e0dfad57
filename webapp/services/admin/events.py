"""Admin changes to events, tiers and seat layouts; every one is audited.

Functions flush and write their audit entry; the request commits. A change that
would break sold inventory is refused with a message that says why, and the
waiting list gets first call on any unit an admin adds or frees (invariant 4).

Lock order matches the booking engine: the event (or tier) row first, then
holds and orders, then unit rows in id order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from webapp.models import Event, EventStatus, Hold, HoldStatus, Order, OrderStatus, Tier, Unit, UnitStatus
from webapp.services import audit
from webapp.services.admin import orders as admin_orders
from webapp.services.errors import BookingError, InvalidRequest, NotFound
from webapp.services.money import checkout, tax
from webapp.services.money.gateway import PaymentGateway
from webapp.services.selling import events, inventory
from webapp.services.waiting import waitlist

EVENT_FIELDS = (
    "title", "description", "venue", "starts_at", "image_url", "hold_minutes", "per_order_limit",
    "per_buyer_limit", "rehold_cooldown_seconds", "per_address_limit", "per_instrument_limit",
    "offer_hours", "waitlist_enabled", "waitlist_partial_offers", "timezone", "sales_end_at",
    "cancel_until_hours", "cancel_fee_minor", "cancel_fee_percent", "billing_required",
)
TIER_FIELDS = ("name", "price_minor", "colour", "capacity", "hidden", "tax_rate_bp", "tax_inclusive")

# Which status an admin may move an event to from each status. Cancelling is
# its own operation (it cancels orders), and is final.
STATUS_MOVES: dict[EventStatus, set[EventStatus]] = {
    EventStatus.DRAFT: {EventStatus.ON_SALE},
    EventStatus.ON_SALE: {EventStatus.CLOSED},
    EventStatus.CLOSED: {EventStatus.ON_SALE},
    EventStatus.CANCELLED: set(),
}

MAX_SEATS_PER_GENERATION = 60_000
MAX_SECTIONS_PER_GENERATION = 200
# Names the layout editor suggests for a new section, then "Section 1", "Section 2", …
SECTION_NAMES = ("Stalls", "Balcony", "Circle", "Gallery")
# Each new tier gets a colour of its own, so row ranges stand apart on the map.
PALETTE = ("#b45309", "#2563eb", "#059669", "#7c3aed", "#db2777", "#0d9488", "#ca8a04", "#4b5563")
MAX_GA_CAPACITY = 200_000


class ChangeRefused(BookingError):
    """The change would break inventory that is sold, held or promised."""

    status_code = 409


def lock_event(session: Session, event_id: int) -> Event:
    event = session.scalars(select(Event).where(Event.id == event_id).with_for_update()).first()
    if event is None:
        raise NotFound("No such event.")
    return event


def _lock_tier(session: Session, event_id: int, tier_id: int) -> Tier:
    tier = session.scalars(
        select(Tier).where(Tier.id == tier_id, Tier.event_id == event_id).with_for_update()
    ).first()
    if tier is None:
        raise NotFound("No such tier.")
    return tier


def _refuse_if_cancelled(event: Event) -> None:
    if event.status == EventStatus.CANCELLED:
        raise ChangeRefused("This event is cancelled; it can no longer be changed.")


# Events ---------------------------------------------------------------------

def create_event(session: Session, *, actor_id: int, **fields: Any) -> Event:
    """A new event, always as a draft: nothing is sold until an admin opens sales."""
    event = events.create_event(session, status=EventStatus.DRAFT, **fields)
    audit.record(session, actor_id=actor_id, action="event.create", entity="event", entity_id=event.id,
                 event_id=event.id, after=audit.snapshot(event, EVENT_FIELDS))
    return event


def update_event(session: Session, *, actor_id: int, event_id: int, **fields: Any) -> Event:
    """Change an event's details; holds already made keep their length."""
    event = lock_event(session, event_id)
    _refuse_if_cancelled(event)
    before = audit.snapshot(event, EVENT_FIELDS)
    for name, value in fields.items():
        if name not in EVENT_FIELDS:
            raise InvalidRequest(f"Unknown field {name}.")
        setattr(event, name, value)
    session.flush()
    audit.record(session, actor_id=actor_id, action="event.update", entity="event", entity_id=event.id,
                 event_id=event.id, before=before, after=audit.snapshot(event, EVENT_FIELDS))
    return event


def duplicate_event(session: Session, *, actor_id: int, event_id: int) -> Event:
    """A draft copy with the same details, tiers and seat layout, and nothing sold."""
    source = session.get(Event, event_id)
    if source is None:
        raise NotFound("No such event.")
    copy = events.create_event(
        session, status=EventStatus.DRAFT, title=f"Copy of {source.title}"[:200], organiser_id=source.organiser_id,
        **{f: getattr(source, f) for f in EVENT_FIELDS if f != "title"},
    )
    for tier in source.tiers:
        # House seats stay blocked in the copy; everything else starts free.
        events.copy_tier(session, copy, tier)
    audit.record(session, actor_id=actor_id, action="event.duplicate", entity="event", entity_id=copy.id,
                 event_id=copy.id, before={"source_event_id": source.id},
                 after=audit.snapshot(copy, EVENT_FIELDS))
    return copy


def delete_event(session: Session, *, actor_id: int, event_id: int) -> None:
    """Delete a draft that never sold or held anything."""
    event = lock_event(session, event_id)
    if event.status != EventStatus.DRAFT:
        raise ChangeRefused("Only draft events can be deleted. Close or cancel an event that has been on sale.")
    traces = session.execute(
        text("SELECT (SELECT count(*) FROM orders WHERE event_id = :e)"
             " + (SELECT count(*) FROM holds WHERE event_id = :e)"),
        {"e": event.id},
    ).scalar_one()
    if traces:
        raise ChangeRefused("This event has reservations or orders on record, so it cannot be deleted.")
    before = audit.snapshot(event, EVENT_FIELDS)
    before["tiers"] = [t.name for t in event.tiers]
    # The entry outlives the event: its event_id would be nulled anyway.
    audit.record(session, actor_id=actor_id, action="event.delete", entity="event", entity_id=event.id,
                 before=before)
    session.execute(text("DELETE FROM events WHERE id = :e"), {"e": event.id})
    session.expunge(event)


def change_status(session: Session, *, actor_id: int, event_id: int, status: EventStatus) -> Event:
    """Open sales, close them, or reopen them."""
    event = lock_event(session, event_id)
    if status not in STATUS_MOVES[event.status]:
        raise ChangeRefused(
            f"An event that is {event.status.value.replace('_', ' ')} cannot be moved to "
            f"{status.value.replace('_', ' ')}."
        )
    if status == EventStatus.ON_SALE and not any(t.capacity > 0 for t in event.tiers):
        raise ChangeRefused("Add at least one tier with seats or places before opening sales.")
    before = {"status": event.status.value}
    event.status = status
    session.flush()
    if status == EventStatus.ON_SALE:
        # Units freed while sales were closed wait for the line first.
        waitlist.offer_released_units(session, event.id)
    audit.record(session, actor_id=actor_id, action="event.status", entity="event", entity_id=event.id,
                 event_id=event.id, before=before, after={"status": status.value})
    return event


@dataclass(frozen=True)
class CancelSummary:
    orders: int
    holds: int
    waiting: int


def cancel_event(session: Session, gateway: PaymentGateway, *, actor_id: int, event_id: int,
                 reason: str) -> CancelSummary:
    """Cancel the event: refund every order, end every hold, clear the line."""
    event = lock_event(session, event_id)
    _refuse_if_cancelled(event)
    before = {"status": event.status.value}
    event.status = EventStatus.CANCELLED
    session.flush()
    # The line goes first, so no unit released below is offered to anyone.
    waiting = session.execute(
        text("UPDATE waitlist_entries SET status = 'removed', updated_at = now()"
             " WHERE event_id = :e AND status = 'waiting'"),
        {"e": event.id},
    ).rowcount  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult; the stubs cannot say so
    holds = session.scalars(
        select(Hold).where(Hold.event_id == event.id, Hold.status == HoldStatus.ACTIVE)
        .order_by(Hold.id).with_for_update()
    ).all()
    for hold in holds:
        # A payment in flight on such a hold is voided when it settles (never captured).
        inventory.release_hold(session, hold, status=HoldStatus.RELEASED, reason="event cancelled")
    session.execute(
        text("UPDATE waitlist_entries SET status = 'removed', updated_at = now()"
             " WHERE event_id = :e AND status IN ('waiting', 'offered')"),
        {"e": event.id},
    )
    order_ids = session.scalars(
        select(Order.id).where(Order.event_id == event.id, Order.status == OrderStatus.CONFIRMED).order_by(Order.id)
    ).all()
    for order_id in order_ids:
        order = checkout.cancel_order(session, gateway, order_id=order_id, user_id=None,
                                      reason=f"Event cancelled: {reason}"[:200], refund=True)
        admin_orders.tell_buyer(session, order)
    summary = CancelSummary(orders=len(order_ids), holds=len(holds), waiting=waiting)
    audit.record(session, actor_id=actor_id, action="event.cancel", entity="event", entity_id=event.id,
                 event_id=event.id, before=before,
                 after={"status": "cancelled", "reason": reason, "orders_refunded": summary.orders,
                        "holds_released": summary.holds, "waiting_removed": summary.waiting})
    return summary


# Tiers ----------------------------------------------------------------------

def suggest_tier_colour(event: Event) -> str:
    """The colour the new-tier form starts with: the next one of the palette."""
    return PALETTE[len(event.tiers) % len(PALETTE)]


def _check_tier_name(event: Event, name: str, tier_id: int | None = None) -> None:
    if any(t.name.lower() == name.lower() and t.id != tier_id for t in event.tiers):
        raise InvalidRequest(f"This event already has a tier called “{name}”.")


def add_tier(session: Session, *, actor_id: int, event_id: int, seated: bool, name: str, price_minor: int,
             colour: str, capacity: int = 0, hidden: bool = False, tax_rate_bp: int | None = None,
             tax_inclusive: bool = True) -> Tier:
    """A general-admission tier with `capacity` places, or a seat tier filled by the layout generator.

    `hidden`: sold only with an access code (services/selling/codes.py); general admission only.
    `tax_inclusive` False: `price_minor` is net, and the tier sells at it plus its tax (services/money/tax.py).
    """
    price_minor = tax.gross_of(price_minor, tax_rate_bp or 0, inclusive=tax_inclusive)
    event = lock_event(session, event_id)
    _refuse_if_cancelled(event)
    _check_tier_name(event, name)
    if any(t.seated != seated for t in event.tiers):
        kind = "numbered seats" if not seated else "general admission"
        raise ChangeRefused(f"This event sells {kind}; one event cannot mix seated and general-admission tiers.")
    if not seated and not 0 <= capacity <= MAX_GA_CAPACITY:
        raise InvalidRequest(f"Capacity must be between 0 and {MAX_GA_CAPACITY:,}.")
    order = max((t.sort_order for t in event.tiers), default=-1) + 1
    if seated:
        tier = events.add_seated_tier(session, event, name=name, price_minor=price_minor, colour=colour,
                                      sort_order=order)
    else:
        # New places are new capacity: inventory offers them to the line first.
        tier = events.add_general_tier(session, event, name=name, price_minor=price_minor, capacity=capacity,
                                       colour=colour, sort_order=order, hidden=hidden)
    if tax_rate_bp is not None or not tax_inclusive:
        tier.tax_rate_bp, tier.tax_inclusive = tax_rate_bp or 0, tax_inclusive
        session.flush()
    session.refresh(event, ["tiers"])
    audit.record(session, actor_id=actor_id, action="tier.create", entity="tier", entity_id=tier.id,
                 event_id=event.id, after={**audit.snapshot(tier, TIER_FIELDS), "seated": seated})
    return tier


def update_tier(session: Session, *, actor_id: int, event_id: int, tier_id: int, name: str, price_minor: int,
                colour: str, capacity: int | None = None, hidden: bool | None = None,
                tax_rate_bp: int | None = None, tax_inclusive: bool | None = None) -> Tier:
    """Rename, reprice (future sales only: tickets keep their price), resize, hide or show a tier, set its tax.

    `hidden`, `tax_rate_bp` and `tax_inclusive` None keep them as they are (a
    new rate is for invoices issued from then on). `price_minor` is as the
    organiser enters it: net when the tax is exclusive. Hiding keeps what is
    sold and held; from then on only buyers with an access code for it can
    reserve it.
    """
    event = lock_event(session, event_id)
    _refuse_if_cancelled(event)
    tier = _lock_tier(session, event_id, tier_id)
    _check_tier_name(event, name, tier.id)
    before = audit.snapshot(tier, TIER_FIELDS)
    if hidden is not None:
        tier.hidden = hidden
    if tax_rate_bp is not None:
        tier.tax_rate_bp = tax_rate_bp
    if tax_inclusive is not None:
        tier.tax_inclusive = tax_inclusive
    tier.name, tier.colour = name, colour
    tier.price_minor = tax.gross_of(price_minor, tier.tax_rate_bp, inclusive=tier.tax_inclusive)
    session.flush()
    if capacity is not None and capacity != tier.capacity:
        if tier.seated:
            raise ChangeRefused("A seat tier's capacity is its seats: change it with the layout generator.")
        _resize_general(session, tier, capacity)
    audit.record(session, actor_id=actor_id, action="tier.update", entity="tier", entity_id=tier.id,
                 event_id=event_id, before=before, after=audit.snapshot(tier, TIER_FIELDS))
    return tier


def _resize_general(session: Session, tier: Tier, capacity: int) -> None:
    """Add or remove general-admission places; tier.capacity always equals the unit count."""
    if not 0 <= capacity <= MAX_GA_CAPACITY:
        raise InvalidRequest(f"Capacity must be between 0 and {MAX_GA_CAPACITY:,}.")
    if capacity > tier.capacity:
        # Invariant 4: new units go to the people in line before the public.
        inventory.add_places(session, tier, capacity - tier.capacity)
        return

    counts = inventory.tier_counts(session, tier.event_id)[tier.id]
    committed = counts.sold + counts.held + counts.blocked
    if capacity < committed:
        parts = [f"{counts.sold} sold", f"{counts.held} held in baskets right now"]
        if counts.blocked:
            parts.append(f"{counts.blocked} blocked")
        raise ChangeRefused(
            f"{tier.name} cannot shrink to {capacity}: {', '.join(parts)}. "
            f"The smallest capacity possible now is {committed}."
        )
    remove = tier.capacity - capacity
    removable = inventory.remove_places(session, tier, remove)
    if removable < remove:
        raise ChangeRefused(
            f"Only {removable} of the {remove} places can be removed right now: the others are being "
            f"reserved at this moment or belong to cancelled orders. Try a smaller reduction, or again shortly."
        )


def delete_tier(session: Session, *, actor_id: int, event_id: int, tier_id: int) -> None:
    """Delete a tier that has never sold a ticket and has nothing held or promised."""
    event = lock_event(session, event_id)
    _refuse_if_cancelled(event)
    tier = _lock_tier(session, event_id, tier_id)
    usage = session.execute(
        text(
            "SELECT (SELECT count(*) FROM tickets WHERE tier_id = :t AND status = 'valid') AS sold,"
            " (SELECT count(*) FROM tickets WHERE tier_id = :t) AS ever,"
            " (SELECT count(*) FROM units WHERE tier_id = :t AND status = 'held') AS held,"
            " (SELECT count(*) FROM waitlist_entries WHERE tier_id = :t AND status IN ('waiting', 'offered')) AS line"
        ),
        {"t": tier.id},
    ).one()
    if usage.sold:
        raise ChangeRefused(f"{tier.name} has {usage.sold} sold tickets, so it cannot be deleted. "
                            f"Reduce its capacity to what is sold instead.")
    if usage.ever:
        raise ChangeRefused(f"{tier.name} has cancelled tickets on record, so it cannot be deleted. "
                            f"Reduce its capacity to 0 instead.")
    if usage.held:
        raise ChangeRefused(f"{usage.held} of {tier.name}'s units are held in baskets right now; "
                            f"try again when they are bought or released.")
    if usage.line:
        raise ChangeRefused(f"{usage.line} people are on the waiting list for {tier.name}; remove them first.")
    audit.record(session, actor_id=actor_id, action="tier.delete", entity="tier", entity_id=tier.id,
                 event_id=event_id, before={**audit.snapshot(tier, TIER_FIELDS), "seated": tier.seated})
    inventory.remove_tier_units(session, tier)
    session.execute(text("DELETE FROM tiers WHERE id = :t"), {"t": tier.id})
    session.expunge(tier)
    session.refresh(event, ["tiers"])


# Seat layouts ---------------------------------------------------------------

@dataclass(frozen=True)
class RowRange:
    tier_id: int
    first: int  # 1-based, inclusive
    last: int


@dataclass(frozen=True)
class LayoutRequest:
    """What the generator form asks for: identical sections side by side."""

    section_names: tuple[str, ...]
    rows: int
    seats_per_row: int
    first_row_label: str
    ranges: tuple[RowRange, ...]
    best_order: str = "front_centre"
    # Where on the venue plan (the overview a big venue opens on): the first
    # section's top-left seat position, and how many sections side by side
    # before the next line. None: below the seats already there, all in one line.
    origin_x: int | None = None
    origin_y: int | None = None
    per_line: int | None = None


def plan_layout(session: Session, event: Event, request: LayoutRequest) -> list[events.SectionSpec]:
    """Check a generator request and turn it into section specs, placed below the seats already there."""
    if not request.section_names:
        raise InvalidRequest("Name at least one section.")
    if request.best_order not in events.BEST_ORDERS:
        raise InvalidRequest("Choose an order for the best seats.")
    if len(request.section_names) > MAX_SECTIONS_PER_GENERATION:
        raise InvalidRequest(f"Generate at most {MAX_SECTIONS_PER_GENERATION} sections at a time.")
    if len(set(n.lower() for n in request.section_names)) != len(request.section_names):
        raise InvalidRequest("Section names must be different from each other.")
    if any(len(n) > 60 for n in request.section_names):
        raise InvalidRequest("Section names can be at most 60 characters.")
    existing = set(session.scalars(
        select(Unit.section).where(Unit.event_id == event.id, Unit.section.is_not(None)).distinct()
    ).all())
    clash = [n for n in request.section_names if n in existing]
    if clash:
        raise InvalidRequest(f"This event already has a section called “{clash[0]}”.")
    if not 1 <= request.rows <= 60 or not 1 <= request.seats_per_row <= 80:
        raise InvalidRequest("Use 1 to 60 rows and 1 to 80 seats per row.")
    total = len(request.section_names) * request.rows * request.seats_per_row
    if total > MAX_SEATS_PER_GENERATION:
        raise InvalidRequest(f"That is {total:,} seats; generate at most {MAX_SEATS_PER_GENERATION:,} at a time.")
    labels = events.row_labels(request.rows, request.first_row_label)
    if request.first_row_label not in events.row_labels(24):
        raise InvalidRequest("The first row label must be one letter from A to Z (I and O are skipped).")

    tiers = {t.id: t for t in event.tiers if t.seated}
    if not tiers:
        raise InvalidRequest("Add a seat tier first: the generator assigns rows to tiers.")
    if not request.ranges:
        raise InvalidRequest("Choose a tier for the rows.")
    covered: set[int] = set()
    tier_by_rows = []
    for r in request.ranges:
        if r.tier_id not in tiers:
            raise InvalidRequest("Choose one of this event's seat tiers.")
        if not 1 <= r.first <= r.last <= request.rows:
            raise InvalidRequest(f"Row ranges must run from 1 to {request.rows}, first before last.")
        tier_by_rows.append((r.first - 1, r.last - 1, tiers[r.tier_id]))
        covered.update(range(r.first, r.last + 1))
    missing = [labels[i - 1] for i in range(1, request.rows + 1) if i not in covered]
    if missing:
        shown = ", ".join(missing[:6]) + (" …" if len(missing) > 6 else "")
        raise InvalidRequest(f"Every row needs a tier; these have none: {shown}.")

    per_line = request.per_line or len(request.section_names)
    if not 1 <= per_line <= MAX_SECTIONS_PER_GENERATION:
        raise InvalidRequest(f"Sections per line on the plan: 1 to {MAX_SECTIONS_PER_GENERATION}.")
    if any(v is not None and not 0 <= v <= MAX_PLAN_POSITION for v in (request.origin_x, request.origin_y)):
        raise InvalidRequest(f"Place sections at columns and rows from 0 to {MAX_PLAN_POSITION:,}.")
    boxes = _section_boxes(session, event.id)
    bottom = max((b[3] for b in boxes.values()), default=None)
    origin_x = request.origin_x or 0
    origin_y = request.origin_y if request.origin_y is not None else (0 if bottom is None else bottom + 2)
    specs = [
        events.SectionSpec(name=name, rows=request.rows, seats_per_row=request.seats_per_row,
                           origin_x=origin_x + (i % per_line) * (request.seats_per_row + 2),
                           origin_y=origin_y + (i // per_line) * (request.rows + 2),
                           tier_by_rows=tuple(tier_by_rows), first_row_label=request.first_row_label,
                           best_order=request.best_order)
        for i, name in enumerate(request.section_names)
    ]
    for spec in specs:
        box = (spec.origin_x, spec.origin_y, spec.origin_x + spec.seats_per_row - 1, spec.origin_y + spec.rows - 1)
        overlapped = next((name for name, b in boxes.items() if _overlap(box, b)), None)
        if overlapped is not None:
            raise InvalidRequest(f"“{spec.name}” would overlap “{overlapped}” on the plan; place it elsewhere.")
    return specs


MAX_PLAN_POSITION = 10_000


def _section_boxes(session: Session, event_id: int) -> dict[str, tuple[int, int, int, int]]:
    """Each existing section's box on the plan: (left, top, right, bottom) seat positions."""
    rows = session.execute(text(
        "SELECT section, min(pos_x), min(pos_y), max(pos_x), max(pos_y) FROM units"
        " WHERE event_id = :e AND seat_number IS NOT NULL GROUP BY section"), {"e": event_id}).all()
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def suggest_section_name(taken: set[str]) -> str:
    """A section name the event does not use yet, for the generator form."""
    return next(n for n in (*SECTION_NAMES, *(f"Section {i}" for i in range(1, 10_000))) if n not in taken)


def preview_layout(session: Session, event: Event, request: LayoutRequest) -> list[tuple[Tier, dict]]:
    """Every seat `generate_layout` would create for this request, nothing written (raises if invalid)."""
    return [seat for spec in plan_layout(session, event, request) for seat in events.plan_section(spec)]


def generate_layout(session: Session, *, actor_id: int, event_id: int, request: LayoutRequest) -> int:
    """Create the seats of the requested sections; returns how many."""
    event = lock_event(session, event_id)
    _refuse_if_cancelled(event)
    specs = plan_layout(session, event, request)
    # New seats are new capacity: inventory gives the line first call on them.
    created = events.generate_sections(session, event, specs)
    audit.record(session, actor_id=actor_id, action="layout.generate", entity="event", entity_id=event.id,
                 event_id=event.id,
                 after={"sections": list(request.section_names), "rows": request.rows,
                        "seats_per_row": request.seats_per_row, "first_row_label": request.first_row_label,
                        "best_order": request.best_order,
                        "ranges": [[r.first, r.last, r.tier_id] for r in request.ranges], "seats": created,
                        "placed": [[spec.origin_x, spec.origin_y] for spec in specs[:1]], "per_line": request.per_line})
    return created


def remove_section(session: Session, *, actor_id: int, event_id: int, section: str) -> int:
    """Delete a section whose seats were never sold, held or ticketed."""
    event = lock_event(session, event_id)
    _refuse_if_cancelled(event)
    rows = session.execute(
        text("SELECT id, tier_id, status FROM units WHERE event_id = :e AND section = :s ORDER BY id FOR UPDATE"),
        {"e": event.id, "s": section},
    ).all()
    if not rows:
        raise NotFound("No such section.")
    busy = [r for r in rows if r.status not in (UnitStatus.AVAILABLE.value, UnitStatus.BLOCKED.value)]
    if busy:
        raise ChangeRefused(f"{len(busy)} seats in {section} are sold or held, so the section cannot be removed.")
    ids = [r.id for r in rows]
    if session.execute(text("SELECT EXISTS (SELECT 1 FROM tickets WHERE unit_id = ANY(:ids))"), {"ids": ids}).scalar():
        raise ChangeRefused(f"Seats in {section} have cancelled tickets on record, so the section must stay. "
                            f"Block its seats instead.")
    inventory.remove_units(session, event, ids)
    audit.record(session, actor_id=actor_id, action="layout.remove_section", entity="event", entity_id=event.id,
                 event_id=event.id, before={"section": section, "seats": len(ids)})
    return len(ids)


def set_seat_blocked(session: Session, *, actor_id: int, event_id: int, unit_id: int, blocked: bool) -> Unit:
    """Block an available seat (house seat, broken seat) or give a blocked one back."""
    event = lock_event(session, event_id)
    _refuse_if_cancelled(event)
    unit = session.scalars(
        select(Unit).where(Unit.id == unit_id, Unit.event_id == event_id).with_for_update()
    ).first()
    if unit is None or unit.seat_number is None:
        raise NotFound("No such seat.")
    want_from = UnitStatus.AVAILABLE if blocked else UnitStatus.BLOCKED
    if unit.status != want_from:
        verb = "blocked" if blocked else "unblocked"
        rule = "Only an available seat can be blocked" if blocked else "Only a blocked seat can be unblocked"
        raise ChangeRefused(f"{unit.label} is {unit.status.value}, so it cannot be {verb}. {rule}.")
    if blocked:
        inventory.block_seat(session, unit)
    else:
        # A seat given back is a freed unit like any other: line first.
        inventory.unblock_seat(session, unit)
    audit.record(session, actor_id=actor_id, action="seat.block" if blocked else "seat.unblock", entity="seat",
                 entity_id=unit.id, event_id=event_id, before={"status": want_from.value},
                 after={"status": unit.status.value, "seat": unit.label})
    return unit
