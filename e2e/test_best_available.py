"""Best available on a phone: a buyer asks for 4 seats and gets 4 side by side in one row,
zooms the map and jumps to a section from the overview."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from e2e.helpers import log_in, readme_shot
from webapp.services.selling import events

PHONE = {"width": 390, "height": 844}


def test_best_available_picks_four_seats_in_a_row_on_a_phone(page: Page, session, factory, shot):
    event = factory.event(title="Lakeside Symphony", per_order_limit=8)
    tier = events.add_seated_tier(session, event, name="Stalls", price_minor=6500)
    # Laid out together, as the admin's generator does: ranked across the whole hall.
    events.generate_sections(session, event, [events.SectionSpec(name, 12, 14, i * 16, 0, ((0, 11, tier),))
                                              for i, name in enumerate(("Left", "Centre", "Right"))])
    session.commit()
    buyer = factory.user(name="Pia Phone")
    page.set_viewport_size(PHONE)
    log_in(page, buyer.email)
    page.goto(f"/events/{event.id}")

    best = page.locator("#best-available")
    expect(best.get_by_role("link", name="Right")).to_be_visible()
    best.get_by_role("link", name="Right").click()
    expect(page.locator("#section-3")).to_be_in_viewport()
    seat = page.locator("#seat-map .seat").first
    before = seat.bounding_box()["width"]
    page.get_by_role("button", name="Zoom in").click()
    hall = page.locator("#seat-map .hall")
    assert hall.evaluate("h => h.style.getPropertyValue('--zoom')") == "1.5"
    assert seat.bounding_box()["width"] > before * 1.3, (before, seat.bounding_box())
    assert hall.evaluate("h => h.scrollWidth > h.clientWidth")  # zoomed in: the hall pans sideways
    shot("best-available-zoomed")
    page.get_by_role("button", name="Fit").click()

    page.evaluate("window.scrollTo(0, 0)")
    best.get_by_label("Seats").fill("4")
    shot("best-available-form")
    readme_shot(page, "best-available-phone")
    best.get_by_role("button", name="Find best seats").click()
    # The middle section's front row, seats 6 to 9 of 14: the four nearest the centre of the hall.
    expect(page.get_by_role("heading", name="Your reservation")).to_be_visible()
    for seat in (6, 7, 8, 9):
        expect(page.get_by_text(f"Centre, row A, seat {seat}", exact=False)).to_be_visible()
    shot("best-available-hold")
