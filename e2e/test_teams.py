"""Teams in the browser: two organisers sharing a member, who manages one and sells at the other's box office;
the manager of one cannot reach the other's pages, a door member sees only check-in, and the clerk sells a
ticket at the door, paid in cash, and prints it."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from sqlalchemy import select

from e2e.helpers import log_in
from e2e.test_accessibility import axe_check
from webapp.models import Order, Organiser, OrganiserMember


def _two_organisers(session, factory):
    harbour_org = Organiser(slug="harbour-teams", name="Harbour Hall")
    river_org = Organiser(slug="river-teams", name="River Club")
    session.add_all([harbour_org, river_org])
    session.flush()
    harbour = factory.ga_event(capacity=10, title="Harbour Gala", organiser_id=harbour_org.id)
    river = factory.ga_event(capacity=3, title="River Jam", organiser_id=river_org.id)
    shared = factory.user("kim@example.com", name="Kim Shared")
    doorman = factory.user("dan@example.com", name="Dan Door")
    session.add_all([OrganiserMember(organiser_id=harbour_org.id, user_id=shared.id, role="manager"),
                     OrganiserMember(organiser_id=river_org.id, user_id=shared.id, role="box_office"),
                     OrganiserMember(organiser_id=river_org.id, user_id=doorman.id, role="door",
                                     event_ids=[river.id])])
    session.commit()
    return harbour, river, shared, doorman


def test_the_manager_of_one_organiser_cannot_reach_the_others_pages(page: Page, session, factory, shot):
    harbour, river, shared, _ = _two_organisers(session, factory)
    log_in(page, shared.email)
    page.goto("/admin/")
    page.get_by_label("Act for").select_option(label="Harbour Hall")
    page.get_by_role("button", name="Switch").click()
    expect(page.get_by_text("Acting for Harbour Hall as manager")).to_be_visible()
    expect(page.get_by_text("River Jam")).to_have_count(0)
    for path in (f"/admin/events/{river.id}", f"/admin/events/{river.id}/edit", f"/admin/orders?event={river.id}",
                 f"/admin/box-office/events/{river.id}", f"/admin/events/{river.id}/check-in"):
        answer = page.goto(path)
        assert answer is not None and answer.status == 404, path
    page.goto(f"/admin/box-office/events/{harbour.id}")
    expect(page.get_by_role("heading", name="Sell at the door: Harbour Gala")).to_be_visible()


def test_a_door_member_sees_only_check_in(page: Page, session, factory, shot):
    _, river, _, doorman = _two_organisers(session, factory)
    log_in(page, doorman.email)
    page.goto("/admin/")
    expect(page.get_by_text("Acting for River Club as door")).to_be_visible()
    for name in ("Orders", "Box office", "Team", "Webhooks"):
        expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)
    page.get_by_role("link", name="Check-in").click()
    expect(page).to_have_url(re.compile(rf"/admin/events/{river.id}/check-in$"))
    expect(page.get_by_role("heading", name="Who checks in at this event")).to_be_visible()
    shot("teams-door-check-in")
    axe_check(page, "the check-in page for a door member")
    for path in ("/admin/box-office", f"/admin/box-office/events/{river.id}", f"/admin/events/{river.id}"):
        answer = page.goto(path)
        assert answer is not None and answer.status == 403, path


def test_a_box_office_clerk_sells_a_ticket_at_the_door(page: Page, session, factory, shot):
    _, river, shared, _ = _two_organisers(session, factory)
    log_in(page, shared.email)
    page.goto("/admin/")
    page.get_by_label("Act for").select_option(label="River Club")
    page.get_by_role("button", name="Switch").click()
    expect(page.get_by_text("Acting for River Club as box office")).to_be_visible()
    page.get_by_role("link", name="Box office").click()
    shot("teams-box-office")
    axe_check(page, "the box office")
    page.get_by_role("link", name="Sell: River Jam").click()
    page.get_by_label("Tier 1").fill("2")
    page.get_by_label("Cash").check()
    page.get_by_label("Buyer's e-mail for the tickets (optional)").fill("walk-in@example.com")
    shot("teams-box-office-sell")
    axe_check(page, "a sale at the door")
    page.get_by_role("button", name="Sell and print").click()
    expect(page.locator(".print-ticket")).to_have_count(2)
    expect(page.get_by_text("sold at the box office").first).to_be_visible()
    shot("teams-box-office-tickets")
    axe_check(page, "the printable tickets")
    order = session.scalars(select(Order).where(Order.event_id == river.id)).one()
    assert (order.channel, order.sold_by, order.buyer_email) == ("box_office", shared.id, "walk-in@example.com")

    # One place left: asking for two is refused with what is left, nothing sold.
    page.goto(f"/admin/box-office/events/{river.id}")
    page.get_by_label("Tier 1").fill("2")
    page.get_by_role("button", name="Sell and print").click()
    expect(page.get_by_role("alert")).to_contain_text("1")
    shot("teams-box-office-refused")
    axe_check(page, "a refused sale at the door")

    # Found again by the typed address, and its tickets resent.
    page.goto("/admin/box-office")
    page.get_by_label(re.compile("Find an order")).fill("walk-in@example.com")
    page.get_by_role("button", name="Find").click()
    page.get_by_role("link", name=f"#{order.id}").click()
    expect(page.get_by_text("at the box office by Kim Shared")).to_be_visible()
    page.get_by_role("button", name="Resend the tickets").click()
    expect(page.get_by_text("The tickets are on their way to walk-in@example.com again.")).to_be_visible()
    shot("teams-box-office-order")
