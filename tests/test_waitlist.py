"""The waiting list on real PostgreSQL: line order, multi-ticket entries, leaving,
offers that run out, and no queue jumping by the public."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from tests.support import GOOD, buy, cancel, expire_now, reserve_general, reserve_seats
from webapp.models import (
    Hold,
    HoldKind,
    HoldStatus,
    Order,
    OutboxMessage,
    WaitlistEntry,
    WaitlistStatus,
)
from webapp.services import errors
from webapp.services.errors import HoldExpired, LimitExceeded, NotEnoughLeft, SeatsTaken
from webapp.services.invariants import check_event
from webapp.services.money import checkout
from webapp.services.selling import catalog, inventory
from webapp.services.waiting import waitlist, waitlist_read


def join(session, user, event, quantity: int = 1, tier_id=None) -> WaitlistEntry:
    entry = waitlist.join(session, user_id=user.id, event_id=event.id, tier_id=tier_id, quantity=quantity)
    session.commit()
    return entry


def sold_out_event(session, factory, gateway, capacity: int, **kw):
    """A GA event whose every place was bought, one order per buyer."""
    event = factory.ga_event(capacity=capacity, **kw)
    orders = [buy(session, event, u, gateway=gateway) for u in factory.users(capacity)]
    return event, orders


def offer_of(session, entry: WaitlistEntry) -> Hold | None:
    return session.scalars(
        select(Hold).where(Hold.waitlist_entry_id == entry.id, Hold.status == HoldStatus.ACTIVE)
    ).first()


def status_of(session, entry: WaitlistEntry) -> WaitlistStatus:
    session.expire_all()
    return session.get(WaitlistEntry, entry.id).status


def test_freed_units_are_offered_in_waitlist_order(session, factory, gateway):
    event, orders = sold_out_event(session, factory, gateway, 3)
    a, b, c = factory.users(3)
    entries = [join(session, u, event) for u in (a, b, c)]
    assert [waitlist.place_on_waitlist(session, e).position for e in entries] == [1, 2, 3]

    cancel(session, gateway, orders[1])
    assert [status_of(session, e) for e in entries] == [WaitlistStatus.OFFERED, WaitlistStatus.WAITING,
                                                        WaitlistStatus.WAITING]
    offer = offer_of(session, entries[0])
    assert offer.kind == HoldKind.OFFER and offer.user_id == a.id and offer.quantity == 1
    # The offer window is the event's, in hours, on the database clock.
    hours = session.execute(text("SELECT extract(epoch FROM expires_at - created_at) / 3600 FROM holds"
                                 " WHERE id = :h"), {"h": offer.id}).scalar_one()
    assert round(hours) == 12
    # b moved up.
    assert waitlist.place_on_waitlist(session, entries[1]).position == 1

    cancel(session, gateway, orders[0])
    assert status_of(session, entries[1]) == WaitlistStatus.OFFERED
    assert status_of(session, entries[2]) == WaitlistStatus.WAITING
    assert check_event(session, event.id) == []


def test_offer_is_paid_through_the_normal_checkout(session, factory, gateway):
    event, orders = sold_out_event(session, factory, gateway, 2)
    person = factory.user()
    entry = join(session, person, event)
    cancel(session, gateway, orders[0])
    offer = offer_of(session, entry)
    result = checkout.pay(session, gateway, hold_id=offer.id, user_id=person.id, idempotency_key="offer-pay",
                          card=GOOD)
    order = session.get(Order, result.order_id)
    assert order.user_id == person.id and len(order.tickets) == 1
    assert status_of(session, entry) == WaitlistStatus.FULFILLED
    assert check_event(session, event.id) == []


def test_multi_ticket_entry_is_not_skipped_for_a_smaller_one(session, factory, gateway):
    event, orders = sold_out_event(session, factory, gateway, 4)
    group, single = factory.users(2)
    big = join(session, group, event, quantity=2)
    small = join(session, single, event, quantity=1)
    assert waitlist.place_on_waitlist(session, small) == waitlist.Place(ahead_people=1, ahead_tickets=2)

    cancel(session, gateway, orders[0])
    # One place is free, but it is set aside for the group of two, not given
    # to the single behind them, and not sold to the public.
    assert status_of(session, big) == WaitlistStatus.WAITING
    assert status_of(session, small) == WaitlistStatus.WAITING
    status = waitlist_read.event_status(session, event)
    assert (status.available, status.tiers[0].set_aside, status.waiting_people, status.waiting_tickets) == (0, 1, 2, 3)
    assert check_event(session, event.id) == []

    cancel(session, gateway, orders[1])
    assert status_of(session, big) == WaitlistStatus.OFFERED
    assert offer_of(session, big).quantity == 2
    assert status_of(session, small) == WaitlistStatus.WAITING
    assert check_event(session, event.id) == []


def test_partial_offers_give_the_first_entry_what_is_free(session, factory, gateway):
    event, orders = sold_out_event(session, factory, gateway, 4, waitlist_partial_offers=True)
    group, single = factory.users(2)
    big = join(session, group, event, quantity=3)
    small = join(session, single, event, quantity=1)
    cancel(session, gateway, orders[0])
    assert status_of(session, big) == WaitlistStatus.OFFERED
    assert offer_of(session, big).quantity == 1
    assert status_of(session, small) == WaitlistStatus.WAITING
    mail = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
    assert "You asked for 3" in mail.body
    assert check_event(session, event.id) == []


def test_leaving_the_waitlist_lets_the_next_entry_through(session, factory, gateway):
    event, orders = sold_out_event(session, factory, gateway, 3)
    group, single = factory.users(2)
    big = join(session, group, event, quantity=2)
    small = join(session, single, event, quantity=1)
    cancel(session, gateway, orders[0])
    assert status_of(session, small) == WaitlistStatus.WAITING  # set aside for the group

    waitlist.leave(session, entry_id=big.id, user_id=group.id)
    session.commit()
    assert status_of(session, big) == WaitlistStatus.LEFT
    assert status_of(session, small) == WaitlistStatus.OFFERED
    # Leaving is not joining twice: the group may come back, at the end.
    again = join(session, group, event, quantity=2)
    assert waitlist.place_on_waitlist(session, again).position == 1
    assert check_event(session, event.id) == []


def test_leaving_with_an_offer_passes_it_on(session, factory, gateway):
    event, orders = sold_out_event(session, factory, gateway, 2)
    first, second = factory.users(2)
    e1, e2 = join(session, first, event), join(session, second, event)
    cancel(session, gateway, orders[0])
    offer = offer_of(session, e1)
    waitlist.leave(session, entry_id=e1.id, user_id=first.id)
    session.commit()
    assert session.get(Hold, offer.id).status == HoldStatus.RELEASED
    assert status_of(session, e1) == WaitlistStatus.LEFT
    assert status_of(session, e2) == WaitlistStatus.OFFERED
    assert check_event(session, event.id) == []


def test_an_expired_offer_passes_to_the_next_person(session, factory, gateway):
    event, orders = sold_out_event(session, factory, gateway, 2)
    first, second = factory.users(2)
    e1, e2 = join(session, first, event), join(session, second, event)
    cancel(session, gateway, orders[0])
    offer = offer_of(session, e1)

    expire_now(session, offer.id)
    assert inventory.expire_holds(session) == 1
    session.commit()
    assert status_of(session, e1) == WaitlistStatus.LAPSED
    assert status_of(session, e2) == WaitlistStatus.OFFERED
    assert offer_of(session, e2).unit_ids == offer.unit_ids
    subjects = [(m.recipient, m.subject) for m in session.scalars(
        select(OutboxMessage).where(OutboxMessage.template != "order_confirmation").order_by(OutboxMessage.id))]
    assert subjects == [
        (first.email, f"Tickets are waiting for you: {event.title}"),
        (first.email, f"Your offer for {event.title} has expired"),
        (second.email, f"Tickets are waiting for you: {event.title}"),
    ]
    assert check_event(session, event.id) == []


def test_declining_passes_the_offer_on(session, factory, gateway):
    event, orders = sold_out_event(session, factory, gateway, 2)
    first, second = factory.users(2)
    e1, e2 = join(session, first, event), join(session, second, event)
    cancel(session, gateway, orders[0])
    waitlist.decline(session, entry_id=e1.id, user_id=first.id)
    session.commit()
    assert status_of(session, e1) == WaitlistStatus.LAPSED
    assert status_of(session, e2) == WaitlistStatus.OFFERED
    # Nothing left to decline a second time.
    with pytest.raises(waitlist.BookingError):
        waitlist.decline(session, entry_id=e1.id, user_id=first.id)
    session.rollback()
    assert check_event(session, event.id) == []


def test_paying_an_expired_offer_late_is_refused_while_others_wait(session, factory, gateway):
    event, orders = sold_out_event(session, factory, gateway, 1)
    first, second = factory.users(2)
    e1, e2 = join(session, first, event), join(session, second, event)
    cancel(session, gateway, orders[0])
    offer = offer_of(session, e1)
    expire_now(session, offer.id)  # not swept yet: paying notices by itself
    with pytest.raises(HoldExpired):
        checkout.pay(session, gateway, hold_id=offer.id, user_id=first.id, idempotency_key="late", card=GOOD)
    session.rollback()
    # The failed payment rolled back with it; the sweep passes the offer on.
    inventory.expire_holds(session)
    session.commit()
    assert status_of(session, e2) == WaitlistStatus.OFFERED
    assert check_event(session, event.id) == []


def test_paying_an_expired_offer_late_succeeds_when_nobody_else_wants_it(session, factory, gateway):
    event, orders = sold_out_event(session, factory, gateway, 1)
    person = factory.user()
    entry = join(session, person, event)
    cancel(session, gateway, orders[0])
    offer = offer_of(session, entry)
    expire_now(session, offer.id)
    inventory.expire_holds(session)
    session.commit()
    assert status_of(session, entry) == WaitlistStatus.LAPSED
    result = checkout.pay(session, gateway, hold_id=offer.id, user_id=person.id, idempotency_key="late-ok",
                          card=GOOD)
    assert result.order_id is not None
    assert status_of(session, entry) == WaitlistStatus.FULFILLED
    assert check_event(session, event.id) == []


def test_public_cannot_take_a_freed_place_while_people_wait(session, factory, gateway):
    event, orders = sold_out_event(session, factory, gateway, 3, tiers=1)
    group, stranger = factory.users(2)
    join(session, group, event, quantity=2)
    cancel(session, gateway, orders[0])  # one place free, set aside for the group
    tier = event.tiers[0]
    assert inventory.tier_counts(session, event.id)[tier.id].available == 1
    assert [tv.sold_out for tv in catalog.tier_views(session, event)] == [True]
    with pytest.raises(NotEnoughLeft) as refused:
        reserve_general(session, user_id=stranger.id, event_id=event.id, quantities={tier.id: 1})
    assert refused.value.left == 0 and "waiting list" in refused.value.message
    session.rollback()
    assert check_event(session, event.id) == []


def test_public_cannot_jump_the_waitlist_through_an_unswept_expired_hold(session, factory, gateway):
    event = factory.ga_event(capacity=2)
    tier = event.tiers[0]
    early, slow, waiting, stranger = factory.users(4)
    buy(session, event, early, gateway=gateway)
    stale = reserve_general(session, user_id=slow.id, event_id=event.id, quantities={tier.id: 1})
    session.commit()
    entry = join(session, waiting, event)
    expire_now(session, stale.id)  # ran out; the sweep has not seen it

    with pytest.raises(NotEnoughLeft):
        reserve_general(session, user_id=stranger.id, event_id=event.id, quantities={tier.id: 1})
    session.rollback()
    # Paying for the stale hold late cannot take the place back either.
    with pytest.raises(HoldExpired):
        checkout.pay(session, gateway, hold_id=stale.id, user_id=slow.id, idempotency_key="stale", card=GOOD)
    session.rollback()
    assert status_of(session, entry) == WaitlistStatus.WAITING
    # The sweep releases it, to the line first.
    assert inventory.expire_holds(session) == 1
    session.commit()
    assert status_of(session, entry) == WaitlistStatus.OFFERED
    assert offer_of(session, entry).unit_ids == stale.unit_ids
    with pytest.raises(NotEnoughLeft):
        reserve_general(session, user_id=stranger.id, event_id=event.id, quantities={tier.id: 1})
    session.rollback()
    assert check_event(session, event.id) == []


def test_public_cannot_jump_the_waitlist_for_a_seat_of_an_unswept_expired_hold(session, factory, gateway):
    event = factory.seated_event(rows=1, seats_per_row=2)
    seats = factory.seat_ids(event)
    holder, owner, waiting, stranger = factory.users(4)
    stale = reserve_seats(session, user_id=holder.id, event_id=event.id, unit_ids=seats[:1])
    session.commit()
    hold = reserve_seats(session, user_id=owner.id, event_id=event.id, unit_ids=seats[1:])
    session.commit()
    checkout.pay(session, gateway, hold_id=hold.id, user_id=owner.id, idempotency_key="seat-owner", card=GOOD)
    entry = join(session, waiting, event)
    expire_now(session, stale.id)

    with pytest.raises(SeatsTaken):
        reserve_seats(session, user_id=stranger.id, event_id=event.id, unit_ids=seats[:1])
    session.commit()  # the expiry is a change of its own and stands
    assert status_of(session, entry) == WaitlistStatus.OFFERED
    assert offer_of(session, entry).unit_ids == seats[:1]
    assert check_event(session, event.id) == []


def test_any_tier_entry_takes_units_from_several_tiers(session, factory, gateway):
    event = factory.ga_event(capacity=1, tiers=2)
    t1, t2 = event.tiers
    buyers = factory.users(2)
    o1 = buy(session, event, buyers[0], quantities={t1.id: 1}, gateway=gateway)
    o2 = buy(session, event, buyers[1], quantities={t2.id: 1}, gateway=gateway)
    person, specific = factory.users(2)
    anyone = join(session, person, event, quantity=2)
    later = join(session, specific, event, quantity=1, tier_id=t2.id)
    assert waitlist.place_on_waitlist(session, later).position == 2  # the any-tier entry is ahead

    cancel(session, gateway, o2)
    assert status_of(session, anyone) == WaitlistStatus.WAITING
    assert status_of(session, later) == WaitlistStatus.WAITING  # behind the any-tier entry
    cancel(session, gateway, o1)
    offer = offer_of(session, anyone)
    assert offer.quantity == 2 and offer.total_minor == t1.price_minor + t2.price_minor
    assert check_event(session, event.id) == []


def test_joining_rules(session, factory, gateway):
    event, _ = sold_out_event(session, factory, gateway, 1, per_order_limit=4)
    person = factory.user()
    with pytest.raises(LimitExceeded):
        waitlist.join(session, user_id=person.id, event_id=event.id, tier_id=None, quantity=5)
    with pytest.raises(waitlist.InvalidRequest):
        waitlist.join(session, user_id=person.id, event_id=event.id, tier_id=None, quantity=0)
    entry = join(session, person, event, quantity=4)
    with pytest.raises(errors.AlreadyOnWaitlist) as twice:
        waitlist.join(session, user_id=person.id, event_id=event.id, tier_id=None, quantity=1)
    assert "number 1 in line" in twice.value.message and twice.value.status_code == 409
    session.rollback()
    assert session.scalar(select(func.count()).select_from(WaitlistEntry)) == 1
    assert entry.status == WaitlistStatus.WAITING

    open_event = factory.ga_event(capacity=5, title="Plenty left")
    with pytest.raises(errors.NotSoldOut):
        waitlist.join(session, user_id=person.id, event_id=open_event.id, tier_id=None, quantity=1)
    session.rollback()
    closed, _ = sold_out_event(session, factory, gateway, 1, waitlist_enabled=False, title="No line")
    with pytest.raises(errors.WaitlistClosed):
        waitlist.join(session, user_id=person.id, event_id=closed.id, tier_id=None, quantity=1)


def test_admin_sees_the_waitlist_and_can_remove_an_entry(session, factory, gateway):
    event, orders = sold_out_event(session, factory, gateway, 2)
    a, b, c = factory.users(3)
    ea, eb, ec = join(session, a, event, 2), join(session, b, event), join(session, c, event)
    cancel(session, gateway, orders[0])
    view = waitlist_read.entries_in_order(session, event.id)
    assert [(v.entry.id, v.place.position if v.place else None) for v in view] == [(ea.id, 1), (eb.id, 2), (ec.id, 3)]

    waitlist.remove_entry(session, event_id=event.id, entry_id=ea.id)
    session.commit()
    view = waitlist_read.entries_in_order(session, event.id)
    assert [(v.entry.id, v.entry.status) for v in view] == [(eb.id, WaitlistStatus.OFFERED),
                                                           (ec.id, WaitlistStatus.WAITING)]
    assert view[0].offer is not None and view[0].offer_seconds_left > 11 * 3600
    assert view[1].place.position == 1
    ended = waitlist_read.entries_in_order(session, event.id, include_ended=True)
    assert [v.entry.status for v in ended][0] == WaitlistStatus.REMOVED
    assert check_event(session, event.id) == []


def test_raising_capacity_goes_to_the_waitlist_first(session, factory, gateway):
    event, _ = sold_out_event(session, factory, gateway, 1)
    tier = event.tiers[0]
    first, second = factory.users(2)
    e1, e2 = join(session, first, event, 2), join(session, second, event, 1)
    # What the admin's capacity change does: new units, then the hook.
    session.execute(text("INSERT INTO units (event_id, tier_id, status) SELECT :e, :t, 'available'"
                         " FROM generate_series(1, 5)"), {"e": event.id, "t": tier.id})
    tier.capacity += 5
    waitlist.offer_released_units(session, event.id)
    session.commit()
    assert offer_of(session, e1).quantity == 2 and offer_of(session, e2).quantity == 1
    # The rest is the public's again: nobody waits any more.
    assert [tv.available for tv in catalog.tier_views(session, event)] == [2]
    assert check_event(session, event.id) == []


def test_checker_catches_a_set_aside_unit_that_should_have_been_offered(session, factory, gateway):
    event, orders = sold_out_event(session, factory, gateway, 2)
    entry = join(session, factory.user(), event)
    # Free a place behind the services' back: nobody offered it.
    session.execute(text("UPDATE tickets SET status = 'void' WHERE order_id = :o"), {"o": orders[0].id})
    session.execute(text("UPDATE orders SET status = 'cancelled' WHERE id = :o"), {"o": orders[0].id})
    session.execute(text("UPDATE units SET status = 'available' WHERE id = :u"), {"u": orders[0].tickets[0].unit_id})
    session.commit()
    problems = check_event(session, event.id)
    assert any("first in line with enough free units" in p for p in problems)
    # The sweep's safety net repairs it.
    assert waitlist.offer_stranded_units(session) == 1
    session.commit()
    assert status_of(session, entry) == WaitlistStatus.OFFERED
    assert check_event(session, event.id) == []


def test_outbox_command_prints_the_offer_mail_and_marks_it_sent(app, session, factory, gateway):
    event, orders = sold_out_event(session, factory, gateway, 1)
    person = factory.user()
    join(session, person, event)
    cancel(session, gateway, orders[0])
    runner = app.test_cli_runner()

    kept = runner.invoke(args=["outbox", "--keep"])
    assert kept.exit_code == 0, kept.output
    # The buyer's order confirmation, then the offer.
    assert f"To: {person.email}" in kept.output and "2 message(s) shown" in kept.output
    sent = runner.invoke(args=["outbox"])
    assert f"Subject: Tickets are waiting for you: {event.title}" in sent.output
    offer = session.scalars(select(Hold).where(Hold.kind == HoldKind.OFFER)).one()
    # The link in the mail is the app's own route to the offer's hold page.
    assert f"/holds/{offer.id}" in sent.output and "2 message(s) sent" in sent.output
    assert "0 message(s) sent" in runner.invoke(args=["outbox"]).output


def test_sweep_pass_offers_units_left_free_by_a_join_racing_a_release(app, session, factory, gateway):
    event, orders = sold_out_event(session, factory, gateway, 1)
    person = factory.user()
    # The race, replayed in order: the release ran while the join was not yet
    # committed (so it saw nobody waiting); the join's own look at free units
    # ran before the release committed. Both committed: a free unit, a waiting entry.
    session.add(WaitlistEntry(event_id=event.id, user_id=person.id, quantity=1, status=WaitlistStatus.WAITING))
    session.execute(text("UPDATE tickets SET status = 'void' WHERE order_id = :o"), {"o": orders[0].id})
    session.execute(text("UPDATE orders SET status = 'cancelled' WHERE id = :o"), {"o": orders[0].id})
    session.execute(text("UPDATE units SET status = 'available' WHERE event_id = :e"), {"e": event.id})
    session.commit()
    person_id, event_id = person.id, event.id
    result = app.test_cli_runner().invoke(args=["sweep", "--once"])  # ends the test's session too
    assert result.exit_code == 0, result.output
    assert session.scalars(select(Hold).where(Hold.kind == HoldKind.OFFER)).one().user_id == person_id
    assert check_event(session, event_id) == []


def test_a_tier_added_in_the_same_transaction_goes_to_an_any_tier_entry(session, factory, gateway):
    from webapp.services.selling import events

    event, _ = sold_out_event(session, factory, gateway, 1)
    entry = join(session, factory.user(), event, quantity=2)
    assert len(event.tiers) == 1  # loaded before the new tier exists
    events.add_general_tier(session, event, name="Balcony", price_minor=3000, capacity=5, sort_order=1)
    waitlist.offer_released_units(session, event.id)
    session.commit()
    offer = offer_of(session, entry)
    assert offer.quantity == 2 and offer.total_minor == 6000
    assert check_event(session, event.id) == []
