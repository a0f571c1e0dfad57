"""The buyer's experience in a real browser: seat map (mouse and keyboard),
live updates, the race a buyer loses, the GA picker, hold expiry, checkout
outcomes, cancelling, and privacy of orders."""
from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect
from sqlalchemy import func, select

from e2e.helpers import GOOD_CARD, log_in, pay
from webapp.models import Order

SLOW_CARD = "4000 0000 0000 0077"


def seat(page: Page, label: str):
    """A seat checkbox by the start of its accessible name."""
    return page.get_by_label(label + ",", exact=False)


def summary(page: Page):
    return page.locator("#selection-summary")


def buyer(factory, name: str = "Sam Seat"):
    return factory.user(name=name)


def concert_hall(factory, title: str):
    """Two sections and three tiers, for a map that looks like a real hall."""
    from webapp.services.selling import events

    session = factory.session
    event = factory.event(title=title, description="Pick your seats on the map.")
    front = events.add_seated_tier(session, event, name="Premium", price_minor=9500, colour="#b45309")
    back = events.add_seated_tier(session, event, name="Standard", price_minor=6500, colour="#2563eb", sort_order=1)
    balcony = events.add_seated_tier(session, event, name="Balcony", price_minor=4500, colour="#059669",
                                     sort_order=2)
    events.generate_section(session, event, events.SectionSpec("Stalls", 6, 14, 0, 0, ((0, 2, front), (3, 5, back))))
    events.generate_section(session, event, events.SectionSpec("Balcony", 3, 18, -2, 8, ((0, 2, balcony),),
                                                               first_row_label="M"))
    session.commit()
    return event


def new_buyer_page(browser: Browser, base_url: str, email: str) -> Page:
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    log_in(page, email)
    return page


def test_pick_seats_with_the_mouse_then_pay_and_get_qr_tickets(page: Page, factory, shot):
    concert_hall(factory, "Chamber Night")
    log_in(page, buyer(factory).email)
    page.goto("/")
    expect(page.get_by_role("link", name=re.compile("Chamber Night"))).to_be_visible()
    shot("buyer-event-list", full_page=False)
    page.get_by_role("link", name=re.compile("Chamber Night")).click()
    expect(page.get_by_role("heading", name="Chamber Night")).to_be_visible()
    shot("buyer-event-page", full_page=False)

    expect(seat(page, "Stalls, row B, seat 5")).to_have_attribute(
        "aria-label", "Stalls, row B, seat 5, Premium, €95.00, available")
    seat(page, "Stalls, row B, seat 7").click()
    seat(page, "Stalls, row B, seat 8").click()
    expect(summary(page)).to_contain_text("2 × Premium")
    expect(summary(page)).to_contain_text("€190.00")
    seat(page, "Balcony, row M, seat 9").click()
    expect(summary(page)).to_contain_text("1 × Balcony")
    expect(summary(page)).to_contain_text("€235.00")
    expect(summary(page)).to_contain_text("3 of 8 seats per order")
    # Clicking again un-picks: a toggle.
    seat(page, "Stalls, row E, seat 3").click()
    expect(summary(page)).to_contain_text("1 × Standard")
    seat(page, "Stalls, row E, seat 3").click()
    expect(summary(page)).not_to_contain_text("Standard")
    expect(seat(page, "Stalls, row B, seat 7")).to_be_checked()
    page.locator("#seat-map").scroll_into_view_if_needed()
    shot("buyer-seat-map-selection", full_page=False)

    page.get_by_role("button", name="Reserve selected seats").click()
    expect(page.get_by_role("heading", name="Your reservation")).to_be_visible()
    expect(page.get_by_role("timer")).to_contain_text("held for")
    expect(page.get_by_role("cell", name="Balcony, row M, seat 9")).to_be_visible()
    shot("buyer-hold-page", full_page=False)

    pay(page, GOOD_CARD)
    expect(page.get_by_text("Payment approved")).to_be_visible()
    expect(page.locator(".ticket")).to_have_count(3)
    expect(page.get_by_role("img", name=re.compile("QR code for ticket")).first).to_be_visible()
    expect(page.locator(".ticket .qr svg")).to_have_count(3)
    shot("buyer-tickets", full_page=False)

    page.get_by_role("link", name="Printable ticket").first.click()
    expect(page.locator(".print-ticket svg")).to_be_visible()
    expect(page.get_by_role("button", name="Print")).to_be_visible()
    page.goto("/orders")
    expect(page.get_by_role("link", name="Chamber Night")).to_be_visible()


def test_pick_seats_with_the_keyboard_only(page: Page, factory):
    event = factory.seated_event(rows=3, seats_per_row=6, title="Keyboard Recital")
    log_in(page, buyer(factory).email)
    page.goto(f"/events/{event.id}")
    expect(page.get_by_role("heading", name="Keyboard Recital")).to_be_visible()

    # Tab until a seat has the focus: the map is a single tab stop.
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.name === 'seat'"):
            break
    focused = page.locator("input[name=seat]:focus")
    expect(focused).to_have_attribute("aria-label", re.compile(r"^Stalls, row A, seat 1, Stalls, €45\.00, available$"))
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(page.locator("input[name=seat]:focus")).to_have_attribute("aria-label", re.compile("row A, seat 3,"))
    page.keyboard.press("Space")
    page.keyboard.press("ArrowDown")
    expect(page.locator("input[name=seat]:focus")).to_have_attribute("aria-label", re.compile("row B, seat 3,"))
    page.keyboard.press("Space")
    expect(summary(page)).to_contain_text("2 × Stalls")
    expect(summary(page)).to_contain_text("Stalls, row A, seat 3; Stalls, row B, seat 3")

    # Off the map, the next stop is the reserve button.
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Reserve selected seats")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Your reservation")).to_be_visible()
    expect(page.get_by_role("cell", name="Stalls, row A, seat 3")).to_be_visible()
    expect(page.get_by_role("cell", name="Stalls, row B, seat 3")).to_be_visible()


def test_general_admission_tier_picker(page: Page, factory, shot):
    event = factory.ga_event(capacity=3, tiers=2, per_order_limit=4, price_minor=3000, title="Open Air")
    log_in(page, buyer(factory).email)
    page.goto(f"/events/{event.id}")
    more_first = page.get_by_role("button", name="One more Tier 1 ticket")
    more_second = page.get_by_role("button", name="One more Tier 2 ticket")
    for n in (1, 2, 3):
        more_first.click()
        expect(page.get_by_label("Number of Tier 1 tickets")).to_have_value(str(n))
    expect(more_first).to_be_disabled()  # only 3 exist
    expect(summary(page)).to_contain_text("€90.00")
    more_second.click()
    expect(summary(page)).to_contain_text("4 of 4 tickets per order")
    expect(more_second).to_be_disabled()  # the per-order limit
    expect(summary(page)).to_contain_text("€130.00")
    page.get_by_role("button", name="One fewer Tier 1 ticket").click()
    expect(summary(page)).to_contain_text("€100.00")
    expect(more_second).to_be_enabled()
    # Typing a quantity works too, and is clamped to what is left.
    page.get_by_label("Number of Tier 2 tickets").fill("9")
    page.get_by_label("Number of Tier 2 tickets").press("Tab")
    expect(page.get_by_label("Number of Tier 2 tickets")).to_have_value("3")
    expect(summary(page)).to_contain_text("You can buy at most 4 tickets in one order")
    page.get_by_role("button", name="One fewer Tier 2 ticket").click()
    page.get_by_role("button", name="One fewer Tier 2 ticket").click()
    expect(summary(page)).to_contain_text("3 of 4 tickets per order")
    shot("buyer-ga-picker", full_page=False)

    page.get_by_role("button", name="Reserve tickets").click()
    expect(page.get_by_role("heading", name="Your reservation")).to_be_visible()
    expect(page.get_by_role("cell", name="General admission")).to_have_count(3)
    page.get_by_role("button", name="Release these tickets").click()
    expect(page.get_by_text("Your reservation was released")).to_be_visible()
    expect(page.get_by_label("Number of Tier 1 tickets")).to_have_attribute("max", "3")


def test_places_taken_meanwhile_are_told_beside_the_picker_with_the_quantities_kept(page: Page, factory, shot):
    event = factory.ga_event(capacity=4, tiers=2, per_order_limit=8, price_minor=3000, title="Last Few")
    first = factory.tier(event)
    log_in(page, buyer(factory).email)
    page.goto(f"/events/{event.id}")
    quantity = page.get_by_label("Number of Tier 1 tickets")
    more_first = page.get_by_role("button", name="One more Tier 1 ticket")
    for n in (1, 2, 3):
        more_first.click()
        expect(quantity).to_have_value(str(n))
    page.get_by_role("button", name="One more Tier 2 ticket").click()
    expect(summary(page)).to_contain_text("4 of 8 tickets per order")

    factory.hold(event, quantities={first.id: 2})  # another buyer: two of Tier 1 are left
    page.get_by_role("button", name="Reserve tickets").click()
    message = page.locator("#tier-picker-message").get_by_role("alert")
    expect(message).to_contain_text("Only 2 left in Tier 1; you asked for 3.")
    # What is left is up to date; the buyer's numbers stay as they set them.
    expect(page.locator(f"#tier-row-{first.id}")).to_contain_text("Only 2 left")
    expect(quantity).to_have_value("3")
    expect(quantity).to_have_attribute("max", "2")
    expect(more_first).to_be_disabled()
    expect(page.get_by_label("Number of Tier 2 tickets")).to_have_value("1")
    shot("buyer-ga-places-taken", full_page=False)

    page.get_by_role("button", name="One fewer Tier 1 ticket").click()
    expect(summary(page)).to_contain_text("3 of 8 tickets per order")
    page.get_by_role("button", name="Reserve tickets").click()
    expect(page.get_by_role("heading", name="Your reservation")).to_be_visible()
    expect(page.get_by_role("cell", name="General admission")).to_have_count(3)


def test_declined_card_keeps_the_hold_then_a_slow_approval_shows_progress(page: Page, factory):
    event = factory.seated_event(rows=1, seats_per_row=6, title="Slow Bank Gala")
    log_in(page, buyer(factory).email)
    page.goto(f"/events/{event.id}")
    seat(page, "Stalls, row A, seat 2").click()
    expect(summary(page)).to_contain_text("1 × Stalls")
    page.get_by_role("button", name="Reserve selected seats").click()
    expect(page.get_by_role("timer")).to_be_visible()

    # Inline validation, with the submit path's form.
    page.get_by_label("Card number").fill("4242 4242 4242 4241")
    page.get_by_label("Card number").blur()
    expect(page.get_by_text("That card number is not valid")).to_be_visible()
    page.get_by_label("Expiry (MM/YY)").fill("01/20")
    page.get_by_label("Expiry (MM/YY)").blur()
    expect(page.get_by_text("This card has expired")).to_be_visible()

    pay(page, "4000 0000 0000 0002")
    expect(page.get_by_role("alert")).to_contain_text("Your card was declined by the issuer")
    expect(page.get_by_role("timer")).to_contain_text("held for")  # the hold stays

    pay(page, SLOW_CARD)
    expect(page.get_by_text("Contacting your bank")).to_be_visible()
    expect(page.get_by_role("button", name="Pay")).to_be_disabled()  # no double submit
    expect(page.get_by_text("Payment approved")).to_be_visible(timeout=15_000)
    expect(page.locator(".ticket")).to_have_count(1)


def test_two_tabs_paying_for_one_hold_give_one_order(page: Page, factory):
    event = factory.seated_event(rows=1, seats_per_row=4, title="Two Tabs")
    log_in(page, buyer(factory).email)
    page.goto(f"/events/{event.id}")
    seat(page, "Stalls, row A, seat 1").click()
    expect(summary(page)).to_contain_text("1 × Stalls")
    page.get_by_role("button", name="Reserve selected seats").click()
    expect(page.get_by_role("timer")).to_be_visible()
    other_tab = page.context.new_page()
    other_tab.goto(page.url)

    pay(page, SLOW_CARD)
    expect(page.get_by_text("Contacting your bank")).to_be_visible()
    pay(other_tab, GOOD_CARD)
    for tab in (page, other_tab):
        expect(tab.get_by_text(re.compile("Order #"))).to_be_visible(timeout=15_000)
    assert page.url == other_tab.url
    factory.session.expire_all()
    assert factory.session.scalar(select(func.count()).select_from(Order).where(Order.event_id == event.id)) == 1


def test_two_buyers_race_for_a_seat_and_the_loser_keeps_the_rest(browser: Browser, base_url, factory, shot):
    event = factory.seated_event(rows=2, seats_per_row=8, title="Race Night")
    winner = new_buyer_page(browser, base_url, buyer(factory, "Wendy Winner").email)
    loser = new_buyer_page(browser, base_url, buyer(factory, "Larry Loser").email)
    # The loser's live updates are held back, so the seat is still free on
    # their screen when they press reserve: the race is lost at the server.
    loser.route("**/seat-status", lambda route: route.abort())
    for page in (winner, loser):
        page.goto(f"/events/{event.id}")
    seat(winner, "Stalls, row A, seat 4").click()
    for label in ("Stalls, row A, seat 4", "Stalls, row A, seat 5"):
        seat(loser, label).click()
    expect(summary(loser)).to_contain_text("2 × Stalls")

    winner.get_by_role("button", name="Reserve selected seats").click()
    expect(winner.get_by_role("heading", name="Your reservation")).to_be_visible()
    loser.get_by_role("button", name="Reserve selected seats").click()

    expect(loser.get_by_role("alert")).to_contain_text("just taken: Stalls, row A, seat 4")
    expect(seat(loser, "Stalls, row A, seat 4")).to_be_disabled()
    expect(seat(loser, "Stalls, row A, seat 4")).to_have_attribute("aria-label", re.compile("unavailable$"))
    expect(seat(loser, "Stalls, row A, seat 5")).to_be_checked()
    expect(summary(loser)).to_contain_text("1 × Stalls")
    shot("buyer-race-lost", target=loser)
    loser.get_by_role("button", name="Reserve selected seats").click()
    expect(loser.get_by_role("cell", name="Stalls, row A, seat 5")).to_be_visible()
    for page in (winner, loser):
        page.context.close()


def test_a_seat_taken_elsewhere_turns_unavailable_without_a_reload(browser: Browser, base_url, factory):
    event = factory.seated_event(rows=2, seats_per_row=8, title="Live Map")
    taker = new_buyer_page(browser, base_url, buyer(factory, "Tina Taker").email)
    watcher = new_buyer_page(browser, base_url, buyer(factory, "Walt Watcher").email)
    for page in (taker, watcher):
        page.goto(f"/events/{event.id}")
    seat(watcher, "Stalls, row B, seat 2").click()  # picked, but not reserved yet
    seat(watcher, "Stalls, row B, seat 3").click()
    expect(summary(watcher)).to_contain_text("2 × Stalls")
    watcher.evaluate("window.__sameDocument = true")

    seat(taker, "Stalls, row B, seat 1").click()
    seat(taker, "Stalls, row B, seat 2").click()
    taker.get_by_role("button", name="Reserve selected seats").click()
    expect(taker.get_by_role("heading", name="Your reservation")).to_be_visible()

    expect(seat(watcher, "Stalls, row B, seat 1")).to_be_disabled(timeout=10_000)
    expect(seat(watcher, "Stalls, row B, seat 2")).to_be_disabled()
    expect(seat(watcher, "Stalls, row B, seat 2")).not_to_be_checked()
    expect(watcher.get_by_role("alert")).to_contain_text("Just taken by another buyer: Stalls, row B, seat 2")
    expect(seat(watcher, "Stalls, row B, seat 3")).to_be_checked()
    expect(summary(watcher)).to_contain_text("1 × Stalls")
    assert watcher.evaluate("window.__sameDocument") is True  # no reload happened

    # Freed seats come back too.
    taker.get_by_role("button", name="Release these seats").click()
    expect(seat(watcher, "Stalls, row B, seat 1")).to_be_enabled(timeout=10_000)
    expect(seat(watcher, "Stalls, row B, seat 1")).to_have_attribute("aria-label", re.compile("available$"))
    for page in (taker, watcher):
        page.context.close()


def test_hold_expiry_while_the_page_is_open_offers_to_try_again(page: Page, factory, shot):
    event = factory.seated_event(rows=1, seats_per_row=4, title="Quick Hold", hold_minutes=0.1,
                                 rehold_cooldown_seconds=60)
    log_in(page, buyer(factory).email)
    page.goto(f"/events/{event.id}")
    seat(page, "Stalls, row A, seat 2").click()
    expect(summary(page)).to_contain_text("1 × Stalls")
    page.get_by_role("button", name="Reserve selected seats").click()
    expect(page.get_by_role("timer")).to_be_visible()
    expect(page.locator("#countdown progress")).to_have_attribute("max", "6")

    expect(page.get_by_role("heading", name="Your reservation has expired")).to_be_visible(timeout=20_000)
    expect(page.locator("#pay-form")).to_have_count(0)
    shot("buyer-hold-expired", full_page=False)
    # At once, whatever the cool-down: the same seats taken again, not a fresh reserve (that is for cycles).
    page.get_by_role("button", name="Try again: reserve the same seats").click()
    expect(page.get_by_role("timer")).to_be_visible()
    expect(page.get_by_role("cell", name="Stalls, row A, seat 2")).to_be_visible()


def test_cancelling_an_order_frees_its_seats(page: Page, factory):
    event = factory.seated_event(rows=1, seats_per_row=4, title="Change of Plans")
    user = buyer(factory)
    order = factory.order(event, user, seats=factory.seat_ids(event)[:2])
    log_in(page, user.email)
    page.goto("/orders")
    page.get_by_role("link", name="Change of Plans").click()
    expect(page.get_by_role("heading", name=f"Order #{order.id}")).to_contain_text("Confirmed")
    page.get_by_role("link", name="Cancel this order").click()
    expect(page.get_by_role("heading", name=f"Cancel order #{order.id}?")).to_be_visible()
    page.get_by_role("button", name="Yes, cancel my order").click()
    expect(page.get_by_text("Your order was cancelled and refunded")).to_be_visible()
    expect(page.get_by_role("heading", name=f"Order #{order.id}")).to_contain_text("Refunded")
    page.goto(f"/events/{event.id}")
    expect(seat(page, "Stalls, row A, seat 1")).to_be_enabled()


def test_another_users_order_is_404(page: Page, factory):
    event = factory.seated_event(rows=1, seats_per_row=4, title="Private Matters")
    owner = buyer(factory, "Olive Owner")
    order = factory.order(event, owner, seats=factory.seat_ids(event)[:1])
    log_in(page, buyer(factory, "Nosy Neighbour").email)
    response = page.goto(f"/orders/{order.id}")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    assert page.goto(f"/orders/{order.id}/tickets/{order.tickets[0].id}").status == 404
    page.goto("/orders")
    expect(page.get_by_text("Private Matters")).to_have_count(0)


def test_active_search_filters_the_event_list_as_you_type(page: Page, factory, shot):
    factory.ga_event(title="Harbour Jazz Night", starts_in_days=4)
    factory.seated_event(title="Opera in the Park", starts_in_days=6)
    page.goto("/")
    page.evaluate("window.__sameDocument = true")
    page.get_by_label("Search events").press_sequentially("harbour", delay=30)
    expect(page.get_by_role("link", name=re.compile("Harbour Jazz Night"))).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("Opera in the Park"))).to_have_count(0)
    expect(page.get_by_role("status").filter(has_text="1 event found")).to_be_visible()
    assert "q=harbour" in page.url and page.evaluate("window.__sameDocument") is True
    # The same URL works as a plain GET form.
    page.goto("/?q=opera")
    expect(page.get_by_role("link", name=re.compile("Opera in the Park"))).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("Harbour Jazz Night"))).to_have_count(0)


def test_the_seat_map_on_a_phone(browser: Browser, base_url, factory, shot):
    event = concert_hall(factory, "Pocket Concert")
    context = browser.new_context(base_url=base_url, viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    page.goto(f"/events/{event.id}")
    seat(page, "Stalls, row C, seat 7").tap()
    expect(summary(page)).to_contain_text("1 × Premium")
    expect(page.get_by_role("button", name="Reserve selected seats")).to_be_in_viewport()
    shot("buyer-seat-map-phone", target=page)
    context.close()


def test_quick_clicks_on_a_stepper_all_count(page: Page, factory):
    """Each click moves the number at once; a newer request replaces one in flight."""
    event = factory.ga_event(capacity=10, per_order_limit=8, price_minor=2000, title="Quick Fingers")
    log_in(page, buyer(factory).email)
    page.goto(f"/events/{event.id}")
    more = page.get_by_role("button", name="One more Tier 1 ticket")
    for _ in range(4):
        more.click(no_wait_after=True)  # no waiting for the answer between clicks
    expect(page.get_by_label("Number of Tier 1 tickets")).to_have_value("4")
    expect(summary(page)).to_contain_text("4 × Tier 1")
    expect(summary(page)).to_contain_text("€80.00")
