"""The admin area in a real browser: build a seated event with the generator, sell a seat,
watch the dashboard, cancel the order, and check a ticket in twice."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from e2e.helpers import GOOD_CARD, log_in, pay, readme_shot, register
from tests.support import buy


def admin_page(page: Page, factory) -> None:
    admin = factory.user(name="Ada Admin", is_admin=True)
    log_in(page, admin.email)


def test_admin_builds_a_seated_event_a_buyer_buys_and_the_dashboard_shows_it(page: Page, browser, base_url, factory,
                                                                              shot):
    page.set_viewport_size({"width": 1280, "height": 900})
    admin_page(page, factory)
    page.get_by_role("link", name="Manage").click()
    page.get_by_role("link", name="New event").click()
    page.get_by_label("Title").fill("Harbour Lights Quartet")
    page.get_by_label("Venue").fill("Harbour Hall")
    page.get_by_label("Starts (local time)").fill("2031-05-01T19:30")
    page.get_by_role("button", name="Create draft event").click()
    expect(page.get_by_text("was created as a draft")).to_be_visible()

    # Two seat tiers, then the generator lays out two sections of four rows.
    for name, price in (("Premium", "90"), ("Standard", "55")):
        page.goto(page.url.split("/layout")[0].split("/tiers")[0] + "/tiers")
        if page.get_by_label("Numbered seats").count():
            page.get_by_label("Numbered seats").check()
        page.get_by_label("Name", exact=True).fill(name)
        page.get_by_label("Price (€)").fill(price)
        page.get_by_role("button", name="Add tier").click()
        expect(page.get_by_text(f"Tier “{name}” added.")).to_be_visible()
    expect(page.get_by_role("heading", name="Generate sections")).to_be_visible()
    page.get_by_label("Section names").fill("Left, Right")
    page.get_by_label("Rows per section").fill("4")
    page.get_by_label("Seats per row").fill("6")
    page.get_by_label("Tier for range 1").select_option(label="Premium")
    page.get_by_label("First row of range 1").fill("1")
    page.get_by_label("Last row of range 1").fill("2")
    page.get_by_label("Tier for range 2").select_option(label="Standard")
    page.get_by_label("First row of range 2").fill("3")
    page.get_by_label("Last row of range 2").fill("4")
    preview = page.locator("#layout-preview")
    expect(preview).to_contain_text("48 seats will be created")
    expect(preview.locator(".aseat.new")).to_have_count(48)
    page.get_by_label("Last row of range 2").fill("3")
    expect(preview).to_contain_text("Every row needs a tier; these have none: D.")
    page.get_by_label("Last row of range 2").fill("4")
    expect(preview).to_contain_text("48 seats will be created")
    shot("admin-layout-preview")
    readme_shot(page, "admin-layout-editor")
    page.get_by_role("button", name="Generate seats").click()
    expect(page.get_by_text("Created 48 seats.")).to_be_visible()

    # A broken seat is blocked from the map.
    page.get_by_role("button", name="Block Left, row A, seat 1 (Premium, available)").click()
    expect(page.get_by_role("button", name="Unblock Left, row A, seat 1 (Premium, blocked)")).to_be_visible()
    expect(page.locator("#layout-map .map-note")).to_have_text("Left, row A, seat 1 is now blocked.")
    shot("admin-layout-editor")

    page.get_by_role("button", name="Open sales").click()
    expect(page.get_by_text("Sales are open.")).to_be_visible()
    expect(page.locator('[data-stat="sold"]')).to_have_text("0")
    expect(page.locator('[data-stat="blocked"]')).to_have_text("1")

    # A buyer, in a browser of their own, buys seat A3.
    buyer_context = browser.new_context(base_url=base_url)
    buyer = buyer_context.new_page()
    register(buyer, name="Bo Buyer")
    buyer.goto("/")
    buyer.get_by_role("link", name="Harbour Lights Quartet").click()
    expect(buyer.get_by_label("Left, row A, seat 1,", exact=False)).to_be_disabled()
    buyer.get_by_label("Left, row A, seat 3,", exact=False).check()
    buyer.get_by_role("button", name="Reserve selected seats").click()
    expect(buyer.get_by_role("heading", name="Your reservation")).to_be_visible()
    pay(buyer, GOOD_CARD, name="Bo Buyer")
    expect(buyer.get_by_role("heading", name="Order #")).to_be_visible()

    # The admin's open dashboard picks the sale up by itself (it polls).
    expect(page.locator('[data-stat="sold"]')).to_have_text("1", timeout=15_000)
    expect(page.locator('[data-stat="revenue"]')).to_have_text("€90.00")
    expect(page.get_by_role("img", name="Tickets sold per hour; 1 in total")).to_be_visible()
    readme_shot(page, "admin-dashboard")
    shot("admin-dashboard")
    buyer_context.close()


def test_admin_cancels_an_order_and_the_seat_is_free_again(page: Page, browser, base_url, factory, session, shot):
    event = factory.seated_event(rows=1, seats_per_row=4, title="Cello Recital")
    buyer = factory.user(name="Cam Buyer")
    seat = factory.seat_ids(event)[2]
    order = buy(session, event, buyer, seats=[seat])

    admin_page(page, factory)
    page.goto("/admin/orders")
    page.get_by_label("Buyer e-mail, ticket code or order number").fill(buyer.email)
    results = page.locator("#order-results")
    expect(results.get_by_role("link", name=f"#{order.id}")).to_be_visible()
    results.get_by_role("link", name=f"#{order.id}").click()
    page.get_by_label("Reason").fill("Buyer asked by phone")
    page.get_by_role("button", name="Cancel and refund").click()
    expect(page.get_by_text(f"Order #{order.id} was refunded")).to_be_visible()
    expect(page.locator(".badge-refunded")).to_have_text("Refunded")
    shot("admin-order-refunded")

    page.goto(f"/admin/events/{event.id}/layout")
    expect(page.get_by_role("button", name="Block Stalls, row A, seat 3 (Stalls, available)")).to_be_visible()

    # The public map offers the seat again, and the buyer sees the refund.
    visitor_context = browser.new_context(base_url=base_url)
    visitor = visitor_context.new_page()
    log_in(visitor, buyer.email)
    visitor.goto(f"/events/{event.id}")
    expect(visitor.get_by_label("Stalls, row A, seat 3,", exact=False)).to_be_enabled()
    visitor.goto(f"/orders/{order.id}")
    expect(visitor.get_by_text("and refunded")).to_be_visible()
    visitor_context.close()


def test_check_in_admits_a_ticket_once(page: Page, factory, session, shot):
    event = factory.seated_event(rows=1, seats_per_row=2, title="Door Test Night")
    order = buy(session, event, factory.user(name="Dee Guest"), seats=factory.seat_ids(event)[:1])
    code = order.tickets[0].code

    admin_page(page, factory)
    page.goto(f"/admin/events/{event.id}/check-in")
    scan = page.get_by_label("Ticket code")
    expect(scan).to_be_focused()
    # A USB scanner types the code and presses Enter.
    scan.press_sequentially(code)
    scan.press("Enter")
    result = page.locator("#checkin-result")
    expect(result).to_contain_text("Valid — admit")
    expect(result).to_contain_text("Dee Guest")
    expect(scan).to_have_value("")
    expect(scan).to_be_focused()

    scan.press_sequentially(code)
    scan.press("Enter")
    expect(result).to_contain_text("Already checked in at")
    expect(page.locator(".recent li")).to_have_count(1)
    expect(page.locator(".recent li")).to_contain_text("Dee Guest · Stalls · Stalls A1")
    shot("admin-check-in-refused")
