"""Tax-exclusive prices: the organiser enters a net price, the buyer sees net, tax and gross before paying, and
what is charged, the order, its invoice and its credit notes agree to the minor unit (rounded per ticket)."""
from __future__ import annotations

import re

from sqlalchemy import select

from tests.factories import GOOD
from tests.support import admin_client, assert_consistent, reserve_general, sign_in
from webapp.models import Event, EventStatus, Order, PaymentAttempt, Tier
from webapp.services.admin import events as admin_events
from webapp.services.admin import orders as admin_orders
from webapp.services.money import checkout, invoices, tax


def test_the_tax_added_on_top_is_the_tax_every_document_finds_inside_the_gross():
    # Exhaustive over a range of net prices and the rates in use: working back from the gross, rounded per
    # ticket, gives back the tax that was added, so net + tax = gross on every line.
    for rate_bp in (1, 550, 700, 1000, 1900, 2000, 2100, 2500, 10000):
        for net in range(0, 20001):
            gross = tax.gross_of(net, rate_bp, inclusive=False)
            assert tax.tax_in(gross, rate_bp) == gross - net, (net, rate_bp)
            assert tax.price_entered(gross, rate_bp, inclusive=False) == net
    assert tax.tax_on(1003, 1900) == 191  # 190.57
    assert tax.tax_on(1250, 2000) == 250 and tax.tax_on(25, 2000) == 5
    assert tax.tax_on(5, 1000) == 1  # 0.5 rounds away from zero, as PostgreSQL's round()
    assert tax.totals([(1900, 1194)] * 3) == tax.Totals(3 * 1003, 573, 3582)


def _exclusive_event(session, factory, admin):
    event = factory.event(status=EventStatus.DRAFT, title="Net Prices")
    session.commit()
    exclusive = admin_events.add_tier(session, actor_id=admin.id, event_id=event.id, seated=False, name="Net",
                                      price_minor=1003, colour="#3b82f6", capacity=10, tax_rate_bp=1900,
                                      tax_inclusive=False)
    inclusive = admin_events.add_tier(session, actor_id=admin.id, event_id=event.id, seated=False, name="Gross",
                                      price_minor=2000, colour="#b45309", capacity=10, tax_rate_bp=700)
    session.get(Event, event.id).status = EventStatus.ON_SALE
    session.commit()
    return event, exclusive, inclusive


def test_a_net_price_sells_at_net_plus_tax_and_every_document_agrees(client, session, factory, gateway):
    admin = factory.user(is_admin=True)
    event, exclusive, inclusive = _exclusive_event(session, factory, admin)
    assert (exclusive.price_minor, exclusive.tax_inclusive) == (1194, False)  # 10.03 + 1.91
    assert (inclusive.price_minor, inclusive.tax_inclusive) == (2000, True)
    buyer = factory.user()
    hold = reserve_general(session, user_id=buyer.id, event_id=event.id,
                           quantities={exclusive.id: 3, inclusive.id: 1})
    session.commit()
    # Before paying: net, tax and gross, as the invoice will state them.
    sign_in(client, buyer.id)
    page = client.get(f"/holds/{hold.id}").get_data(as_text=True)
    net, tax_line = 3 * 1003 + (2000 - 131), 573 + 131
    assert re.search(r'data-money="net">€%s<' % re.escape(f"{net / 100:,.2f}"), page), page
    assert re.search(r'data-money="tax">€%s<' % re.escape(f"{tax_line / 100:.2f}"), page)
    assert "€55.82" in page  # 3 x 11.94 + 20.00, the total and the pay button

    paid = checkout.pay(session, gateway, hold_id=hold.id, user_id=buyer.id, idempotency_key="k-tax-0000000001",
                        card=GOOD, billing_name="Net Buyer Ltd", billing_address="1 Road")
    order = session.get(Order, paid.order_id)
    charged = session.get(PaymentAttempt, order.payment_attempt_id).amount_minor
    assert charged == order.total_minor == 5582
    invoice = invoices.invoice_of(session, order.id)
    assert invoice.gross_minor == 5582
    # Rounded per ticket: 3 x 1.91, not 19 % of 35.82 worked back (5.72).
    assert invoice.lines == [{"rate_bp": 700, "net": 1869, "tax": 131, "gross": 2000},
                             {"rate_bp": 1900, "net": 3009, "tax": 573, "gross": 3582}]

    # One net-priced ticket given back: its credit note credits its own net and tax.
    ticket = next(t for t in order.tickets if t.tier_id == exclusive.id)
    admin_orders.refund(session, gateway, actor_id=admin.id, order_id=order.id, reason="Seat broken",
                        ticket_ids=[ticket.id])
    session.commit()
    note = invoices.documents_of(session, order.id)[-1]
    assert (note.kind, note.gross_minor, note.lines) == (
        "credit_note", 1194, [{"rate_bp": 1900, "net": 1003, "tax": 191, "gross": 1194}])
    assert_consistent(session, event.id)


def test_the_admin_enters_a_net_price_and_sees_it_again(client, session, factory):
    event = factory.event(status=EventStatus.DRAFT)
    session.commit()
    client, _, token = admin_client(client, factory)
    headers = {"X-CSRFToken": token, "HX-Request": "true"}
    made = client.post(f"/admin/events/{event.id}/tiers", headers=headers, data={
        "kind": "general", "name": "Net", "price": "10.03", "capacity": "5", "colour": "#3b82f6",
        "tax_rate": "19", "tax_exclusive": "y"})
    assert made.status_code == 204, made.get_data(as_text=True)[:500]
    tier = session.scalars(select(Tier).where(Tier.event_id == event.id)).one()
    assert (tier.price_minor, tier.tax_rate_bp, tier.tax_inclusive) == (1194, 1900, False)
    page = client.get(f"/admin/events/{event.id}/tiers").get_data(as_text=True)
    assert 'value="10.03"' in page and "buyers pay €11.94 with tax" in page
    # A new rate reprices the gross from the same net; unticked, the price entered is the gross.
    saved = client.post(f"/admin/events/{event.id}/tiers/{tier.id}", headers=headers, data={
        f"t{tier.id}-name": "Net", f"t{tier.id}-price": "10.03", f"t{tier.id}-capacity": "5",
        f"t{tier.id}-colour": "#3b82f6", f"t{tier.id}-tax_rate": "7", f"t{tier.id}-tax_exclusive": "y"})
    assert saved.status_code == 200 and "Saved." in saved.get_data(as_text=True)
    session.expire_all()
    assert session.get(Tier, tier.id).price_minor == 1003 + 70
    client.post(f"/admin/events/{event.id}/tiers/{tier.id}", headers=headers, data={
        f"t{tier.id}-name": "Net", f"t{tier.id}-price": "12.00", f"t{tier.id}-capacity": "5",
        f"t{tier.id}-colour": "#3b82f6", f"t{tier.id}-tax_rate": "7"})
    session.expire_all()
    assert (session.get(Tier, tier.id).price_minor, session.get(Tier, tier.id).tax_inclusive) == (1200, True)
