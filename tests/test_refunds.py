"""Refunds whole and in part, invoices and credit notes: services, pages, API, bad input."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select, text

from tests.support import admin_client, assert_consistent, buy, login
from webapp.models import (
    Event,
    GatewayCharge,
    GatewayRefund,
    Order,
    OrderStatus,
    OutboxMessage,
    Refund,
    Ticket,
    TicketStatus,
    Unit,
    UnitStatus,
)
from webapp.services.admin import checkin
from webapp.services.admin import orders as admin_orders
from webapp.services.errors import InvalidRequest, OrderNotCancellable
from webapp.services.messaging import mail
from webapp.services.money import checkout, invoices, refunds


@pytest.fixture
def sale(session, factory):
    """A seated event, an admin, and an order of two seats at €45.00 with a billing name (so an invoice)."""
    event = factory.seated_event(rows=2, seats_per_row=5, title="Refund Revue")
    session.execute(text("UPDATE tiers SET tax_rate_bp = 2000 WHERE event_id = :e"), {"e": event.id})
    session.commit()
    admin = factory.user(name="Ada Admin", is_admin=True)
    order = buy(session, event, factory.user(name="Bea Buyer"), seats=factory.seat_ids(event)[:2])
    return event, admin, order


def invoiced_order(session, factory, event):
    return factory.order(event, factory.user(name="Bea Buyer"), seats=factory.seat_ids(event)[2:4],
                         billing_name="Bea Buyer Ltd", billing_address="1 Quay Street, Dublin")


def refund(session, gateway, admin, order, **what) -> Refund:
    return admin_orders.refund(session, gateway, actor_id=admin.id, order_id=order.id, reason="Seat broken", **what)


def test_refunding_one_ticket_of_two_voids_it_frees_its_seat_and_gives_back_its_price(session, factory, gateway,
                                                                                        sale):
    event, admin, order = sale
    first, second = order.tickets
    made = refund(session, gateway, admin, order, ticket_ids=[first.id])
    assert (made.state, made.amount_minor, made.tries) == ("succeeded", 4500, 1)
    session.expire_all()
    assert session.get(Ticket, first.id).status == TicketStatus.VOID
    assert session.get(Ticket, second.id).status == TicketStatus.VALID
    assert session.get(Order, order.id).status == OrderStatus.CONFIRMED
    assert session.get(Unit, first.unit_id).status == UnitStatus.AVAILABLE
    charge = session.scalars(select(GatewayCharge)).one()
    assert (charge.status, charge.refunded_minor) == ("captured", 4500)
    assert session.scalars(select(GatewayRefund.idempotency_key)).one() == made.idempotency_key
    money = refunds.balance(session, session.get(Order, order.id))
    assert (money.paid_minor, money.refunded_minor, money.pending_minor, money.outstanding_minor) == (9000, 4500, 0,
                                                                                                      4500)
    # Void at the door; the other ticket still admits.
    assert checkin.check_in(session, event_id=event.id, code=first.code, staff_id=admin.id).outcome == "cancelled"
    assert checkin.check_in(session, event_id=event.id, code=second.code, staff_id=admin.id).outcome == "valid"
    mailed = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "refund_issued")).one()
    assert "€45.00" in mailed.body and first.code in mailed.body and "other tickets stay valid" in mailed.body
    assert_consistent(session, event.id)


def test_an_amount_then_the_rest_adds_up_and_the_last_ticket_takes_what_is_left(session, factory, gateway, sale):
    event, admin, order = sale
    refund(session, gateway, admin, order, amount_minor=1000)
    session.expire_all()
    assert all(t.status == TicketStatus.VALID for t in session.get(Order, order.id).tickets)
    refund(session, gateway, admin, order, whole=True)
    session.expire_all()
    done = session.get(Order, order.id)
    assert done.status == OrderStatus.REFUNDED
    assert [r.amount_minor for r in refunds.refunds_of(session, order.id)] == [1000, 8000]
    assert refunds.balance(session, done).outstanding_minor == 0
    assert session.scalars(select(GatewayCharge.refunded_minor)).one() == 9000
    assert_consistent(session, event.id)


@pytest.mark.parametrize("what, error, message", [
    (dict(amount_minor=9001), InvalidRequest, "more than is left"),
    (dict(amount_minor=-5), InvalidRequest, "more than zero"),
    (dict(amount_minor=0), InvalidRequest, "more than zero"),
    (dict(amount_minor=9000), InvalidRequest, "refund the whole order"),
    (dict(ticket_ids=[]), InvalidRequest, "at least one ticket"),
    (dict(ticket_ids=[987654]), InvalidRequest, "is not part of order"),
    (dict(), InvalidRequest, "one of them"),
    (dict(amount_minor=100, whole=True), InvalidRequest, "one of them"),
])
def test_bad_refunds_are_refused_with_nothing_changed(session, factory, gateway, sale, what, error, message):
    event, admin, order = sale
    with pytest.raises(error, match=message):
        refund(session, gateway, admin, order, **what)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Refund)) == 0
    assert session.scalars(select(GatewayCharge.refunded_minor)).one() == 0
    assert all(t.status == TicketStatus.VALID for t in session.get(Order, order.id).tickets)
    assert_consistent(session, event.id)


def test_a_ticket_of_another_order_and_a_ticket_refunded_already_are_refused(session, factory, gateway, sale):
    event, admin, order = sale
    other = buy(session, event, factory.user(), seats=factory.seat_ids(event)[5:6])
    with pytest.raises(InvalidRequest, match=f"is not part of order #{order.id}"):
        refund(session, gateway, admin, order, ticket_ids=[other.tickets[0].id])
    session.rollback()
    refund(session, gateway, admin, order, ticket_ids=[order.tickets[0].id])
    with pytest.raises(OrderNotCancellable, match="refunded or cancelled already"):
        refund(session, gateway, admin, order, ticket_ids=[order.tickets[0].id])
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Refund)) == 1
    assert_consistent(session, event.id)


def test_a_refund_the_gateway_cannot_reach_stays_requested_and_the_sweep_makes_it_once(session, factory, gateway,
                                                                                      sale, monkeypatch):
    event, admin, order = sale
    real = gateway.refund

    def unreachable(*args, **kwargs):
        raise ConnectionError("provider unreachable")

    monkeypatch.setattr(gateway, "refund", unreachable)
    made = refund(session, gateway, admin, order, ticket_ids=[order.tickets[0].id])
    assert (made.state, made.tries) == ("requested", 1)
    session.expire_all()
    # The ticket is void already: the refund is promised, only the money is on its way.
    assert session.get(Ticket, order.tickets[0].id).status == TicketStatus.VOID
    assert refunds.balance(session, session.get(Order, order.id)).pending_minor == 4500
    monkeypatch.setattr(gateway, "refund", real)
    assert refunds.retry_requested_refunds(session, gateway, older_than_seconds=0) == 1
    assert refunds.retry_requested_refunds(session, gateway, older_than_seconds=0) == 0
    session.expire_all()
    assert session.get(Refund, made.id).state == "succeeded"
    assert session.scalars(select(GatewayCharge.refunded_minor)).one() == 4500
    assert_consistent(session, event.id)


def test_a_refund_retried_under_its_key_gives_back_nothing_more(session, gateway, sale):
    event, admin, order = sale
    made = refund(session, gateway, admin, order, amount_minor=700)
    reference = session.scalars(select(GatewayCharge.reference)).one()
    gateway.refund(reference, 700, idempotency_key=made.idempotency_key)
    assert session.scalars(select(GatewayCharge.refunded_minor)).one() == 700
    assert session.scalar(select(func.count()).select_from(GatewayRefund)) == 1


def test_a_refund_the_gateway_refuses_fails_and_counts_for_nothing(session, gateway, sale):
    event, admin, order = sale
    # The provider's side gave back everything already (behind our back): ours is refused for good.
    reference = session.scalars(select(GatewayCharge.reference)).one()
    gateway.refund(reference, 9000, idempotency_key="elsewhere")
    made = refund(session, gateway, admin, order, amount_minor=500)
    assert made.state == "failed" and "to give back" in made.error
    assert refunds.balance(session, session.get(Order, order.id)).outstanding_minor == 9000


def test_a_refund_before_the_capture_captures_first_and_gives_back_only_its_part(session, factory, gateway, sale,
                                                                                 monkeypatch):
    event, admin, _ = sale
    monkeypatch.setattr(checkout, "_capture", lambda *held_back: None)  # the capture has not happened yet
    order = buy(session, event, factory.user(), seats=factory.seat_ids(event)[6:8], gateway=gateway)
    charge = session.scalars(select(GatewayCharge).where(GatewayCharge.amount_minor == 9000)
                             .order_by(GatewayCharge.id.desc())).first()
    assert charge.status == "authorised"
    refund(session, gateway, admin, order, ticket_ids=[order.tickets[0].id])
    session.refresh(charge)
    assert (charge.status, charge.refunded_minor) == ("captured", 4500)
    assert_consistent(session, event.id)


def test_the_buyer_cancels_within_the_policy_and_the_fee_is_kept(session, factory, gateway, sale):
    event, admin, order = sale
    session.execute(text("UPDATE events SET cancel_until_hours = 24, cancel_fee_minor = 200, cancel_fee_percent = 10"
                         " WHERE id = :e"), {"e": event.id})
    session.commit()
    checkout.cancel_by_buyer(session, gateway, order_id=order.id, user_id=order.user_id)
    session.commit()
    made = refunds.refunds_of(session, order.id)
    assert [(r.amount_minor, r.state) for r in made] == [(9000 - 200 - 900, "succeeded")]
    assert session.get(Order, order.id).status == OrderStatus.REFUNDED
    assert session.scalars(select(GatewayCharge.refunded_minor)).one() == 7900
    assert_consistent(session, event.id)


def test_the_buyer_cannot_cancel_after_the_policys_deadline(session, factory, gateway, sale):
    event, admin, order = sale
    session.execute(text("UPDATE events SET cancel_until_hours = 24 * 11 WHERE id = :e"), {"e": event.id})
    session.commit()
    with pytest.raises(OrderNotCancellable, match="until 264 hours before the start"):
        checkout.cancel_by_buyer(session, gateway, order_id=order.id, user_id=order.user_id)
    session.rollback()
    assert session.get(Order, order.id).status == OrderStatus.CONFIRMED
    assert session.scalar(select(func.count()).select_from(Refund)) == 0


def test_an_order_with_a_billing_name_gets_an_invoice_with_net_tax_and_gross_per_rate(session, factory, gateway,
                                                                                     sale):
    event, admin, plain = sale
    assert invoices.invoice_of(session, plain.id) is None  # no billing name, no invoice
    order = invoiced_order(session, factory, event)
    invoice = invoices.invoice_of(session, order.id)
    assert (invoice.label, invoice.gross_minor) == ("INV-000001", 9000)
    # 20 % included in €90.00: €75.00 net, €15.00 tax.
    assert invoice.lines == [{"rate_bp": 2000, "net": 7500, "tax": 1500, "gross": 9000}]
    assert invoices.line(2000, 9000) == invoice.lines[0]
    # The confirmation mail carries it.
    message = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "order_confirmation")
                              .order_by(OutboxMessage.id.desc())).first()
    names = [f.filename for f in mail.attachments(session, message)]
    assert "invoice-INV-000001.pdf" in names


def test_a_refund_of_an_invoiced_order_issues_a_credit_note_naming_the_invoice(session, factory, gateway, sale):
    event, admin, _ = sale
    order = invoiced_order(session, factory, event)
    refund(session, gateway, admin, order, ticket_ids=[order.tickets[0].id])
    refund(session, gateway, admin, order, amount_minor=1000)
    docs = invoices.documents_of(session, order.id)
    assert [(d.kind, d.label, d.gross_minor) for d in docs] == [
        ("invoice", "INV-000001", 9000), ("credit_note", "CN-000001", 4500), ("credit_note", "CN-000002", 1000)]
    assert docs[1].credits_invoice_id == docs[0].id
    assert docs[1].lines == [invoices.line(2000, 4500)]
    filename, pdf = invoices.document_pdf(session, order, docs[1].id)
    assert filename == "credit-note-CN-000001.pdf" and pdf.startswith(b"%PDF")
    message = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "refund_issued")
                              .order_by(OutboxMessage.id)).first()
    assert [f.filename for f in mail.attachments(session, message)] == ["credit-note-CN-000001.pdf"]
    assert_consistent(session, event.id)


def test_billing_required_by_the_organiser_refuses_a_checkout_without_it(session, factory, gateway):
    event = factory.ga_event(capacity=5)
    session.execute(text("UPDATE events SET billing_required = true WHERE id = :e"), {"e": event.id})
    session.commit()
    with pytest.raises(InvalidRequest, match="billing name and address"):
        factory.order(event)
    session.rollback()
    order = factory.order(event, billing_name="Cy", billing_address="2 Lane")
    assert invoices.invoice_of(session, order.id).number == 1


def test_the_admin_refunds_one_ticket_on_the_order_page_and_the_buyer_sees_it(app, client, session, factory, sale):
    event, _, _ = sale
    order = invoiced_order(session, factory, event)
    client, admin, token = admin_client(client, factory)
    page = client.get(f"/admin/orders/{order.id}").get_data(as_text=True)
    assert "Outstanding" in page and "Refund the tickets ticked" in page
    answer = client.post(f"/admin/orders/{order.id}/refund", headers={"HX-Request": "true", "X-CSRFToken": token},
                         data={"refund-what": "tickets", "refund-tickets": [str(order.tickets[0].id)],
                               "refund-reason": "Broken seat"})
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    body = answer.get_data(as_text=True)
    assert body.lstrip().startswith('<section class="card" id="refunds">')
    assert "succeeded" in body and "Credit note CN-000001" in body
    # The cancel form comes along out of band, offering what is left.
    assert 'id="order-cancel" hx-swap-oob="true"' in body and "Cancel and refund €45.00" in body
    # Bad input: a clear 400, nothing changed.
    for data, words in [({"what": "amount", "amount": "-3", "reason": "x"}, "from 0.01"),
                        ({"what": "amount", "amount": "999", "reason": "x"}, "more than is left"),
                        ({"what": "tickets", "reason": "x"}, "Tick the tickets"),
                        ({"what": "tickets", "tickets": ["12345"], "reason": "x"}, "is not part of order"),
                        ({"what": "tickets", "tickets": [str(order.tickets[0].id)], "reason": "x"}, "already"),
                        ({"what": "whole", "reason": ""}, "Say why")]:
        data = {f"refund-{k}": v for k, v in data.items()}
        bad = client.post(f"/admin/orders/{order.id}/refund", headers={"HX-Request": "true", "X-CSRFToken": token},
                          data=data)
        assert bad.status_code in (400, 409) and words in bad.get_data(as_text=True), (data, bad.status_code)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Refund)) == 1

    client.post("/logout", headers={"X-CSRFToken": token})
    login(client, order.user.email)
    mine = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "€45.00 of this order has been refunded" in mine and "Credit note CN-000001" in mine
    link = re.search(r'href="(/orders/\d+/documents/\d+\.pdf)"[^>]*>Credit note', mine).group(1)
    pdf = client.get(link)
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    # Someone else's document is not found.
    assert client.get(f"/orders/{order.id}/documents/999999.pdf").status_code == 404


def test_the_api_refunds_tickets_or_an_amount_and_answers_problems_for_bad_input(app, client, session, factory, sale):
    from webapp.services.people import api_tokens

    event, admin, order = sale
    token = api_tokens.create(session, user_id=admin.id, is_admin=True, name="t", scope="admin").secret
    session.commit()
    auth = {"Authorization": f"Bearer {token}"}
    url = f"/api/v1/admin/orders/{order.id}/refund"
    ok = client.post(url, json={"reason": "Late start", "amount_minor": 1500}, headers=auth)
    assert ok.status_code == 200, ok.get_json()
    assert (ok.get_json()["refunded_minor"], ok.get_json()["outstanding_minor"]) == (1500, 7500)
    for body, status in [({"reason": "x", "amount_minor": -1}, 400), ({"reason": "x", "amount_minor": 99999}, 400),
                         ({"reason": "x", "ticket_ids": [424242]}, 400), ({"reason": "x", "amount_minor": "1"}, 400)]:
        bad = client.post(url, json=body, headers=auth)
        assert bad.status_code == status and bad.content_type == "application/problem+json", (body, bad.get_json())
    whole = client.post(url, json={"reason": "Cancelled show"}, headers=auth).get_json()
    assert (whole["status"], whole["refunded_minor"], whole["outstanding_minor"]) == ("refunded", 9000, 0)
    assert client.post(url, json={"reason": "again"}, headers=auth).status_code == 409
    assert_consistent(session, event.id)


def test_the_hold_page_asks_for_billing_when_the_organiser_requires_it(app, client, session, factory):
    from tests.support import csrf_token, sign_in

    event = factory.ga_event(capacity=5)
    session.execute(text("UPDATE events SET billing_required = true WHERE id = :e"), {"e": event.id})
    session.commit()
    buyer = factory.user()
    hold = factory.hold(event, buyer)
    sign_in(client, buyer.id)
    page = client.get(f"/holds/{hold.id}").get_data(as_text=True)
    assert "The organiser asks for a billing name and address" in page
    token = csrf_token(client, f"/holds/{hold.id}")
    card = {"name": "A", "number": "4242424242424242", "expiry": "12/30", "cvc": "123",
            "idempotency_key": "k" * 24}
    refused = client.post(f"/holds/{hold.id}/pay", data=card, headers={"HX-Request": "true", "X-CSRFToken": token})
    assert refused.status_code == 400 and "billing name and address" in refused.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Order)) == 0
    paid = client.post(f"/holds/{hold.id}/pay", data={**card, "billing_name": "Ada Ltd",
                                                      "billing_address": "1 Main St"},
                       headers={"HX-Request": "true", "X-CSRFToken": token})
    assert paid.status_code == 204, paid.get_data(as_text=True)[:300]
    order = session.scalars(select(Order)).one()
    assert (order.billing_name, order.billing_address) == ("Ada Ltd", "1 Main St")
    assert invoices.invoice_of(session, order.id).label == "INV-000001"


def test_a_partial_refund_is_told_to_the_webhooks_when_it_settles(session, factory, gateway, sale):
    from webapp.models import WebhookEndpoint

    event, admin, order = sale
    session.add(WebhookEndpoint(url="https://hooks.example.com/r", secret="whsec_t", organiser_id=1,
                                event_types=["refund.succeeded", "refund.failed", "order.refunded"]))
    session.commit()
    made = refund(session, gateway, admin, order, ticket_ids=[order.tickets[0].id])
    rows = session.execute(text("SELECT event_type, body FROM webhook_deliveries ORDER BY id")).all()
    assert [r.event_type for r in rows] == ["refund.succeeded"]
    assert f'"refund_id": {made.id}' in rows[0].body and f"[{order.tickets[0].id}]" in rows[0].body


def test_the_buyers_cancel_page_says_what_comes_back_and_the_fee_kept(client, session, factory, sale):
    from tests.support import sign_in

    event, admin, order = sale
    session.execute(text("UPDATE events SET cancel_until_hours = 48, cancel_fee_minor = 500 WHERE id = :e"),
                    {"e": event.id})
    session.commit()
    sign_in(client, order.user_id)
    page = client.get(f"/orders/{order.id}/cancel").get_data(as_text=True)
    assert "€85.00 goes back to your card (the organiser keeps a cancellation fee of €5.00)" in page
    assert "until 48 hours before the start" in page


def test_money_by_state_under_the_simulated_gateway_follows_captures_and_refunds(session, factory, gateway, sale,
                                                                                monkeypatch):
    """The dashboard reads our rows (payment_attempts.captured_at, refunds) with either gateway."""
    from webapp.services.admin import reports

    event, admin, order = sale  # captured: 90.00
    monkeypatch.setattr(checkout, "_capture", lambda *held_back: None)
    held = buy(session, event, factory.user(), seats=factory.seat_ids(event)[6:8], gateway=gateway)
    monkeypatch.undo()
    money = reports.dashboard(session, session.get(Event, event.id)).money
    assert (money.authorised_minor, money.captured_minor, money.refunded_minor) == (9000, 9000, 0)
    # Half of the authorised order given back: the gateway captures it first, and so do our rows.
    refund(session, gateway, admin, held, ticket_ids=[held.tickets[0].id])
    money = reports.dashboard(session, session.get(Event, event.id)).money
    assert (money.authorised_minor, money.captured_minor, money.refunded_minor, money.outstanding_minor) == (
        0, 18000, 4500, 13500)
    assert_consistent(session, event.id)
