"""Accessibility of the demo stadium: a keyboard-only buyer reserves a wheelchair space with its
companion seat through the seat list (section, row, seat) and pays; and axe-core finds no serious
or critical violation on the overview, a section page, or the seat list's steps.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from playwright.sync_api import Page, expect
from sqlalchemy import select

from e2e.helpers import GOOD_CARD
from e2e.test_accessibility import axe_check, keyboard_log_in, tab_to
from tests.factories import PASSWORD
from webapp.models import Event, Hold, Unit
from webapp.services import demo


def demo_stadium(session) -> Event:
    event = demo._stadium(session, datetime.now(timezone.utc) + timedelta(days=30))
    session.commit()
    return event


def test_a_keyboard_only_buyer_reserves_a_wheelchair_space_with_its_companion_from_the_stadium_s_seat_list(
        page: Page, session, factory, shot):
    stadium = demo_stadium(session)
    buyer = factory.user(name="Willa Wheeler")
    keyboard_log_in(page, buyer.email, PASSWORD)

    page.goto("/")
    tab_to(page, page.get_by_role("link", name=re.compile("Cup Final")))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Choose a section")).to_be_visible()
    tab_to(page, page.get_by_role("link", name="Choose seats from a list"), limit=20)
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Step 1 of 3: choose a section")).to_be_visible()
    north_7 = page.get_by_role("link", name=re.compile(r"^North 7 100 or more seats free, €65\.00 to €95\.00$"))
    tab_to(page, north_7)
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Step 2 of 3: choose a row in North 7")).to_be_focused()
    row_a = page.get_by_role("link", name="Row A 40 of 40 seats free, Category 1, €95.00")
    tab_to(page, row_a)
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Step 3 of 3: choose seats in North 7, row A")).to_be_focused()
    # The list reads the seat's property out in its name, between the price and whether it is free.
    space = page.get_by_role("checkbox", name="Seat 40 Category 1, €95.00, wheelchair space, available")
    companion = page.get_by_role("checkbox", name="Seat 39 Category 1, €95.00, companion seat, available")
    expect(page.get_by_role("checkbox", name=re.compile("wheelchair space"))).to_have_count(2)
    expect(page.get_by_role("checkbox", name=re.compile("companion seat"))).to_have_count(2)
    tab_to(page, companion)
    page.keyboard.press("Space")
    tab_to(page, space)
    page.keyboard.press("Space")
    expect(space).to_be_checked()
    expect(companion).to_be_checked()
    expect(page.locator("input[name=seat]:checked")).to_have_count(2)
    shot("stadium-seat-list-wheelchair", full_page=False)
    axe_check(page, "stadium seat list: a wheelchair space and its companion picked")
    tab_to(page, page.get_by_role("button", name="Reserve selected seats"))
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Your reservation")).to_be_visible()
    hold_id = int(re.search(r"/holds/(\d+)", page.url).group(1))
    held = session.execute(select(Unit.section, Unit.row_label, Unit.seat_number, Unit.wheelchair,
                                  Unit.companion_for).where(Unit.hold_id == hold_id)
                           .order_by(Unit.seat_number)).all()
    assert [(s, r, n) for s, r, n, _, _ in held] == [("North 7", "A", 39), ("North 7", "A", 40)]
    space_id = session.scalar(select(Unit.id).where(Unit.event_id == stadium.id, Unit.section == "North 7",
                                                    Unit.row_label == "A", Unit.seat_number == 40))
    assert held[0].companion_for == space_id and held[1].wheelchair
    assert session.get(Hold, hold_id).user_id == buyer.id
    for label, value in (("Name on card", "Willa Wheeler"), ("Card number", GOOD_CARD), ("Expiry (MM/YY)", "12/30"),
                         ("CVC", "123")):
        tab_to(page, page.get_by_label(label))
        page.keyboard.type(value)
    shot("stadium-seat-list-wheelchair-hold")
    tab_to(page, page.get_by_role("button", name=re.compile("^Pay")))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile("Order #"))).to_be_visible()
    expect(page.locator(".ticket")).to_have_count(2)
    shot("stadium-seat-list-wheelchair-order")
    sold = session.scalars(select(Unit.seat_number).where(Unit.event_id == stadium.id, Unit.status == "sold")
                           .order_by(Unit.seat_number)).all()
    assert sold == [39, 40]


def test_axe_finds_no_serious_violation_on_the_demo_stadium(page: Page, session, shot):
    stadium = demo_stadium(session)
    page.goto(f"/events/{stadium.id}")
    expect(page.locator(".venue-plan .plan-section")).to_have_count(44)
    axe_check(page, "stadium overview")
    page.get_by_role("list", name="Sections").get_by_role("link", name="North 7", exact=True).click()
    expect(page.locator(".section-title")).to_have_text("North 7")
    expect(page.get_by_role("checkbox", name=re.compile(r"^North 7, row A, seat 1, wheelchair space"))).to_be_attached()
    shot("stadium-section-wheelchair", full_page=False)
    axe_check(page, "stadium section page")
    list_url = f"/events/{stadium.id}/seat-list"
    for query, state in (("", "sections"), ("?section=North+7", "rows"), ("?section=North+7&row=A", "seats")):
        page.goto(list_url + query)
        axe_check(page, f"stadium seat list: {state}")
    shot("stadium-seat-list-seats")
