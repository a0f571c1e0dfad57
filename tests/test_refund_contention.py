"""Refunds and invoice numbers under real concurrency: real threads, real connections, real commits.

Each test fails when the lock it relies on is removed (checked by hand, see
docs/testing.md): the order's row lock (two admins refunding at once), the
gateway charge's row lock (a refund while the checkout captures), and the
invoice series' counter row (50 orders invoiced at once).
"""
from __future__ import annotations

import secrets

import pytest
from sqlalchemy import func, select

from tests.support import GOOD, assert_consistent, buy, race, reserve_general
from webapp.extensions import db
from webapp.models import GatewayCharge, GatewayRefund, Invoice, Order, Organiser, PaymentAttempt, Refund
from webapp.services.admin import orders as admin_orders
from webapp.services.errors import BookingError, InvalidRequest, OrderNotCancellable
from webapp.services.money import checkout, refunds
from webapp.services.money.gateway import SimulatedGateway

pytestmark = pytest.mark.slow


def _orders(session, factory, event, n: int) -> list[Order]:
    seats = factory.seat_ids(event)
    return [buy(session, event, factory.user(), seats=seats[2 * i:2 * i + 2]) for i in range(n)]


def test_two_admins_refunding_the_same_ticket_at_once_give_one_refund(app, session, factory):
    """Ten orders; for each, two admins refund its first ticket in the same instant."""
    event = factory.seated_event(rows=4, seats_per_row=10)
    orders = _orders(session, factory, event, 10)
    admins = [factory.user(is_admin=True).id for _ in range(2)]
    targets = [(o.id, o.tickets[0].id) for o in orders]

    def attempt(i):
        order_id, ticket_id = targets[i // 2]
        try:
            made = admin_orders.refund(db.session, SimulatedGateway(db.engine), actor_id=admins[i % 2],
                                       order_id=order_id, reason="double click", ticket_ids=[ticket_id])
            return ("refunded", order_id, made.state)
        except OrderNotCancellable:
            db.session.rollback()
            return ("refused", order_id, None)

    results = race(app, 20, attempt)
    for order_id, _ in targets:
        mine = sorted(outcome for outcome, o, _ in results if o == order_id)
        assert mine == ["refunded", "refused"], (order_id, results)
    assert all(state == "succeeded" for outcome, _, state in results if outcome == "refunded")
    assert session.scalar(select(func.count()).select_from(Refund)) == 10
    assert session.scalar(select(func.sum(GatewayCharge.refunded_minor))) == 10 * 4500
    assert_consistent(session, event.id)


def test_two_admins_refunding_amounts_at_once_never_give_back_more_than_was_paid(app, session, factory):
    """Each of two admins gives back €60 of a €90 order at once: one does, the other is told what is left."""
    event = factory.seated_event(rows=4, seats_per_row=10)
    orders = _orders(session, factory, event, 10)
    admin = factory.user(is_admin=True).id

    def attempt(i):
        try:
            admin_orders.refund(db.session, SimulatedGateway(db.engine), actor_id=admin, order_id=orders[i // 2].id,
                                reason="goodwill", amount_minor=6000)
            return "refunded"
        except InvalidRequest as refused:
            db.session.rollback()
            assert "more than is left" in refused.message
            return "refused"

    results = race(app, 20, attempt)
    assert sorted(results) == ["refunded"] * 10 + ["refused"] * 10
    assert session.scalar(select(func.sum(GatewayCharge.refunded_minor))) == 10 * 6000
    assert_consistent(session, event.id)


def test_a_refund_during_the_capture_gives_one_refund(app, session, factory, monkeypatch):
    """The checkout's capture and the gateway call of a whole refund of the same fresh order, at once, 40 times.

    Whichever comes first, the money ends given back once: the charge
    voided before any capture, or captured and refunded in full; never
    captured and then marked voided (money taken and not given back).
    """
    event = factory.seated_event(rows=4, seats_per_row=10)
    monkeypatch.setattr(checkout, "_capture", lambda *held_back: None)  # orders made, captures held back
    orders = _orders(session, factory, event, 20) + _orders_ga(session, factory, 20)
    monkeypatch.undo()
    admin = factory.user(is_admin=True).id
    references = {o.id: session.scalars(select(PaymentAttempt.gateway_reference)
                                        .where(PaymentAttempt.id == o.payment_attempt_id)).one() for o in orders}
    # The refunds are requested (committed, tickets void) first; the race is at the gateway.
    requested = [refunds.request_refund(session, order_id=o.id, reason="at once", actor_id=admin, whole=True).id
                 for o in orders]
    session.commit()
    charges = [(references[o.id], o.payment_attempt_id) for o in orders]

    def attempt(i):
        gateway = SimulatedGateway(db.engine)
        if i % 2 == 0:
            reference, attempt_id = charges[i // 2]
            checkout._capture(gateway, reference, attempt_id)
            return "captured"
        made = refunds.send_refund(db.session, gateway, db.session.get_one(Refund, requested[i // 2]))
        db.session.commit()
        return made.state

    results = race(app, 2 * len(orders), attempt)
    assert results.count("succeeded") == len(orders)
    session.expire_all()
    for charge in session.scalars(select(GatewayCharge)):
        assert (charge.status == "voided" and charge.captured_at is None) or \
            (charge.status == "captured" and charge.refunded_minor == charge.amount_minor), \
            (charge.reference, charge.status, charge.captured_at, charge.refunded_minor)
    assert session.scalar(select(func.count()).select_from(GatewayRefund)) == len(orders)
    assert_consistent(session, event.id)


def _orders_ga(session, factory, n: int) -> list[Order]:
    event = factory.ga_event(capacity=n)
    return [buy(session, event, factory.user()) for _ in range(n)]


def test_fifty_orders_invoiced_at_once_take_fifty_consecutive_numbers(app, session, factory):
    event = factory.ga_event(capacity=60)
    users = factory.users(50)
    holds = []
    for user in users:
        holds.append(reserve_general(session, user_id=user.id, event_id=event.id, quantities={event.tiers[0].id: 1}))
    session.commit()
    work = [(h.id, u.id) for h, u in zip(holds, users, strict=True)]

    def attempt(i):
        hold_id, user_id = work[i]
        try:
            return checkout.pay(db.session, SimulatedGateway(db.engine), hold_id=hold_id, user_id=user_id,
                                idempotency_key=secrets.token_urlsafe(16), card=GOOD,
                                billing_name=f"Buyer {i}", billing_address="Somewhere 1").order_id
        except BookingError as failed:
            db.session.rollback()
            return failed.message

    results = race(app, 50, attempt)
    assert all(isinstance(r, int) for r in results), results
    numbers = sorted(session.scalars(select(Invoice.number).where(Invoice.kind == "invoice")).all())
    assert numbers == list(range(1, 51))
    assert_consistent(session, event.id)


def test_two_organisers_invoicing_fifty_orders_each_at_once_each_take_consecutive_numbers(app, session, factory):
    # The counter row is per organiser and prefix: 100 checkouts racing, two organisers, one series each.
    acme = Organiser(slug="acme", name="Acme", invoice_prefix="ACME-2026-")
    session.add(acme)
    session.commit()
    events = [factory.ga_event(capacity=60, title="Default's"), factory.ga_event(capacity=60, title="Acme's",
                                                                              organiser_id=acme.id)]
    users = factory.users(100)
    work = []
    for i, user in enumerate(users):
        event = events[i % 2]
        hold = reserve_general(session, user_id=user.id, event_id=event.id, quantities={event.tiers[0].id: 1})
        work.append((hold.id, user.id))
    session.commit()

    def attempt(i):
        hold_id, user_id = work[i]
        try:
            return checkout.pay(db.session, SimulatedGateway(db.engine), hold_id=hold_id, user_id=user_id,
                                idempotency_key=secrets.token_urlsafe(16), card=GOOD,
                                billing_name=f"Buyer {i}", billing_address="Somewhere 1").order_id
        except BookingError as failed:
            db.session.rollback()
            return failed.message

    results = race(app, 100, attempt)
    assert all(isinstance(r, int) for r in results), results
    for event, prefix in zip(events, ("INV-", "ACME-2026-"), strict=True):
        issued = session.execute(select(Invoice.series, Invoice.number).where(
            Invoice.event_id == event.id, Invoice.kind == "invoice").order_by(Invoice.number)).all()
        assert [tuple(i) for i in issued] == [(prefix, n) for n in range(1, 51)]
        assert_consistent(session, event.id)
    label = session.scalars(select(Invoice).where(Invoice.organiser_id == acme.id, Invoice.number == 7)).one().label
    assert label == "ACME-2026-000007"
