"""A German browser gets German pages; switching to Spanish on the hold page keeps the page and the hold."""
import re

from playwright.sync_api import Browser, expect

from tests.factories import PASSWORD


def test_a_german_browser_reads_german_and_the_switch_to_spanish_keeps_the_hold(browser: Browser, base_url, factory,
                                                                                 shot):
    factory.seated_event(rows=2, seats_per_row=6, title="Kammermusik")
    buyer = factory.user(name="Greta Käufer")
    context = browser.new_context(base_url=base_url, locale="de-DE")
    page = context.new_page()
    try:
        page.goto("/login")
        expect(page.locator("html")).to_have_attribute("lang", "de")
        expect(page.get_by_role("heading", name="Anmelden")).to_be_visible()
        # The form's own labels are the Python side's; its fields are found by their names.
        page.locator("input[name=email]").fill(buyer.email)
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("main form button[type=submit]").click()
        expect(page.get_by_role("button", name="Abmelden")).to_be_visible()

        page.goto("/")
        expect(page.get_by_role("heading", name="Kommende Veranstaltungen")).to_be_visible()
        page.get_by_role("link", name="Kammermusik").click()
        expect(page.get_by_role("heading", name="Ihre Auswahl")).to_be_visible()
        shot("languages-de-event", target=page)
        page.get_by_label("Stalls, Reihe A, Platz 3,", exact=False).check()
        page.get_by_label("Stalls, Reihe A, Platz 4,", exact=False).check()
        page.get_by_role("button", name="Ausgewählte Plätze reservieren").click()

        expect(page.get_by_role("heading", name="Ihre Reservierung")).to_be_visible()
        expect(page.get_by_role("timer")).to_contain_text("Ihre Plätze sind reserviert für")
        hold_url = page.url
        left_in_german = page.locator("#countdown").get_attribute("data-seconds-left")
        shot("languages-de-hold", target=page)

        page.get_by_role("button", name="Español").click()
        expect(page.get_by_role("heading", name="Su reserva")).to_be_visible()
        expect(page.locator("html")).to_have_attribute("lang", "es")
        assert page.url == hold_url
        # The same hold: its seats, and its clock still running down, not a new one.
        expect(page.get_by_text("Stalls, fila A, asiento 3")).to_be_visible()
        expect(page.get_by_text("Stalls, fila A, asiento 4")).to_be_visible()
        expect(page.get_by_role("timer")).to_contain_text("Sus asientos están reservados durante")
        left_in_spanish = page.locator("#countdown").get_attribute("data-seconds-left")
        assert 0 <= int(left_in_german) - int(left_in_spanish) <= 30
        expect(page.get_by_role("button", name=re.compile(r"^Pagar "))).to_be_visible()
        shot("languages-es-hold", target=page)

        # Remembered: the next page is Spanish too, whatever the browser asks for.
        page.goto("/")
        expect(page.get_by_role("heading", name="Próximos eventos")).to_be_visible()
    finally:
        context.close()
