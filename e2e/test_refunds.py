"""Refunds in a real browser: the admin refunds one ticket of two, the buyer sees it and downloads the credit note."""
from __future__ import annotations

from playwright.sync_api import Page, expect
from sqlalchemy import text

from e2e.helpers import log_in


def test_admin_refunds_one_ticket_of_two_and_the_buyer_downloads_the_credit_note(page: Page, factory, session,
                                                                                 shot):
    page.set_viewport_size({"width": 1280, "height": 900})
    event = factory.seated_event(rows=2, seats_per_row=6, title="Tidewater Strings")
    session.execute(text("UPDATE tiers SET tax_rate_bp = 2000 WHERE event_id = :e"), {"e": event.id})
    session.commit()
    buyer = factory.user(name="Bea Buyer")
    order = factory.order(event, buyer, seats=factory.seat_ids(event)[:2], billing_name="Bea Buyer Ltd",
                          billing_address="4 Quay Street, Cork")
    first, second = order.tickets
    admin = factory.user(name="Ada Admin", is_admin=True)

    log_in(page, admin.email)
    page.goto(f"/admin/orders/{order.id}")
    refunds = page.locator("#refunds")
    expect(refunds).to_contain_text("Outstanding")
    page.get_by_label(f"{first.tier.name} · {first.unit.place_label}", exact=False).check()
    page.get_by_label("Why (told to the buyer)").fill("Broken seat")
    page.get_by_role("button", name="Refund the tickets ticked").click()
    expect(refunds.get_by_text("succeeded", exact=True)).to_be_visible()
    expect(refunds).to_contain_text("Credit note CN-000001")
    expect(refunds).to_contain_text("€45.00")
    expect(page.get_by_role("button", name="Cancel and refund €45.00")).to_be_visible()
    shot("admin-refund-one-ticket")
    page.goto(f"/admin/events/{event.id}")
    expect(page.locator("[data-stat=refunded]")).to_have_text("€45.00")
    shot("admin-dashboard-money")
    page.get_by_role("button", name="Log out").click()

    log_in(page, buyer.email)
    page.goto(f"/orders/{order.id}")
    expect(page.get_by_role("status").filter(has_text="refunded")).to_contain_text(
        "€45.00 of this order has been refunded to your card; €45.00 stays paid")
    expect(page.locator(f"li.ticket:has-text('{first.code}')")).to_contain_text("Void")
    expect(page.locator(f"li.ticket:has-text('{second.code}')")).not_to_contain_text("Void")
    shot("buyer-order-partly-refunded")
    with page.expect_download() as caught:
        page.get_by_role("link", name="Credit note CN-000001 (PDF)").click()
    download = caught.value
    assert download.suggested_filename == "credit-note-CN-000001.pdf"
    with open(download.path(), "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"
