"""Codes in a real browser: a discount code applied on the hold page (htmx, in place) and paid at the
discounted total; an access link that reveals a hidden tier."""
from __future__ import annotations

import secrets

from playwright.sync_api import Page, expect

from e2e.helpers import GOOD_CARD, log_in, pay, readme_shot
from tests.support import GOOD, make_gateway
from webapp.services.admin import codes as code_admin
from webapp.services.money import checkout
from webapp.services.selling import codes, events


def _reserve(page: Page, tier: str, n: int) -> None:
    """Step a tier's quantity up to n on the event page, then reserve."""
    for count in range(1, n + 1):
        page.get_by_role("button", name=f"One more {tier} ticket").click()
        expect(page.get_by_label(f"Number of {tier} tickets")).to_have_value(str(count))
    page.get_by_role("button", name="Reserve tickets").click()


def test_a_buyer_applies_a_discount_code_and_pays_the_discounted_total(page: Page, session, factory, shot):
    event = factory.event(title="Harbour Jazz Night")
    events.add_general_tier(session, event, name="Standing", price_minor=3000, capacity=50)
    session.commit()
    code_admin.create_code(session, event_id=event.id, raw_code="JAZZ20", actor_id=None,
                           spec=code_admin.CodeSpec(kind="discount", percent_off=20, max_uses=100))
    session.commit()
    buyer = factory.user(name="Dora Discount")
    log_in(page, buyer.email)
    page.goto(f"/events/{event.id}")
    _reserve(page, "Standing", 2)
    expect(page.get_by_role("heading", name="Your reservation")).to_be_visible()
    expect(page.get_by_role("button", name="Pay €60.00")).to_be_visible()

    page.get_by_label("Discount code").fill("jazz2O")  # a typo first: said beside the field
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#discount-error")).to_contain_text("The code JAZZ2O can't be used")
    page.get_by_label("Discount code").fill("jazz20")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("Code JAZZ20 applied", exact=False)).to_be_visible()
    expect(page.locator("#hold-total")).to_have_text("€48.00")
    expect(page.get_by_role("button", name="Pay €48.00")).to_be_visible()
    expect(page.get_by_role("timer")).to_be_visible()  # the swap kept the countdown running
    shot("discount-applied")
    readme_shot(page, "discount-code")

    pay(page, GOOD_CARD, name="Dora Discount")
    expect(page.get_by_role("heading", name="Order #")).to_be_visible()
    expect(page.get_by_text("€48.00 (code JAZZ20: −€12.00)", exact=False)).to_be_visible()
    expect(page.locator(".ticket")).to_have_count(2)
    expect(page.locator(".ticket").first).to_contain_text("€24.00")
    shot("discount-order")


def test_an_access_link_reveals_a_hidden_tier(page: Page, session, factory, shot):
    event = factory.event(title="Album Launch")
    events.add_general_tier(session, event, name="General", price_minor=2500, capacity=100)
    hidden = events.add_general_tier(session, event, name="Fan Club Early Entry", price_minor=2000, capacity=40,
                                     sort_order=1, hidden=True)
    session.commit()
    code_admin.create_code(session, event_id=event.id, raw_code="FANCLUB", actor_id=None,
                           spec=code_admin.CodeSpec(kind="access", tier_ids=(hidden.id,)))
    session.commit()
    buyer = factory.user(name="Fiona Fan")
    log_in(page, buyer.email)

    page.goto(f"/events/{event.id}")
    expect(page.get_by_text("General", exact=True).first).to_be_visible()
    expect(page.get_by_text("Fan Club Early Entry")).to_have_count(0)

    page.goto(f"/events/{event.id}?access=fanclub")
    expect(page.get_by_text("Code FANCLUB accepted", exact=False)).to_be_visible()
    expect(page.get_by_text("Fan Club Early Entry").first).to_be_visible()
    shot("access-link")
    readme_shot(page, "access-link")
    _reserve(page, "Fan Club Early Entry", 2)
    expect(page.get_by_role("heading", name="Your reservation")).to_be_visible()
    expect(page.get_by_text("Fan Club Early Entry").first).to_be_visible()
    expect(page.get_by_role("button", name="Pay €40.00")).to_be_visible()


def test_an_admin_creates_a_code_and_sees_its_uses_and_revenue(page: Page, session, factory, shot):
    event = factory.event(title="Harbour Jazz Night")
    events.add_general_tier(session, event, name="Standing", price_minor=3000, capacity=50)
    session.commit()
    admin = factory.user(name="Ada Admin", is_admin=True)
    log_in(page, admin.email)
    page.goto(f"/admin/events/{event.id}/codes")
    new = page.locator("#new-code")
    new.get_by_label("Code", exact=True).fill("early15")
    new.get_by_label("Percent off").fill("15")
    new.get_by_label("Total uses").fill("50")
    new.get_by_role("button", name="Create code").click()
    row = page.locator("tr", has_text="EARLY15")
    expect(row).to_contain_text("15% off")
    expect(row).to_contain_text("0 / 50")

    # A buyer uses it (through the services); the list shows the use and what it brought in.
    buyer = factory.user()
    hold = factory.hold(event, buyer, quantities={event.tiers[0].id: 2})
    codes.apply_discount(session, hold_id=hold.id, user_id=buyer.id, raw_code="EARLY15")
    session.commit()
    checkout.pay(session, make_gateway(), hold_id=hold.id, user_id=buyer.id,
                 idempotency_key=secrets.token_urlsafe(24), card=GOOD)
    page.reload()
    row = page.locator("tr", has_text="EARLY15")
    expect(row).to_contain_text("1 / 50")
    expect(row).to_contain_text("€51.00")
    shot("admin-codes")
    readme_shot(page, "admin-codes")


def test_a_hidden_seat_tier_shows_as_not_for_sale_until_the_access_link(page: Page, session, factory, shot):
    event = factory.event(title="Opera Gala")
    stalls = events.add_seated_tier(session, event, name="Stalls", price_minor=5000)
    box = events.add_seated_tier(session, event, name="Royal Box", price_minor=9000, sort_order=1)
    box.hidden = True
    events.generate_section(session, event, events.SectionSpec("Hall", 3, 8, 0, 0, ((0, 1, stalls), (2, 2, box))))
    session.commit()
    code_admin.create_code(session, event_id=event.id, raw_code="ROYAL", actor_id=None,
                           spec=code_admin.CodeSpec(kind="access", tier_ids=(box.id,)))
    session.commit()
    log_in(page, factory.user(name="Olga Opera").email)

    page.goto(f"/events/{event.id}")
    row_c = page.get_by_label("Hall, row C, seat 4, not for sale")
    expect(row_c).to_be_disabled()
    expect(page.get_by_text("Royal Box")).to_have_count(0)
    shot("hidden-seats-locked")

    page.goto(f"/events/{event.id}?access=royal")
    seat = page.get_by_label("Hall, row C, seat 4, Royal Box", exact=False)
    expect(seat).to_be_enabled()
    seat.check()
    page.get_by_role("button", name="Reserve selected seats").click()
    expect(page.get_by_role("heading", name="Your reservation")).to_be_visible()
    expect(page.get_by_role("button", name="Pay €90.00")).to_be_visible()
    shot("hidden-seats-held")
