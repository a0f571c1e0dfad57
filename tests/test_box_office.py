"""The box office: sells at the door from the one inventory, paid in person, under the same lock as online
buyers; finds and resends orders; reaches only its organiser's (and its events'); and cannot refund or edit.

The race sells at the counter while buyers reserve online, on real connections: the reserve statement both
use takes general-admission places with FOR UPDATE SKIP LOCKED (tb_hold_places), so the places are sold
once. Checked by hand (2026-12-07): with that lock taken out of tb_hold_places (CREATE OR REPLACE on the test
database), the same race fails: two transactions took the same places, and a door sale's tickets ran into
the unique index on valid tickets per place (IntegrityError, uq_tickets_one_valid_per_unit).
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from tests.factories import make_gateway
from tests.organiser_world import Side, make_side
from tests.support import assert_consistent, login, race
from webapp.extensions import db
from webapp.models import AuditLog, Order, OrganiserMember, OutboxMessage, PaymentAttempt, Unit
from webapp.services.admin import box_office, reports
from webapp.services.errors import BookingError, InvalidRequest, NotEnoughLeft, NotFound
from webapp.services.money import checkout, refunds
from webapp.services.selling import inventory


@pytest.fixture
def world(factory) -> tuple[Side, Side]:
    return make_side(factory, "alpha", "Alpha"), make_side(factory, "bravo", "Bravo")


def _csrf(client, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def _sell(client, event_id: int, tier_id: int, n: int, paid_with: str = "cash", email: str = ""):
    path = f"/admin/box-office/events/{event_id}"
    return client.post(path, data={"csrf_token": _csrf(client, "/admin/box-office"), f"tier-{tier_id}": str(n),
                                   "paid_with": paid_with, "email": email})


def test_a_clerk_sells_at_the_door_paid_in_person_and_prints_the_tickets(client, factory, session):
    event = factory.ga_event(capacity=5, title="Door Night", per_buyer_limit=2)
    tier = event.tiers[0]
    clerk = factory.user("clerk@example.com", name="Clara Clerk")
    session.add(OrganiserMember(organiser_id=event.organiser_id, user_id=clerk.id, role="box_office"))
    session.commit()
    login(client, clerk.email)
    page = client.get(f"/admin/box-office/events/{event.id}").get_data(as_text=True)
    assert "Door Night" in page and "Card terminal" in page and 'name="tier-' in page

    sold = _sell(client, event.id, tier.id, 2, "terminal", "Walk.In@example.com")
    assert sold.status_code == 303
    order = session.scalars(select(Order).order_by(Order.id.desc())).first()
    assert (order.channel, order.sold_by, order.buyer_email, order.total_minor) == (
        "box_office", clerk.id, "walk.in@example.com", 2 * tier.price_minor)
    payment = session.get(PaymentAttempt, order.payment_attempt_id)
    assert (payment.in_person, payment.status.value) == ("terminal", "approved")
    printed = client.get(sold.headers["Location"]).get_data(as_text=True)
    assert printed.count('class="print-ticket"') == 2 and all(t.code in printed for t in order.tickets)
    mail = session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "walk.in@example.com")).one()
    assert mail.event_id == event.id
    assert session.scalar(select(AuditLog.after).where(AuditLog.action == "order.box_office_sale"))["paid_with"] \
        == "terminal"

    # Two more sales, past the per-buyer limit of 2: the clerk's sales are not the clerk's purchases.
    assert _sell(client, event.id, tier.id, 2).status_code == 303
    assert session.scalar(select(func.count()).select_from(OutboxMessage)
                          .where(OutboxMessage.recipient == clerk.email)) == 0  # no e-mail typed: none sent
    too_many = _sell(client, event.id, tier.id, 2)
    assert too_many.status_code == 409 and "1 left" in too_many.get_data(as_text=True).replace("only ", "")
    assert _sell(client, event.id, tier.id, 1, "cheque").status_code == 400
    assert _sell(client, event.id, tier.id, 0).status_code == 400
    assert _sell(client, event.id, 999999, 1).status_code == 400
    assert client.post(f"/admin/box-office/events/{event.id}",
                       data={"csrf_token": _csrf(client, "/admin/box-office"), f"tier-{tier.id}": "two",
                             "paid_with": "cash"}).status_code == 400
    assert_consistent(session, event.id)

    # The money adds up: the dashboard counts door sales, and My tickets is not the clerk's stock.
    session.expire_all()
    assert reports.dashboard(session, session.get(type(event), event.id)).revenue_minor == 4 * tier.price_minor
    assert "Door Night" not in client.get("/orders").get_data(as_text=True)


def test_a_door_sale_is_given_back_at_the_counter_not_through_the_gateway(client, factory, session):
    event = factory.ga_event(capacity=3)
    clerk = factory.user("till@example.com")
    order = box_office.sell(session, clerk_id=clerk.id, event_id=event.id, counts={event.tiers[0].id: 1},
                            paid_with="cash")
    session.commit()
    with pytest.raises(InvalidRequest, match="paid in person"):
        refunds.request_refund(session, order_id=order.id, reason="changed mind", actor_id=None, whole=True)
    session.rollback()
    # Nor is it the clerk's to cancel as a buyer.
    with pytest.raises(NotFound):
        checkout.cancel_order(session, make_gateway(), order_id=order.id, user_id=clerk.id, reason="x")
    session.rollback()
    checkout.cancel_order(session, make_gateway(), order_id=order.id, user_id=None, reason="cash back",
                          refund=False)
    session.commit()
    assert_consistent(session, event.id)
    assert session.scalar(select(func.count()).select_from(Unit).where(Unit.event_id == event.id,
                                                                       Unit.status == "available")) == 3


def test_the_counter_and_online_buyers_share_the_places_under_one_lock(app, factory, session):
    """Eight buyers reserve online and eight sales go through four clerks, two places each, for twenty places:
    ten succeed, the others are told how many are left, and every place is held or sold once."""
    event = factory.ga_event(capacity=20, title="Contended", per_order_limit=2)
    tier_id, event_id = event.tiers[0].id, event.id
    buyers = [factory.user(f"online{i}@example.com").id for i in range(8)]
    clerks = [factory.user(f"counter{i}@example.com").id for i in range(4)]

    def work(i):
        try:
            if i < 8:
                inventory.reserve(user_id=buyers[i], event_id=event_id, quantities={tier_id: 2})
                return "held"
            box_office.sell(db.session, clerk_id=clerks[i % 4], event_id=event_id, counts={tier_id: 2},
                            paid_with="cash")
            db.session.commit()
            return "sold"
        except NotEnoughLeft:
            db.session.rollback()
            return "refused"
        except BookingError as other:
            db.session.rollback()
            return f"error {other}"

    outcomes = race(app, 16, work)
    assert outcomes.count("held") + outcomes.count("sold") == 10, outcomes
    assert outcomes.count("refused") == 6, outcomes
    session.expire_all()
    taken = session.scalar(select(func.count()).select_from(Unit).where(Unit.event_id == event_id,
                                                                        Unit.status.in_(("held", "sold"))))
    assert taken == 20
    assert session.scalar(select(func.count()).select_from(Order).where(Order.event_id == event_id)) \
        == outcomes.count("sold")
    assert_consistent(session, event_id)


@pytest.mark.parametrize("role", ["door", "viewer"])
def test_door_and_viewer_cannot_sell(client, world, role):
    alpha, _ = world
    login(client, alpha.members[role].email)
    assert client.get("/admin/box-office").status_code == 403
    assert client.get(f"/admin/box-office/events/{alpha.ids['event_id']}").status_code == 403
    csrf = _csrf(client, "/admin/")
    assert client.post(f"/admin/box-office/events/{alpha.ids['event_id']}",
                       data={"csrf_token": csrf, f"tier-{alpha.ids['tier_id']}": "1",
                             "paid_with": "cash"}).status_code == 403
    assert "Box office" not in client.get("/admin/").get_data(as_text=True)


def test_the_box_office_finds_and_resends_but_cannot_refund_or_edit(client, world, session):
    alpha, _ = world
    login(client, alpha.members["box_office"].email)
    assert "Box office" in client.get("/admin/").get_data(as_text=True)
    found = client.get("/admin/orders?q=Buyer of Alpha").get_data(as_text=True)
    assert f"#{alpha.ids['order_id']}" in found
    csrf = _csrf(client, "/admin/box-office")
    order_id = alpha.ids["order_id"]
    assert client.post(f"/admin/orders/{order_id}/resend", data={"csrf_token": csrf}).status_code == 303
    resent = session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "buyer-alpha@example.com",
                                                         OutboxMessage.template == "order_confirmation")).all()
    assert resent
    assert session.scalar(select(AuditLog.after).where(AuditLog.action == "order.resend_tickets")) \
        == {"recipient": "buyer-alpha@example.com"}
    assert client.post(f"/admin/orders/{order_id}/refund", data={"csrf_token": csrf}).status_code == 403
    assert client.post(f"/admin/orders/{order_id}/cancel", data={"csrf_token": csrf}).status_code == 403
    assert client.get(f"/admin/events/{alpha.ids['event_id']}/edit").status_code == 403
    assert client.post(f"/admin/events/{alpha.ids['event_id']}/tiers", data={"csrf_token": csrf}).status_code == 403


def test_the_box_office_reaches_none_of_another_organisers_ids(client, world):
    alpha, bravo = world
    login(client, alpha.members["box_office"].email)
    csrf = _csrf(client, "/admin/box-office")
    assert "Bravo Night" not in client.get("/admin/box-office").get_data(as_text=True)
    assert client.get(f"/admin/box-office/events/{bravo.ids['event_id']}").status_code == 404
    assert client.post(f"/admin/box-office/events/{bravo.ids['event_id']}",
                       data={"csrf_token": csrf, f"tier-{bravo.ids['tier_id']}": "1",
                             "paid_with": "cash"}).status_code == 404
    assert client.get(f"/admin/box-office/orders/{bravo.ids['order_id']}/tickets").status_code == 404
    assert client.post(f"/admin/orders/{bravo.ids['order_id']}/resend", data={"csrf_token": csrf}).status_code == 404
    # Another organiser's tier id on this organiser's event: refused, nothing sold.
    refused = client.post(f"/admin/box-office/events/{alpha.ids['event_id']}",
                          data={"csrf_token": csrf, f"tier-{bravo.ids['tier_id']}": "1", "paid_with": "cash"})
    assert refused.status_code == 400
