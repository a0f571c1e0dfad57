"""Admin services on real PostgreSQL: refused changes, capacity through the line, cancel, duplicate,
check-in race, export."""
from __future__ import annotations

import time
import tracemalloc

import pytest
from sqlalchemy import func, select, text

from tests.support import buy, make_gateway, race, reserve_general, sell_in_bulk
from webapp.extensions import db
from webapp.models import (
    AuditLog,
    Event,
    EventStatus,
    Hold,
    HoldKind,
    HoldStatus,
    Order,
    OrderStatus,
    OutboxMessage,
    Ticket,
    Tier,
    Unit,
    UnitStatus,
    WaitlistEntry,
    WaitlistStatus,
)
from webapp.services.admin import checkin, export
from webapp.services.admin import events as admin_events
from webapp.services.admin import orders as admin_orders
from webapp.services.admin import waitlist as admin_waitlist
from webapp.services.admin.events import ChangeRefused
from webapp.services.invariants import check_event
from webapp.services.selling import inventory
from webapp.services.waiting import waitlist


def consistent(session, event_id):
    session.expire_all()
    assert check_event(session, event_id) == []


def units_of(session, tier_id, status=None):
    query = select(func.count()).where(Unit.tier_id == tier_id)
    if status is not None:
        query = query.where(Unit.status == status)
    return session.scalar(query)


# Capacity ---------------------------------------------------------------------

def test_shrinking_below_sold_and_held_is_refused_with_the_reason(session, factory):
    event = factory.ga_event(capacity=10)
    tier = factory.tier(event)
    admin = factory.user(is_admin=True)
    buy(session, event, factory.user(), quantities={tier.id: 3})
    reserve_general(session, user_id=factory.user().id, event_id=event.id, quantities={tier.id: 2})
    session.commit()

    with pytest.raises(ChangeRefused) as refused:
        admin_events.update_tier(session, actor_id=admin.id, event_id=event.id, tier_id=tier.id, name=tier.name,
                                 price_minor=tier.price_minor, colour=tier.colour, capacity=4)
    session.rollback()
    assert "3 sold" in refused.value.message and "2 held" in refused.value.message
    assert "smallest capacity possible now is 5" in refused.value.message
    assert units_of(session, tier.id) == 10

    admin_events.update_tier(session, actor_id=admin.id, event_id=event.id, tier_id=tier.id, name=tier.name,
                             price_minor=tier.price_minor, colour=tier.colour, capacity=5)
    session.commit()
    session.expire_all()
    assert session.get(Tier, tier.id).capacity == 5
    assert units_of(session, tier.id) == 5 and units_of(session, tier.id, UnitStatus.AVAILABLE) == 0
    entry = session.scalars(select(AuditLog).where(AuditLog.action == "tier.update")).one()
    assert entry.before == {"capacity": 10} and entry.after == {"capacity": 5}
    consistent(session, event.id)


def test_a_seat_tier_capacity_cannot_be_typed_in(session, factory):
    event = factory.seated_event(rows=1, seats_per_row=4)
    tier = factory.tier(event)
    with pytest.raises(ChangeRefused, match="layout generator"):
        admin_events.update_tier(session, actor_id=factory.user(is_admin=True).id, event_id=event.id,
                                 tier_id=tier.id, name=tier.name, price_minor=1, colour=tier.colour, capacity=10)


def test_shrinking_never_takes_a_place_a_buyer_is_locking(app, session, factory):
    """A place locked by a buyer's open transaction is skipped (SKIP LOCKED), so the shrink is refused, not blocked."""
    event = factory.ga_event(capacity=3)
    tier = factory.tier(event)
    admin = factory.user(is_admin=True)
    with db.engine.connect() as buyer:
        buyer.execute(text("SELECT id FROM units WHERE tier_id = :t ORDER BY id LIMIT 1 FOR UPDATE"), {"t": tier.id})
        with pytest.raises(ChangeRefused, match="Only 2 of the 3 places"):
            admin_events.update_tier(session, actor_id=admin.id, event_id=event.id, tier_id=tier.id, name=tier.name,
                                     price_minor=tier.price_minor, colour=tier.colour, capacity=0)
        session.rollback()
        buyer.rollback()
    assert units_of(session, tier.id) == 3
    consistent(session, event.id)


def test_raising_capacity_offers_the_new_places_to_the_waiting_list_first(session, factory):
    event = factory.ga_event(capacity=2, per_order_limit=4)
    tier = factory.tier(event)
    admin = factory.user(is_admin=True)
    buy(session, event, factory.user(), quantities={tier.id: 2})
    first, second = factory.user(), factory.user()
    waitlist.join(session, user_id=first.id, event_id=event.id, tier_id=tier.id, quantity=2)
    waitlist.join(session, user_id=second.id, event_id=event.id, tier_id=tier.id, quantity=2)
    session.commit()

    admin_events.update_tier(session, actor_id=admin.id, event_id=event.id, tier_id=tier.id, name=tier.name,
                             price_minor=tier.price_minor, colour=tier.colour, capacity=7)
    session.commit()
    session.expire_all()

    offers = session.scalars(select(Hold).where(Hold.event_id == event.id, Hold.kind == HoldKind.OFFER)
                             .order_by(Hold.id)).all()
    assert [(h.user_id, h.quantity, h.status) for h in offers] == [(first.id, 2, HoldStatus.ACTIVE),
                                                                   (second.id, 2, HoldStatus.ACTIVE)]
    # Seven places: two sold, four offered in line order, and the last one is left for the public.
    assert units_of(session, tier.id, UnitStatus.HELD) == 4
    assert units_of(session, tier.id, UnitStatus.AVAILABLE) == 1
    assert inventory.tiers_kept_for_waitlist(session, event.id) == set()
    consistent(session, event.id)


def test_unblocking_a_seat_offers_it_to_the_waitlist_first(session, factory):
    event = factory.seated_event(rows=1, seats_per_row=2)
    seats = factory.seat_ids(event)
    admin = factory.user(is_admin=True)
    admin_events.set_seat_blocked(session, actor_id=admin.id, event_id=event.id, unit_id=seats[0], blocked=True)
    session.commit()
    buy(session, event, factory.user(), seats=[seats[1]])
    waiter = factory.user()
    waitlist.join(session, user_id=waiter.id, event_id=event.id, tier_id=None, quantity=1)
    session.commit()

    with pytest.raises(ChangeRefused, match="Only an available seat can be blocked"):
        admin_events.set_seat_blocked(session, actor_id=admin.id, event_id=event.id, unit_id=seats[1], blocked=True)
    session.rollback()
    admin_events.set_seat_blocked(session, actor_id=admin.id, event_id=event.id, unit_id=seats[0], blocked=False)
    session.commit()
    session.expire_all()
    offer = session.scalars(select(Hold).where(Hold.kind == HoldKind.OFFER)).one()
    assert offer.user_id == waiter.id and offer.unit_ids == [seats[0]]
    assert [e.action for e in session.scalars(select(AuditLog).order_by(AuditLog.id))] == ["seat.block", "seat.unblock"]
    consistent(session, event.id)


# Tiers, layouts, events -----------------------------------------------------

def test_deleting_a_tier_with_sold_tickets_is_refused(session, factory):
    event = factory.ga_event(capacity=5, tiers=2)
    sold_tier, empty_tier = session.scalars(select(Tier).where(Tier.event_id == event.id).order_by(Tier.id)).all()
    admin = factory.user(is_admin=True)
    buy(session, event, factory.user(), quantities={sold_tier.id: 1})
    with pytest.raises(ChangeRefused, match="has 1 sold tickets"):
        admin_events.delete_tier(session, actor_id=admin.id, event_id=event.id, tier_id=sold_tier.id)
    session.rollback()
    admin_events.delete_tier(session, actor_id=admin.id, event_id=event.id, tier_id=empty_tier.id)
    session.commit()
    assert session.scalar(select(func.count()).where(Unit.tier_id == empty_tier.id)) == 0
    consistent(session, event.id)


def test_mixing_seated_and_general_tiers_is_refused(session, factory):
    event = factory.ga_event(capacity=5)
    with pytest.raises(ChangeRefused, match="cannot mix"):
        admin_events.add_tier(session, actor_id=factory.user(is_admin=True).id, event_id=event.id, seated=True,
                              name="Boxes", price_minor=100, colour="#000000")


def test_generator_lays_sections_side_by_side_below_existing_seats(session, factory):
    event = factory.seated_event(rows=2, seats_per_row=3, status=EventStatus.DRAFT)
    admin = factory.user(is_admin=True)
    stalls = factory.tier(event)
    balcony = admin_events.add_tier(session, actor_id=admin.id, event_id=event.id, seated=True, name="Balcony",
                                    price_minor=2000, colour="#059669")
    request = admin_events.LayoutRequest(("Left", "Right"), rows=3, seats_per_row=4, first_row_label="M",
                                         ranges=(admin_events.RowRange(stalls.id, 1, 1),
                                                 admin_events.RowRange(balcony.id, 2, 3)))
    assert admin_events.generate_layout(session, actor_id=admin.id, event_id=event.id, request=request) == 24
    session.commit()
    rows = session.execute(text(
        "SELECT section, row_label, tier_id, min(pos_x), min(pos_y), count(*) FROM units"
        " WHERE event_id = :e AND section <> 'Stalls' GROUP BY 1, 2, 3 ORDER BY 1, 2"), {"e": event.id}).all()
    assert [tuple(r) for r in rows] == [
        ("Left", "M", stalls.id, 0, 3, 4), ("Left", "N", balcony.id, 0, 4, 4), ("Left", "P", balcony.id, 0, 5, 4),
        ("Right", "M", stalls.id, 6, 3, 4), ("Right", "N", balcony.id, 6, 4, 4), ("Right", "P", balcony.id, 6, 5, 4),
    ]
    session.expire_all()
    assert session.get(Tier, stalls.id).capacity == 6 + 8 and session.get(Tier, balcony.id).capacity == 16
    consistent(session, event.id)


def test_section_with_a_sale_cannot_be_removed_but_an_unsold_one_can(session, factory):
    event = factory.seated_event(rows=1, seats_per_row=3)
    admin = factory.user(is_admin=True)
    tier = factory.tier(event)
    admin_events.generate_layout(session, actor_id=admin.id, event_id=event.id, request=admin_events.LayoutRequest(
        ("Gallery",), 1, 2, "A", (admin_events.RowRange(tier.id, 1, 1),)))
    session.commit()
    buy(session, event, factory.user(), seats=factory.seat_ids(event)[:1])
    with pytest.raises(ChangeRefused, match="sold or held"):
        admin_events.remove_section(session, actor_id=admin.id, event_id=event.id, section="Stalls")
    session.rollback()
    assert admin_events.remove_section(session, actor_id=admin.id, event_id=event.id, section="Gallery") == 2
    session.commit()
    consistent(session, event.id)


def test_status_moves_and_deleting_only_unsold_drafts(session, factory):
    admin = factory.user(is_admin=True)
    empty = factory.event(status=EventStatus.DRAFT)
    session.commit()
    with pytest.raises(ChangeRefused, match="Add at least one tier"):
        admin_events.change_status(session, actor_id=admin.id, event_id=empty.id, status=EventStatus.ON_SALE)
    session.rollback()
    event = factory.ga_event(capacity=3, status=EventStatus.DRAFT)
    admin_events.change_status(session, actor_id=admin.id, event_id=event.id, status=EventStatus.ON_SALE)
    session.commit()
    with pytest.raises(ChangeRefused, match="cannot be moved to draft"):
        admin_events.change_status(session, actor_id=admin.id, event_id=event.id, status=EventStatus.DRAFT)
    session.rollback()
    with pytest.raises(ChangeRefused, match="Only draft events"):
        admin_events.delete_event(session, actor_id=admin.id, event_id=event.id)
    session.rollback()
    admin_events.delete_event(session, actor_id=admin.id, event_id=empty.id)
    session.commit()
    assert session.get(Event, empty.id) is None
    assert session.scalars(select(AuditLog).where(AuditLog.action == "event.delete")).one().entity_id == empty.id


def test_duplicate_copies_details_tiers_and_layout_with_nothing_sold(session, factory):
    event = factory.seated_event(rows=2, seats_per_row=4, title="Gala")
    admin = factory.user(is_admin=True)
    seats = factory.seat_ids(event)
    admin_events.set_seat_blocked(session, actor_id=admin.id, event_id=event.id, unit_id=seats[0], blocked=True)
    session.commit()
    buy(session, event, factory.user(), seats=seats[1:3])
    copy = admin_events.duplicate_event(session, actor_id=admin.id, event_id=event.id)
    session.commit()
    session.expire_all()
    copy = session.get(Event, copy.id)
    assert copy.title == "Copy of Gala" and copy.status == EventStatus.DRAFT and copy.venue == event.venue
    assert [(t.name, t.capacity, t.seated) for t in copy.tiers] == [("Stalls", 8, True)]
    statuses = dict(session.execute(select(Unit.status, func.count()).where(Unit.event_id == copy.id)
                                    .group_by(Unit.status)).all())
    assert statuses == {UnitStatus.BLOCKED: 1, UnitStatus.AVAILABLE: 7}
    consistent(session, copy.id)


def test_cancelling_an_event_refunds_orders_releases_holds_and_clears_the_waitlist(session, factory):
    event = factory.ga_event(capacity=4)
    tier = factory.tier(event)
    admin = factory.user(is_admin=True)
    buyer = factory.user()
    order = buy(session, event, buyer, quantities={tier.id: 3})
    reserve_general(session, user_id=factory.user().id, event_id=event.id, quantities={tier.id: 1})
    session.commit()
    waiter = factory.user()
    waitlist.join(session, user_id=waiter.id, event_id=event.id, tier_id=tier.id, quantity=1)
    session.commit()

    summary = admin_events.cancel_event(session, make_gateway(), actor_id=admin.id, event_id=event.id, reason="Storm")
    session.commit()
    assert (summary.orders, summary.holds, summary.waiting) == (1, 1, 1)
    session.expire_all()
    assert session.get(Event, event.id).status == EventStatus.CANCELLED
    assert session.get(Order, order.id).status == OrderStatus.REFUNDED
    assert units_of(session, tier.id, UnitStatus.AVAILABLE) == 4
    assert session.scalar(select(func.count()).select_from(Hold).where(
        Hold.event_id == event.id, Hold.status == HoldStatus.ACTIVE)) == 0
    assert session.scalars(select(WaitlistEntry.status)).all() == [WaitlistStatus.REMOVED]
    refunded = session.execute(text("SELECT refunded_minor FROM gateway_charges")).scalar_one()
    assert refunded == order.total_minor
    mail = session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == buyer.email,
                                                       OutboxMessage.template == "event_cancelled")).one()
    assert "Reason: Event cancelled: Storm" in mail.body
    with pytest.raises(ChangeRefused, match="cancelled"):
        admin_events.update_tier(session, actor_id=admin.id, event_id=event.id, tier_id=tier.id, name="x",
                                 price_minor=1, colour=tier.colour, capacity=10)
    session.rollback()
    consistent(session, event.id)


def test_admin_refund_frees_the_seats_for_the_waitlist_and_is_audited(session, factory):
    event = factory.seated_event(rows=1, seats_per_row=2)
    admin = factory.user(is_admin=True)
    order = buy(session, event, factory.user(), seats=factory.seat_ids(event))
    waiter = factory.user()
    waitlist.join(session, user_id=waiter.id, event_id=event.id, tier_id=None, quantity=2)
    session.commit()
    admin_orders.cancel_order(session, make_gateway(), actor_id=admin.id, order_id=order.id, reason="Fraud check",
                              refund=True)
    session.commit()
    session.expire_all()
    assert session.get(Order, order.id).status == OrderStatus.REFUNDED
    offer = session.scalars(select(Hold).where(Hold.kind == HoldKind.OFFER)).one()
    assert offer.user_id == waiter.id and sorted(offer.unit_ids) == factory.seat_ids(event)
    log = session.scalars(select(AuditLog).where(AuditLog.action == "order.refund")).one()
    assert log.actor_id == admin.id and log.after["reason"] == "Fraud check"
    mail = session.scalars(select(OutboxMessage).where(OutboxMessage.subject.startswith("Your order"))).one()
    assert mail.recipient == order.user.email
    assert "Reason: Fraud check" in mail.body and "refunded to your card" in mail.body
    assert f"/orders/{order.id}" in mail.body
    consistent(session, event.id)


def test_removing_someone_holding_an_offer_passes_it_on(session, factory):
    event = factory.ga_event(capacity=1)
    tier = factory.tier(event)
    admin = factory.user(is_admin=True)
    order = buy(session, event, factory.user(), quantities={tier.id: 1})
    first, second = factory.user(), factory.user()
    one = waitlist.join(session, user_id=first.id, event_id=event.id, tier_id=tier.id, quantity=1)
    waitlist.join(session, user_id=second.id, event_id=event.id, tier_id=tier.id, quantity=1)
    session.commit()
    admin_orders.cancel_order(session, make_gateway(), actor_id=admin.id, order_id=order.id, reason="x", refund=True)
    session.commit()
    admin_waitlist.remove_entry(session, actor_id=admin.id, event_id=event.id, entry_id=one.id)
    session.commit()
    session.expire_all()
    live = session.scalars(select(Hold).where(Hold.kind == HoldKind.OFFER, Hold.status == HoldStatus.ACTIVE)).one()
    assert live.user_id == second.id
    assert session.get(WaitlistEntry, one.id).status == WaitlistStatus.REMOVED
    consistent(session, event.id)


# Check-in -------------------------------------------------------------------

def test_two_gates_scanning_the_same_ticket_admit_it_once(app, session, factory):
    event = factory.seated_event(rows=1, seats_per_row=2)
    order = buy(session, event, factory.user(), seats=factory.seat_ids(event)[:1])
    code = order.tickets[0].code
    staff = [factory.user(is_admin=True).id for _ in range(8)]

    def scan(i):
        result = checkin.check_in(db.session, event_id=event.id, code=code, staff_id=staff[i])
        db.session.commit()
        return result.outcome

    outcomes = race(app, 8, scan)
    assert sorted(outcomes) == [checkin.ALREADY] * 7 + [checkin.VALID]
    session.expire_all()
    ticket = session.scalars(select(Ticket).where(Ticket.code == code)).one()
    assert ticket.checked_in_at is not None and ticket.checked_in_by in staff
    assert session.scalar(select(func.count()).where(AuditLog.action == "ticket.check_in")) == 1
    consistent(session, event.id)


def test_check_in_outcomes(session, factory):
    event = factory.seated_event(rows=1, seats_per_row=3)
    other = factory.seated_event(rows=1, seats_per_row=1, title="Elsewhere")
    staff = factory.user(is_admin=True).id
    order = buy(session, event, factory.user(), seats=factory.seat_ids(event)[:2])
    kept, cancelled_code = order.tickets[0].code, order.tickets[1].code
    assert checkin.check_in(session, event_id=other.id, code=kept, staff_id=staff).outcome == checkin.WRONG_EVENT
    assert checkin.check_in(session, event_id=event.id, code=" nope ", staff_id=staff).outcome == checkin.UNKNOWN
    admin_orders.cancel_order(session, make_gateway(), actor_id=staff, order_id=order.id, reason="x", refund=False)
    session.commit()
    assert (checkin.check_in(session, event_id=event.id, code=cancelled_code, staff_id=staff).outcome
            == checkin.CANCELLED)


# Export ---------------------------------------------------------------------

@pytest.mark.slow
def test_export_of_a_50000_ticket_event_streams_in_bounded_memory(app, session, factory):
    event = factory.ga_event(capacity=50_000, price_minor=2500)
    sell_in_bulk(session, event, factory.tier(event))
    consistent(session, event.id)

    tracemalloc.start()
    started = time.perf_counter()
    rows = size = biggest_chunk = 0
    for chunk in export.attendee_csv(db.engine, event.id):
        rows += chunk.count("\n")
        size += len(chunk)
        biggest_chunk = max(biggest_chunk, len(chunk))
    elapsed = time.perf_counter() - started
    _, streamed_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    # What loading every row at once would cost, for comparison.
    tracemalloc.start()
    with db.engine.connect() as conn:
        everything = conn.execute(export._QUERY, {"e": event.id}).all()
    _, loaded_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del everything

    print(f"\nexport: {rows - 1:,} tickets, {size / 1e6:.1f} MB of CSV in {elapsed:.2f}s;"
          f" Python peak {streamed_peak / 1e6:.2f} MB streamed vs {loaded_peak / 1e6:.2f} MB loading all rows;"
          f" largest chunk {biggest_chunk / 1e3:.0f} kB")
    assert rows == 50_001  # header + one line per ticket
    assert streamed_peak < 4_000_000, "the export must not hold the event in memory"
    assert streamed_peak * 5 < loaded_peak
