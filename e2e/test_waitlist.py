"""The waiting list in a real browser: a sold-out event, a place in line, a
cancel, and the offer arriving on the waiting buyer's open page."""
from playwright.sync_api import Page, expect

from e2e.helpers import GOOD_CARD, pay, readme_shot, register


def test_sold_out_join_line_then_offer_on_cancel_and_buy(page: Page, browser, base_url, factory, shot):
    event = factory.ga_event(capacity=2, per_order_limit=4, title="Small Club Night", offer_hours=2)

    # Buyer A fills the event.
    register(page, name="Alex Early")
    page.goto(f"/events/{event.id}")
    more = page.get_by_role("button", name="One more Tier 1 ticket")
    quantity = page.get_by_label("Number of Tier 1 tickets")
    more.click()
    expect(quantity).to_have_value("1")
    page.get_by_role("button", name="One more Tier 1 ticket").click()
    expect(quantity).to_have_value("2")
    page.get_by_role("button", name="Reserve tickets").click()
    expect(page.get_by_role("heading", name="Your reservation")).to_be_visible()
    pay(page, GOOD_CARD, name="Alex Early")
    expect(page.get_by_role("heading", name="Order #")).to_be_visible()

    # Buyer B finds it sold out and joins the line.
    b_context = browser.new_context(base_url=base_url, viewport={"width": 1100, "height": 760})
    b = b_context.new_page()
    register(b, name="Blair Waiting")
    b.goto(f"/events/{event.id}")
    expect(b.locator(".tier-soldout").first).to_be_visible()
    b.get_by_label("Tickets", exact=True).fill("1")
    b.get_by_role("button", name="Join the waiting list").click()
    panel = b.locator("#waitlist-panel")
    expect(panel).to_contain_text("You are number 1 in line")
    expect(panel).to_contain_text("Nobody is ahead of you")
    panel.scroll_into_view_if_needed()
    shot("waitlist-joined", target=b)
    readme_shot(b, "waitlist-place-in-line")

    # A cancels; B's open page shows the offer without a reload (it polls).
    page.get_by_role("link", name="Cancel this order").click()
    page.get_by_role("button", name="Yes, cancel my order").click()
    expect(page.get_by_text("Your order was cancelled")).to_be_visible()

    expect(panel).to_contain_text("Tickets are held for you", timeout=20_000)
    expect(panel.get_by_role("link", name="Accept and pay")).to_be_visible()
    panel.scroll_into_view_if_needed()
    shot("waitlist-offer-arrived", target=b)
    readme_shot(b, "waitlist-offer")

    # Any other page shows the banner; My waiting lists shows the offer too.
    b.goto("/waitlists")
    expect(b.locator("#offer-banner")).to_contain_text("Small Club Night")
    expect(b.locator("#my-waitlists")).to_contain_text("Tickets are held for you")

    # Accepting is the normal checkout: hold page, pay, tickets.
    b.locator("#offer-banner").get_by_role("link", name="Accept and pay").click()
    expect(b.get_by_role("heading", name="Your reservation")).to_be_visible()
    expect(b.get_by_role("timer")).to_contain_text("held for 1:59:")
    expect(b.get_by_text("next person in line")).to_be_visible()
    expect(b.locator("#offer-banner")).to_have_count(0)  # not on the offer's own page
    shot("waitlist-offer-hold", target=b)
    pay(b, GOOD_CARD, name="Blair Waiting")
    expect(b.get_by_role("heading", name="Order #")).to_be_visible()
    expect(b.locator(".ticket")).to_have_count(1)
    shot("waitlist-ticket", target=b)

    b.goto("/waitlists")
    expect(b.locator("#my-waitlists")).to_contain_text("Bought")
    expect(b.locator("#offer-banner")).to_have_count(0)
    shot("waitlist-mine-after", target=b)
    b_context.close()
