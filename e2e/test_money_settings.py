"""Money pages in a real browser: the buyer sees net, tax and total of a tax-exclusive tier before paying; the owner
edits the payment settings; a disputed order shows its flag."""
from __future__ import annotations

from playwright.sync_api import Page, expect
from sqlalchemy import text

from e2e.helpers import log_in
from tests.support import reserve_general
from webapp.models import Event, EventStatus
from webapp.services.admin import events as admin_events


def test_net_prices_show_net_tax_and_total_before_paying(page: Page, factory, session, shot):
    page.set_viewport_size({"width": 1280, "height": 900})
    admin = factory.user(name="Ada Admin", is_admin=True)
    event = factory.event(status=EventStatus.DRAFT, title="Net Price Nights")
    session.commit()
    tier = admin_events.add_tier(session, actor_id=admin.id, event_id=event.id, seated=False, name="Standing",
                                 price_minor=1003, colour="#3b82f6", capacity=10, tax_rate_bp=1900,
                                 tax_inclusive=False)
    session.get(Event, event.id).status = EventStatus.ON_SALE
    session.commit()
    buyer = factory.user(name="Bea Buyer")
    hold = reserve_general(session, user_id=buyer.id, event_id=event.id, quantities={tier.id: 3})
    session.commit()
    log_in(page, buyer.email)
    page.goto(f"/holds/{hold.id}")
    expect(page.locator("[data-money=net]")).to_have_text("€30.09")
    expect(page.locator("[data-money=tax]")).to_have_text("€5.73")
    expect(page.locator("#hold-total")).to_have_text("€35.82")
    shot("buyer-hold-net-tax-total")


def test_the_owner_sets_invoice_prefixes_and_sees_a_disputed_order(page: Page, factory, session, shot):
    page.set_viewport_size({"width": 1280, "height": 900})
    admin = factory.user(name="Ada Admin", is_admin=True)
    event = factory.ga_event(capacity=5, title="Disputed Dances")
    order = factory.order(event, factory.user(name="Dee Disputer"))
    session.execute(text("UPDATE orders SET disputed_at = now() WHERE id = :o"), {"o": order.id})
    session.execute(text(
        "INSERT INTO payment_disputes (provider_id, payment_reference, payment_attempt_id, event_id, amount_minor,"
        " currency, reason, status) SELECT 'dp_e2e_0001', p.gateway_reference, p.id, :e, p.amount_minor, 'EUR',"
        " 'fraudulent', 'needs_response' FROM payment_attempts p WHERE p.id = :p"),
        {"e": event.id, "p": order.payment_attempt_id})
    session.commit()
    log_in(page, admin.email)
    page.goto("/admin/payment-settings")
    page.get_by_label("Invoice number prefix").fill("ACME-2026-")
    page.get_by_label("Credit note number prefix").fill("ACME-CN-2026-")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Payment settings saved.")).to_be_visible()
    expect(page.get_by_label("Invoice number prefix")).to_have_value("ACME-2026-")
    shot("admin-payment-settings")
    page.goto("/admin/disputes")
    expect(page.locator("table")).to_contain_text("dp_e2e_0001")
    expect(page.locator("table")).to_contain_text("open")
    shot("admin-disputes")
    page.goto(f"/admin/orders/{order.id}")
    expect(page.get_by_text("A chargeback is open or was lost")).to_be_visible()
    shot("admin-order-disputed")
