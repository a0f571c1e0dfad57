"""A 40,000-seat stadium on a phone: the overview of sections, a section, a hold, payment; and a live section."""
from playwright.sync_api import Page, expect
from sqlalchemy import select

from e2e.helpers import GOOD_CARD, pay, register
from tests.factories import reserve_seats
from webapp.extensions import db
from webapp.models import Unit

PHONE = {"width": 390, "height": 844}


def test_overview_to_section_to_hold_to_payment_on_a_phone(page: Page, factory, shot):
    event = factory.stadium(sections=40, title="Cup Final")
    page.set_viewport_size(PHONE)
    register(page)
    page.goto(f"/events/{event.id}")
    expect(page.get_by_role("heading", name="Choose a section")).to_be_visible()
    expect(page.locator(".venue-plan .plan-section")).to_have_count(40)
    expect(page.locator('input[name="seat"]')).to_have_count(0)
    shot("stadium-overview-phone")

    sections = page.get_by_role("list", name="Sections")
    block_12 = sections.get_by_role("listitem").filter(has_text="Block 12")
    expect(block_12).to_contain_text("1,000 of 1,000 seats left", use_inner_text=False)
    sections.get_by_role("link", name="Block 12", exact=True).click()
    expect(page.locator(".section-title")).to_have_text("Block 12")
    expect(page.locator('input[name="seat"]')).to_have_count(1_000)
    expect(page.locator(".minimap .plan-section.current")).to_have_count(1)
    page.get_by_label("Block 12, row A, seat 20,", exact=False).check()
    page.get_by_label("Block 12, row A, seat 21,", exact=False).check()
    expect(page.get_by_test_id("subtotal")).to_have_text("€180.00")
    shot("stadium-section-phone")

    page.get_by_role("button", name="Reserve selected seats").click()
    expect(page.get_by_role("heading", name="Your reservation")).to_be_visible()
    expect(page.get_by_text("Block 12, row A, seat 20")).to_be_visible()
    pay(page, GOOD_CARD)
    expect(page.get_by_role("heading", name="Order #")).to_be_visible()
    expect(page.locator(".ticket")).to_have_count(2)

    # Back on the overview, the section has two seats fewer.
    page.goto(f"/events/{event.id}")
    expect(page.get_by_role("list", name="Sections").get_by_role("listitem").filter(has_text="Block 12")) \
        .to_contain_text("998 of 1,000 seats left", use_inner_text=False)


def test_a_section_page_greys_a_seat_another_buyer_takes(page: Page, factory, session):
    event = factory.stadium(sections=4, title="Derby")  # 4,000 seats: over the threshold
    page.goto(f"/events/{event.id}/sections/3")
    expect(page.locator(".section-title")).to_have_text("Block 3")
    seat = db.session.scalars(select(Unit.id).where(Unit.event_id == event.id, Unit.section == "Block 3")
                              .order_by(Unit.id)).first()
    box = page.locator(f'input[name="seat"][value="{seat}"]')
    expect(box).to_be_enabled()
    reserve_seats(session, user_id=factory.user().id, event_id=event.id, unit_ids=[seat])
    session.commit()
    expect(box).to_be_disabled(timeout=10_000)
    expect(box).to_have_attribute("aria-label", "Block 3, row A, seat 1, Lower, €90.00, unavailable")


def test_the_demo_stadium_on_a_desktop(page: Page, session, shot):
    from datetime import datetime, timedelta, timezone

    from webapp.services import demo

    event = demo._stadium(session, datetime.now(timezone.utc) + timedelta(days=30))
    session.commit()
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"/events/{event.id}")
    expect(page.locator(".venue-plan .plan-section")).to_have_count(44)
    shot("demo-stadium-overview")
    page.get_by_role("list", name="Sections").get_by_role("link", name="West 3", exact=True).click()
    expect(page.locator(".section-title")).to_have_text("West 3")
    shot("demo-stadium-section")


def test_a_big_section_is_walked_a_part_at_a_time_on_a_phone(page: Page, factory, shot):
    event = factory.stadium(sections=2, rows=40, seats_per_row=50, title="Big Blocks")  # 2,000-seat sections
    page.set_viewport_size(PHONE)
    page.goto(f"/events/{event.id}/sections/2")
    expect(page.locator('input[name="seat"]')).to_have_count(1_000)
    parts = page.locator(".section-parts")
    expect(parts.locator("[aria-current=page]")).to_have_text("Rows A–V")
    shot("stadium-section-parts-phone", full_page=False)
    parts.get_by_role("link", name="Rows W–AR").click()
    expect(parts.locator("[aria-current=page]")).to_have_text("Rows W–AR")
    expect(page.locator('input[name="seat"]')).to_have_count(1_000)
    expect(page.get_by_label("Block 2, row W, seat 1,", exact=False)).to_be_visible()
