"""Two organisers sharing staff: the manager of one cannot reach the other in the browser, and a
door member of an organiser sees only check-in."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from e2e.helpers import log_in
from webapp.models import Organiser, OrganiserMember


def _two_organisers(session, factory):
    alpha, bravo = Organiser(slug="harbour-hall", name="Harbour Hall"), Organiser(slug="river-club", name="River Club")
    session.add_all([alpha, bravo])
    session.flush()
    harbour = factory.ga_event(capacity=10, title="Harbour Gala", organiser_id=alpha.id)
    river = factory.ga_event(capacity=10, title="River Jam", organiser_id=bravo.id)
    shared = factory.user("sam@example.com", name="Sam Shared")
    doorman = factory.user("dee@example.com", name="Dee Door")
    session.add_all([OrganiserMember(organiser_id=alpha.id, user_id=shared.id, role="manager"),
                     OrganiserMember(organiser_id=bravo.id, user_id=shared.id, role="viewer"),
                     OrganiserMember(organiser_id=bravo.id, user_id=doorman.id, role="door")])
    session.commit()
    return alpha, bravo, harbour, river, shared, doorman


def test_a_manager_of_one_organiser_cannot_reach_the_other(page: Page, session, factory, shot):
    alpha, bravo, harbour, river, shared, _ = _two_organisers(session, factory)
    log_in(page, shared.email)
    page.get_by_role("link", name="Manage").click()
    expect(page.get_by_text("Acting for Harbour Hall as manager")).to_be_visible()
    expect(page.get_by_role("link", name="Harbour Gala")).to_be_visible()
    expect(page.get_by_text("River Jam")).to_have_count(0)
    shot("organisers-manager")
    # River Club's event, by its address, while acting for Harbour Hall: not found.
    answer = page.goto(f"/admin/events/{river.id}/edit")
    assert answer is not None and answer.status == 404
    # Switching to River Club, where Sam is only a viewer: the dashboard reads, the edit form is refused.
    page.goto("/admin/")
    page.get_by_label("Act for").select_option(label="River Club")
    page.get_by_role("button", name="Switch").click()
    expect(page.get_by_text("Acting for River Club as viewer")).to_be_visible()
    expect(page.get_by_role("link", name="River Jam")).to_be_visible()
    expect(page.get_by_role("link", name="New event")).to_have_count(0)
    answer = page.goto(f"/admin/events/{river.id}/edit")
    assert answer is not None and answer.status == 403
    answer = page.goto(f"/admin/events/{harbour.id}")
    assert answer is not None and answer.status == 404
    page.goto(f"/admin/events/{river.id}")
    shot("organisers-viewer-dashboard")


def test_a_door_member_sees_only_check_in(page: Page, session, factory, shot):
    _, _, _, river, _, doorman = _two_organisers(session, factory)
    log_in(page, doorman.email)
    page.goto("/admin/")
    expect(page.get_by_text("Acting for River Club as door")).to_be_visible()
    expect(page.get_by_role("link", name="Orders")).to_have_count(0)
    expect(page.get_by_role("link", name="Webhooks")).to_have_count(0)
    page.get_by_role("link", name="Check-in").click()
    expect(page).to_have_url(re.compile(rf"/admin/events/{river.id}/check-in$"))
    tabs = page.get_by_role("navigation", name="Manage this event").get_by_role("link")
    expect(tabs).to_have_count(1)
    shot("organisers-door")
    answer = page.goto(f"/admin/events/{river.id}")
    assert answer is not None and answer.status == 403


def test_the_platform_administrator_the_team_and_the_public_page(page: Page, session, factory, shot):
    alpha, _, _, _, shared, _ = _two_organisers(session, factory)
    admin = factory.user("root@example.com", name="Pat Platform", is_admin=True)
    log_in(page, admin.email)
    page.goto("/admin/organisers")
    page.get_by_label("Name").fill("Dockside Arts")
    page.get_by_label("Address (/o/…)").fill("dockside-arts")
    page.get_by_role("button", name="Add organiser").click()
    expect(page.get_by_role("link", name="/o/dockside-arts")).to_be_visible()
    shot("organisers-platform")
    page.get_by_role("button", name="Act for Harbour Hall").click()
    expect(page.get_by_text("Acting for Harbour Hall as owner")).to_be_visible()
    page.get_by_role("link", name="Team").click()
    expect(page.get_by_role("cell", name="Sam Shared", exact=True)).to_be_visible()
    shot("organisers-team")
    page.goto("/o/harbour-hall")
    expect(page.get_by_role("heading", name="Harbour Hall")).to_be_visible()
    expect(page.get_by_text("Harbour Gala")).to_be_visible()
    expect(page.get_by_text("River Jam")).to_have_count(0)
    shot("organisers-public-page")
