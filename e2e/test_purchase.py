"""A buyer registers, reserves, is declined, pays, and gets a ticket: in a real browser."""
from playwright.sync_api import Page, expect

from e2e.helpers import DECLINED_CARD, GOOD_CARD, pay, register


def test_register_reserve_decline_then_pay_and_see_ticket(page: Page, factory, shot):
    factory.seated_event(rows=2, seats_per_row=6, title="Chamber Music Night")

    register(page)
    page.goto("/")
    page.get_by_role("link", name="Chamber Music Night").click()
    shot("event-page")
    page.get_by_label("Stalls, row A, seat 3,", exact=False).check()
    page.get_by_label("Stalls, row A, seat 4,", exact=False).check()
    page.get_by_role("button", name="Reserve selected seats").click()

    expect(page.get_by_role("heading", name="Your reservation")).to_be_visible()
    expect(page.get_by_role("timer")).to_contain_text("Your seats are held for")
    expect(page.get_by_text("Stalls, row A, seat 3")).to_be_visible()
    shot("hold-page")

    pay(page, DECLINED_CARD)
    expect(page.get_by_role("alert")).to_contain_text("Your card was declined")
    # The hold survives a decline: pay again with the good card.
    pay(page, GOOD_CARD)

    expect(page.get_by_role("heading", name="Order #")).to_be_visible()
    expect(page.get_by_text("Payment approved")).to_be_visible()
    expect(page.locator(".ticket")).to_have_count(2)
    expect(page.locator(".ticket svg").first).to_be_visible()
    shot("tickets")
