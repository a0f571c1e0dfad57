"""The organiser's side in German and Spanish, in a real browser: the dashboard and the door's
scanner page, whose scripts take their words from the page."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from e2e.helpers import log_in
from tests.support import buy, door_member
from webapp.i18n import LANGUAGE_COOKIE

PHONE = {"width": 390, "height": 844}


def _speak(page: Page, base_url: str, language: str) -> None:
    # Logged in first, in English: the login form is the buyer's side and speaks whatever that side speaks.
    page.context.add_cookies([{"name": LANGUAGE_COOKIE, "value": language, "url": base_url}])


def test_a_german_dashboard(page: Page, base_url, session, factory, shot):
    event = factory.ga_event(capacity=40, title="Hafenkonzert")
    buy(session, event, factory.user(name="Greta Gast"))
    admin = factory.user(name="Ada Admin", is_admin=True)
    log_in(page, admin.email)
    _speak(page, base_url, "de")
    page.goto(f"/admin/events/{event.id}")
    expect(page.get_by_role("link", name="Übersicht")).to_be_visible()
    expect(page.get_by_text("Nach Kategorie")).to_be_visible()
    expect(page.get_by_role("button", name="Verkauf schließen")).to_be_visible()
    shot("i18n-admin-dashboard-de")


def test_the_door_in_spanish_and_german_with_the_scripts_words(page: Page, base_url, session, factory, shot):
    event = factory.ga_event(capacity=10, title="Noche del Puerto")
    staff = factory.user(name="Dora Door")
    door_member(session, event, staff)
    code = buy(session, event, factory.user(name="Guest 0")).tickets[0].code
    page.set_viewport_size(PHONE)
    log_in(page, staff.email)
    _speak(page, base_url, "de")
    page.goto(f"/door/events/{event.id}")
    # door_offline.js writes the sync line from the page's words.
    expect(page.locator("#door-sync")).to_contain_text("zuletzt synchronisiert")
    shot("i18n-door-page-de")
    page.get_by_label("Ticketcode").fill(code)
    page.get_by_role("button", name="Einlassen").click()
    expect(page.get_by_role("alert")).to_contain_text("EINLASS")
    shot("i18n-door-de")
    _speak(page, base_url, "es")
    page.goto(f"/door/events/{event.id}")
    expect(page.locator("#door-sync")).to_contain_text("última sincronización")
    page.get_by_label("Código de la entrada").fill(code)
    page.get_by_role("button", name="Validar").click()
    expect(page.get_by_role("alert")).to_contain_text("YA ESTÁ DENTRO")
    shot("i18n-door-es")
