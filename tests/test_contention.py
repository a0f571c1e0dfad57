"""Real threads on real connections racing for the same inventory.

Every test starts its threads at a barrier so they really collide, lets each
commit on its own connection, and calls the invariant checker at the end.
Each of these tests fails when the lock it relies on is removed (checked by
hand; docs/testing.md says how to repeat the check).
"""
from __future__ import annotations

import random
import re
import time
from collections import Counter

import pytest
from sqlalchemy import func, select, text

from tests.support import GOOD, SLOW_CARD, assert_consistent, csrf_token, race, reserve_general, reserve_seats, sign_in
from webapp.extensions import db
from webapp.models import GatewayCharge, Hold, HoldStatus, Order, PaymentAttempt, PaymentStatus, Unit, UnitStatus
from webapp.services.errors import BookingError, NotEnoughLeft, PaymentInProgress, SeatsTaken
from webapp.services.money import checkout
from webapp.services.money.gateway import SimulatedGateway
from webapp.services.selling import inventory

pytestmark = pytest.mark.slow

def test_numbered_seats_identical_picks_have_exactly_one_winner(app, session, factory):
    """60 buyers in 12 groups of 5; each group fights over the same 3 seats."""
    event = factory.seated_event(rows=4, seats_per_row=10, per_order_limit=8)
    seats = factory.seat_ids(event)
    groups = [seats[i * 3:(i + 1) * 3] for i in range(12)]
    users = [u.id for u in factory.users(60)]

    def attempt(i):
        pick = groups[i % 12]
        try:
            reserve_seats(db.session, user_id=users[i], event_id=event.id, unit_ids=pick)
            db.session.commit()
            return ("won", i % 12, None)
        except SeatsTaken as lost:
            db.session.rollback()
            return ("lost", i % 12, lost.labels)

    results = race(app, 60, attempt)
    winners = Counter(group for outcome, group, _ in results if outcome == "won")
    assert winners == Counter({g: 1 for g in range(12)})
    for outcome, _group, labels in results:
        if outcome == "lost":
            assert labels, "a loser must be told which seats were taken"
            assert all(label.startswith("Stalls, row ") for label in labels)
    assert session.scalar(select(func.count()).where(Unit.event_id == event.id, Unit.status == UnitStatus.HELD)) == 36
    assert_consistent(session, event.id)


def test_numbered_seats_overlapping_picks_never_sell_a_seat_twice(app, session, factory):
    """80 buyers pick 2-4 seats from a crowded front row; picks overlap every which way."""
    event = factory.seated_event(rows=3, seats_per_row=10, per_order_limit=8)
    seats = factory.seat_ids(event)[:12]
    users = [u.id for u in factory.users(80)]
    rng = random.Random(7)
    picks = [sorted(rng.sample(seats, rng.randint(2, 4))) for _ in range(80)]
    labels = {
        u.id: f"{u.section}, row {u.row_label}, seat {u.seat_number}"
        for u in session.scalars(select(Unit).where(Unit.id.in_(seats)))
    }

    def attempt(i):
        try:
            hold = reserve_seats(db.session, user_id=users[i], event_id=event.id, unit_ids=picks[i])
            db.session.commit()
            return ("won", hold.id, picks[i], None)
        except SeatsTaken as lost:
            db.session.rollback()
            return ("lost", None, picks[i], lost.unit_ids)

    results = race(app, 80, attempt)
    won_seats = [s for outcome, _, pick, _ in results if outcome == "won" for s in pick]
    assert len(won_seats) == len(set(won_seats)), "a seat was won twice"
    assert won_seats, "somebody must win"
    owners = {s for s in won_seats}
    for outcome, _, pick, taken in results:
        if outcome == "lost":
            assert taken and set(taken) <= set(pick)
            # The seats named as taken really are held by a winner.
            assert set(taken) <= owners, (taken, [labels[t] for t in taken])
    assert_consistent(session, event.id)


def test_general_admission_rush_sells_exactly_capacity_over_http(app, session, factory):
    """220 buyers, 1-4 places each, through the real endpoint, for 100 places.

    A loser is told how many are left; like a real buyer, they try again
    for that many, until the tier is sold out.
    """
    event = factory.ga_event(capacity=100, per_order_limit=8)
    tier = factory.tier(event)
    users = [u.id for u in factory.users(220)]
    rng = random.Random(11)
    wanted = [rng.randint(1, 4) for _ in range(220)]

    def buyer(i):
        client = app.test_client()
        sign_in(client, users[i])
        # A fresh app context per buyer: Flask-WTF caches the token in `g`.
        with app.app_context():
            token = csrf_token(client, f"/events/{event.id}")
        return client, token

    clients = [buyer(i) for i in range(220)]

    def attempt(i):
        client, token = clients[i]
        want, got, messages = wanted[i], 0, []
        while want > 0:
            response = client.post(f"/events/{event.id}/reserve", data={f"qty-{tier.id}": str(want)},
                                   headers={"X-CSRFToken": token, "HX-Request": "true"})
            if response.status_code == 204:
                return want, messages
            assert response.status_code == 409, response.get_data(as_text=True)[:300]
            body = response.get_data(as_text=True)
            messages.append(body)
            left = re.search(r"Only (\d+) left", body)
            if left:
                want = min(want, int(left.group(1)))
                continue
            assert "sold out" in body
            return got, messages
        return got, messages

    results = race(app, 220, attempt)
    held = sum(n for n, _ in results)
    assert held == 100
    assert session.scalar(select(func.count()).where(Unit.tier_id == tier.id, Unit.status == UnitStatus.HELD)) == 100
    losers = [msgs for n, msgs in results if n == 0]
    assert losers, "with 220 buyers for 100 places somebody must lose"
    assert all("sold out" in msgs[-1] for msgs in losers)
    assert_consistent(session, event.id)


def test_general_admission_threads_never_hold_a_place_twice(app, session, factory):
    """250 service calls for 100 places: the SKIP LOCKED grab, no HTTP in between."""
    event = factory.ga_event(capacity=100, per_order_limit=8)
    tier = factory.tier(event)
    users = [u.id for u in factory.users(250)]
    rng = random.Random(3)
    wanted = [rng.randint(1, 4) for _ in range(250)]

    def attempt(i):
        try:
            hold = reserve_general(db.session, user_id=users[i], event_id=event.id,
                                             quantities={tier.id: wanted[i]})
            db.session.commit()
            return ("won", hold.unit_ids)
        except NotEnoughLeft as short:
            db.session.rollback()
            assert short.left < wanted[i]
            return ("lost", short.left)

    results = race(app, 250, attempt)
    taken = [u for outcome, ids in results if outcome == "won" for u in ids]
    assert len(taken) == len(set(taken))
    assert 100 - 3 <= len(taken) <= 100  # the last few places may be fewer than anyone asked for
    assert_consistent(session, event.id)


def test_pay_racing_the_expiry_sweep_is_all_or_nothing(app, session, factory):
    """40 rounds: at the moment a hold lapses, its buyer pays while two sweepers
    run and a rival buyer grabs the same seat.

    Either the order exists and the seat is sold to it, or the hold expired and
    the seat is free (or the rival's). Never both, never neither, never a charge
    kept without an order.
    """
    event = factory.seated_event(rows=4, seats_per_row=10, per_order_limit=8)
    seats = factory.seat_ids(event)
    users = [u.id for u in factory.users(41)]
    rival = users.pop()
    gateway = SimulatedGateway(db.engine, slow_seconds=0)
    rng = random.Random(5)
    outcomes = Counter()

    for round_no in range(40):
        seat = seats[round_no]
        hold = reserve_seats(session, user_id=users[round_no], event_id=event.id, unit_ids=[seat])
        session.commit()
        # Lapse within a few milliseconds either side of the race's start.
        session.execute(text("UPDATE holds SET expires_at = now() + make_interval(secs => :s) WHERE id = :h"),
                        {"s": rng.randint(-30, 5) / 1000, "h": hold.id})
        session.commit()
        hold_id = hold.id

        def work(i, hold_id=hold_id, round_no=round_no, seat=seat):
            try:
                if i == 0:
                    time.sleep((round_no % 4) * 0.003)  # vary who gets there first
                    checkout.pay(db.session, gateway, hold_id=hold_id, user_id=users[round_no],
                                 idempotency_key=f"race-{round_no}-pay-key", card=GOOD)
                elif i == 3:
                    reserve_seats(db.session, user_id=rival, event_id=event.id, unit_ids=[seat])
                    db.session.commit()
                else:
                    inventory.expire_holds(db.session, event_id=event.id)
                    db.session.commit()
            except BookingError:
                db.session.rollback()

        race(app, 4, work)
        session.expire_all()
        order = session.scalars(select(Order).where(Order.hold_id == hold_id)).first()
        unit = session.get(Unit, seat)
        final = session.get(Hold, hold_id)
        approved = session.scalar(select(func.count()).where(
            PaymentAttempt.hold_id == hold_id, PaymentAttempt.status == PaymentStatus.APPROVED))
        if order is not None:
            outcomes["paid"] += 1
            assert unit.status == UnitStatus.SOLD and final.status == HoldStatus.CONVERTED and approved == 1
        else:
            outcomes["lost to rival" if unit.status == UnitStatus.HELD else "expired"] += 1
            assert final.status == HoldStatus.EXPIRED and approved == 0
            assert unit.status in (UnitStatus.AVAILABLE, UnitStatus.HELD) and unit.hold_id != hold_id
        # The rival's hold is given back so the next round starts clean.
        inventory.release_active_basket(session, user_id=rival, event_id=event.id)
        session.commit()
    print("pay vs sweep outcomes:", dict(outcomes))
    assert outcomes["paid"] and outcomes["lost to rival"], "the race should go both ways"
    assert_consistent(session, event.id)


def held_checkout(session, factory, *, quantity: int):
    """A buyer holding `quantity` GA places, ready to pay; ids only, as ORM objects stay in this thread."""
    event = factory.ga_event(capacity=10)
    buyer = factory.user()
    hold = reserve_general(session, user_id=buyer.id, event_id=event.id,
                                     quantities={factory.tier(event).id: quantity})
    session.commit()
    return event, hold.id, buyer.id


def test_same_checkout_submitted_twenty_times_gives_one_order_and_one_charge(app, session, factory):
    event, hold_id, buyer_id = held_checkout(session, factory, quantity=2)
    gateway, slow_card = SimulatedGateway(db.engine, slow_seconds=0.3), SLOW_CARD

    def attempt(i):
        try:
            return ("paid", checkout.pay(db.session, gateway, hold_id=hold_id, user_id=buyer_id,
                                         idempotency_key="same-checkout-key-123", card=slow_card).order_id)
        except PaymentInProgress:
            db.session.rollback()
            return ("in-progress", None)

    results = race(app, 20, attempt)
    orders = {order_id for outcome, order_id in results if outcome == "paid"}
    assert len(orders) == 1
    assert session.scalar(select(func.count()).select_from(Order)) == 1
    assert session.scalar(select(func.count()).select_from(GatewayCharge)) == 1
    assert session.scalar(select(func.count()).where(PaymentAttempt.status == PaymentStatus.APPROVED)) == 1
    assert_consistent(session, event.id)


def test_two_tabs_with_different_keys_still_give_one_order(app, session, factory):
    event, hold_id, buyer_id = held_checkout(session, factory, quantity=1)
    gateway, slow_card = SimulatedGateway(db.engine, slow_seconds=0.3), SLOW_CARD

    def attempt(i):
        try:
            return checkout.pay(db.session, gateway, hold_id=hold_id, user_id=buyer_id,
                                idempotency_key=f"tab-{i}-checkout-key", card=slow_card).order_id
        except PaymentInProgress:
            db.session.rollback()
            return None

    race(app, 10, attempt)
    assert session.scalar(select(func.count()).select_from(Order)) == 1
    approved = session.scalar(
        select(func.count()).select_from(GatewayCharge).where(GatewayCharge.outcome == "approved")
    )
    assert approved == 1
    assert_consistent(session, event.id)


def test_several_sweepers_at_once_expire_each_hold_once(app, session, factory):
    event = factory.ga_event(capacity=300, per_order_limit=3)
    tier = factory.tier(event)
    users = factory.users(100)
    for u in users:
        reserve_general(session, user_id=u.id, event_id=event.id, quantities={tier.id: 3})
    session.commit()
    session.execute(text("UPDATE holds SET expires_at = now() - interval '1 second'"))
    session.commit()

    def sweep(i):
        total = 0
        while True:
            n = inventory.expire_holds(db.session, limit=7)
            db.session.commit()
            total += n
            if n == 0:
                return total

    counts = race(app, 4, sweep)
    assert sum(counts) == 100
    assert session.scalar(select(func.count()).where(Unit.status == UnitStatus.AVAILABLE)) == 300
    assert_consistent(session, event.id)
