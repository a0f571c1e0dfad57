"""Seat properties on the buyer's map: said in words, filtered for, and a wheelchair space sold with its
companion seat by best available."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from e2e.helpers import log_in
from webapp.services.selling import events, inventory


def test_a_buyer_filters_for_wheelchair_spaces_and_gets_one_with_its_companion(page: Page, session, factory, shot):
    event = factory.event(title="Harbour Quartet", per_order_limit=8)
    tier = events.add_seated_tier(session, event, name="Stalls", price_minor=4000)
    events.generate_section(session, event, events.SectionSpec("Stalls", 3, 10, 0, 0, ((0, 2, tier),)))
    for prop, row, first, last in (("wheelchair", "C", 1, 1), ("wheelchair", "C", 10, 10), ("companion", "C", 2, 2),
                                   ("companion", "C", 9, 9), ("aisle", "A", 1, 1), ("aisle", "A", 10, 10),
                                   ("restricted_view", "B", 1, 2)):
        inventory.set_seat_property(session, event.id, inventory.SeatRange("Stalls", row, first, last), prop, True)
    session.commit()
    log_in(page, factory.user(name="Wim Wheeler").email)
    page.goto(f"/events/{event.id}")

    legend = page.get_by_role("list", name="Legend")
    for words in ("Wheelchair space", "Companion seat", "Restricted view", "Aisle seat"):
        expect(legend.get_by_text(words)).to_be_visible()
    expect(page.get_by_role("checkbox", name="Stalls, row C, seat 1, wheelchair space, Stalls")).to_be_attached()
    seats = page.locator("#seat-map .seat")
    expect(seats.filter(visible=True)).to_have_count(30)
    page.get_by_role("radio", name="Wheelchair spaces").check()
    expect(seats.filter(visible=True)).to_have_count(2)
    shot("seat-filter-wheelchair")
    page.get_by_role("radio", name="Seats with a clear view").check()
    expect(seats.filter(visible=True)).to_have_count(28)
    page.get_by_role("radio", name="All seats").check()

    best = page.locator("#best-available")
    best.get_by_label("Seats").fill("2")
    best.get_by_label("Wheelchair spaces").fill("1")
    shot("best-available-wheelchair")
    best.get_by_role("button", name="Find best seats").click()
    expect(page.get_by_role("heading", name="Your reservation")).to_be_visible()
    held = page.locator("main").inner_text()
    assert ("row C, seat 1" in held and "row C, seat 2" in held) or ("row C, seat 9" in held
                                                                     and "row C, seat 10" in held), held
    assert "wheelchair space" in held and "companion seat" in held
    shot("best-available-wheelchair-hold")


def test_an_admin_marks_wheelchair_spaces_by_range_and_is_told_what_is_wrong(page: Page, session, factory, shot):
    event = factory.seated_event(rows=3, seats_per_row=8, title="Range Hall")
    admin = factory.user(name="Ada Admin", is_admin=True)
    log_in(page, admin.email)
    page.goto(f"/admin/events/{event.id}/layout")
    box = page.locator("#seat-properties")
    box.get_by_label("Property", exact=True).select_option("wheelchair")
    box.get_by_label("Section", exact=True).fill("Stalls")
    box.get_by_label("Row", exact=True).fill("C")
    box.get_by_label("Seats from").fill("7")
    box.get_by_label("to", exact=True).fill("9")
    box.get_by_role("button", name="Apply to these seats").click()
    expect(box.get_by_role("alert")).to_contain_text("The layout has no seat 9 in Stalls, row C.")
    shot("admin-seat-properties-refused")
    box = page.locator("#seat-properties")
    box.get_by_label("to", exact=True).fill("8")
    box.get_by_role("button", name="Apply to these seats").click()
    expect(page.get_by_text("Stalls, row C, seats 7–8: 2 seats marked “wheelchair space”.")).to_be_visible()
    expect(page.get_by_role("button", name="Block Stalls, row C, seat 8, wheelchair space (Stalls, available)")
           ).to_be_visible()
    shot("admin-seat-properties-done")
