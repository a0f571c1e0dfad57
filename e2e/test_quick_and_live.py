"""In a real browser: quick clicks on the admin seat map
all count; race messages are shown where the buyer is looking, scrolled down
to the balcony of a 1,008-seat hall; the page's figures, the legend's "Sold
out" and Reserve follow the live map; an empty card form focuses its first
error."""
from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from e2e.helpers import log_in
from webapp.models import Unit, UnitStatus


def seat(page: Page, label: str):
    return page.get_by_label(label + ",", exact=False)


def big_hall(factory, title: str):
    """1,008 seats: 24 rows of 30 in the stalls, and 9 rows of 32 in the balcony behind them."""
    from webapp.services.selling import events

    session = factory.session
    event = factory.event(title=title)
    stalls = events.add_seated_tier(session, event, name="Stalls", price_minor=6000, colour="#2563eb")
    balcony = events.add_seated_tier(session, event, name="Balcony", price_minor=4000, colour="#059669",
                                     sort_order=1)
    events.generate_section(session, event, events.SectionSpec("Stalls", 24, 30, 1, 0, ((0, 23, stalls),)))
    events.generate_section(session, event, events.SectionSpec("Balcony", 9, 32, 0, 26, ((0, 8, balcony),),
                                                               first_row_label="A"))
    session.commit()
    return event


def seat_id(factory, event, section: str, row: str, number: int) -> int:
    return factory.session.scalar(select(Unit.id).where(
        Unit.event_id == event.id, Unit.section == section, Unit.row_label == row, Unit.seat_number == number))


def scroll_to_the_balcony(page: Page) -> None:
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    expect(seat(page, "Balcony, row J, seat 16")).to_be_in_viewport()
    expect(page.locator("#seat-map .stage")).not_to_be_in_viewport()


def test_a_seat_lost_in_the_balcony_is_told_in_the_balcony_and_named_after_reserve(page: Page, factory, shot):
    event = big_hall(factory, "Big Hall Live")
    assert factory.session.query(Unit).filter(Unit.event_id == event.id).count() == 1008
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, factory.user(name="Bea Balcony").email)
    page.goto(f"/events/{event.id}")
    scroll_to_the_balcony(page)
    for n in (15, 16):
        seat(page, f"Balcony, row J, seat {n}").click()
    expect(page.locator("#selection-summary")).to_contain_text("2 × Balcony")

    # Another buyer takes seat 16; the live map unpicks it, and says so on screen.
    factory.hold(event, seats=[seat_id(factory, event, "Balcony", "J", 16)])
    message = page.locator("#seat-map-message").get_by_role("alert")
    expect(message).to_have_text(
        "Just taken by another buyer: Balcony, row J, seat 16. We removed it from your selection.", timeout=10_000)
    expect(message).to_be_in_viewport()
    expect(seat(page, "Balcony, row J, seat 16")).to_be_in_viewport()  # the page did not jump
    expect(page.locator("#selection-summary")).to_contain_text("1 × Balcony")
    shot("buyer-balcony-seat-lost", full_page=False)

    # Reserve at once: the hold has seat 15 only, and says seat 16 is not in it.
    page.get_by_role("button", name="Reserve selected seats").click()
    expect(page.get_by_role("heading", name="Your reservation")).to_be_visible()
    expect(page.get_by_role("cell", name="Balcony, row J, seat 15")).to_be_visible()
    expect(page.get_by_text("Balcony, row J, seat 16 was taken by another buyer just before you reserved, "
                            "so it is not in this reservation.")).to_be_in_viewport()
    shot("buyer-hold-after-seat-lost", full_page=False)


def test_a_race_lost_at_reserve_in_the_balcony_is_told_beside_reserve(page: Page, factory, shot):
    event = big_hall(factory, "Big Hall Race")
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, factory.user(name="Rex Race").email)
    page.route("**/seat-status", lambda route: route.abort())  # this map does not learn of it in time
    page.goto(f"/events/{event.id}")
    scroll_to_the_balcony(page)
    for n in (3, 4):
        seat(page, f"Balcony, row H, seat {n}").click()
    expect(page.locator("#selection-summary")).to_contain_text("2 × Balcony")
    factory.hold(event, seats=[seat_id(factory, event, "Balcony", "H", 3)])

    page.get_by_role("button", name="Reserve selected seats").click()
    message = page.locator("#seat-map-message").get_by_role("alert")
    expect(message).to_contain_text("just taken: Balcony, row H, seat 3")
    expect(message).to_be_in_viewport()
    expect(seat(page, "Balcony, row H, seat 4")).to_be_checked()
    expect(seat(page, "Balcony, row H, seat 4")).to_be_in_viewport()
    expect(page.get_by_role("button", name="Reserve selected seats")).to_be_focused()
    shot("buyer-balcony-race-lost", full_page=False)


def test_figures_legend_and_reserve_follow_the_live_map(browser: Browser, base_url, factory, shot):
    event = factory.seated_event(rows=1, seats_per_row=4, title="Four Seats")
    seats = factory.seat_ids(event)
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    log_in(page, factory.user(name="Wanda Watcher").email)
    page.goto(f"/events/{event.id}")
    panel = page.locator("#waitlist-panel")
    expect(panel.locator('[data-count="available"]')).to_have_text("4")
    reserve = page.get_by_role("button", name="Reserve selected seats")
    expect(reserve).to_be_enabled()

    factory.order(event, seats=seats[:1])
    factory.hold(event, seats=seats[1:2])
    expect(panel.locator('[data-count="available"]')).to_have_text("2", timeout=10_000)
    expect(panel.locator('[data-count="held"]')).to_have_text("1")
    expect(panel.locator('[data-count="sold"]')).to_have_text("1")
    expect(page.locator("#seat-map .legend").get_by_text("Sold out")).to_have_count(0)

    factory.hold(event, seats=seats[2:])
    expect(panel.locator('[data-count="available"]')).to_have_text("0", timeout=10_000)
    expect(panel.locator('[data-count="held"]')).to_have_text("3")
    expect(page.locator("#seat-map .legend").get_by_text("Sold out")).to_be_visible()
    expect(reserve).to_be_disabled()
    shot("buyer-live-sold-out", target=page)
    context.close()


def test_quick_clicks_on_the_admin_seat_map_all_count(page: Page, factory):
    """Four seats blocked and one blocked-then-released, without waiting between clicks."""
    event = factory.seated_event(rows=1, seats_per_row=8, title="Quick Admin")
    seats = factory.seat_ids(event)
    log_in(page, factory.user(name="Ada Admin", is_admin=True).email)
    page.goto(f"/admin/events/{event.id}/layout")
    expect(page.get_by_role("button", name="Block Stalls, row A, seat 1 (Stalls, available)")).to_be_visible()
    # All six clicks in one task of the page, so every one lands while the
    # first request is still in flight; the last two are on the same seat
    # (block, then unblock).
    page.evaluate("""ids => ids.forEach(id => document.querySelector('button.aseat[value="' + id + '"]').click())""",
                  [str(s) for s in [*seats[:4], seats[6], seats[6]]])
    # The last answer (the unblock of seat 7) is drawn once every request before it was.
    expect(page.locator("#layout-map .map-note")).to_have_text("Stalls, row A, seat 7 is now available.")
    for n in range(1, 5):
        expect(page.get_by_role("button", name=f"Unblock Stalls, row A, seat {n} (Stalls, blocked)")).to_be_visible()
    expect(page.get_by_role("button", name="Block Stalls, row A, seat 7 (Stalls, available)")).to_be_visible()
    expect(page.locator("#layout-map .aseat.pending")).to_have_count(0)
    factory.session.expire_all()
    statuses = dict(factory.session.execute(select(Unit.id, Unit.status).where(Unit.event_id == event.id)).all())
    assert [statuses[s] for s in seats[:4]] == [UnitStatus.BLOCKED] * 4
    assert statuses[seats[6]] == UnitStatus.AVAILABLE
    assert [statuses[s] for s in (seats[4], seats[5], seats[7])] == [UnitStatus.AVAILABLE] * 3


def test_an_empty_card_form_moves_focus_to_the_first_error(page: Page, factory):
    event = factory.ga_event(capacity=5, title="Focus Gig")
    log_in(page, factory.user().email)
    page.goto(f"/events/{event.id}")
    page.get_by_role("button", name="One more Tier 1 ticket").click()
    expect(page.locator("#selection-summary")).to_contain_text("1 × Tier 1")
    page.get_by_role("button", name="Reserve tickets").click()
    expect(page.get_by_role("timer")).to_be_visible()
    page.get_by_role("button", name=re.compile("^Pay ")).click()
    expect(page.get_by_label("Name on card")).to_be_focused()
    expect(page.locator("#name-errors")).not_to_be_empty()
