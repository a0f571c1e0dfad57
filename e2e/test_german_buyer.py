"""A German browser buys a ticket and gets German mail, a German ticket PDF and a German `.ics`.

The browser says `de-DE`; everything the buyer is sent afterwards is made by
the real mail worker (no request, no browser) in the language the order
remembers, and caught by the e2e stack's SMTP catcher. The steps use the
pages' structure (names of fields, ids of forms), not their words, so they
hold whatever the buyer pages' own translation says.
"""
from __future__ import annotations

import io
from email import policy
from email.parser import BytesParser

import pytest
from icalendar import Calendar
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from e2e.helpers import GOOD_CARD
from tests.factories import PASSWORD


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "locale": "de-DE"}


def caught_mail(folder, to: str, page: Page):
    """The caught message to `to`, waiting for the worker (it passes every half second)."""
    for _ in range(40):
        for path in sorted(folder.glob("*.eml")):
            message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            if message["To"] == to:
                return message
        page.wait_for_timeout(500)
    raise AssertionError(f"no mail to {to} caught")


def test_a_german_buyer_gets_german_mail_pdf_and_calendar(page: Page, factory, shot, dev_mail_dir):
    event = factory.seated_event(rows=1, seats_per_row=4, title="Die Zauberflöte", timezone="Europe/Berlin")
    buyer = factory.user(name="Greta Käufer")

    page.goto("/login")
    page.locator("input[name=email]").fill(buyer.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("input[name=password]").press("Enter")
    expect(page.locator("form[action='/logout']")).to_be_attached()
    page.goto(f"/events/{event.id}")
    page.locator("#seat-map input[name=seat]:not([disabled])").first.check()
    page.locator("#reserve-button").click()
    form = page.locator("#pay-form")
    expect(form).to_be_visible()
    # The card form's labels are this branch's: German for this browser.
    expect(form.get_by_label("Kartennummer")).to_be_visible()
    form.locator("input[name=name]").fill("Greta Käufer")
    form.locator("input[name=number]").fill(GOOD_CARD)
    form.locator("input[name=expiry]").fill("12/30")
    form.locator("input[name=cvc]").fill("123")
    form.locator("button[type=submit]").click()
    expect(page.get_by_text("Zahlung bestätigt. Ihre Tickets sind bereit.")).to_be_visible(timeout=15000)
    shot("german-buyer-order")
    order_id = int(page.url.rstrip("/").rsplit("/", 1)[-1])

    mail = caught_mail(dev_mail_dir, buyer.email, page)
    assert mail["Subject"] == f"Ihre Tickets für Die Zauberflöte (Bestellung Nr. {order_id})"
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "Hallo Greta Käufer," in text and "vielen Dank für Ihre Bestellung" in text and "Bezahlt gesamt:" in text
    html_body = mail.get_body(preferencelist=("html",)).get_content()
    assert 'lang="de"' in html_body and "Zu Ihrer Bestellung" in html_body
    page.set_content(html_body)
    shot("german-buyer-mail")

    files = {part.get_filename(): part.get_payload(decode=True) for part in mail.iter_attachments()}
    tickets = " ".join(PdfReader(io.BytesIO(files[f"tickets-order-{order_id}.pdf"])).pages[0].extract_text().split())
    assert "Ticket 1 von 1" in tickets and f"Bestellung Nr. {order_id} · Greta Käufer" in tickets
    assert "Zeigen Sie diese Seite oder den QR-Code am Einlass vor." in tickets
    vevent = Calendar.from_ical(files[f"event-{event.id}.ics"]).walk("VEVENT")[0]
    assert str(vevent["SUMMARY"]) == "Die Zauberflöte"
    assert str(vevent["DESCRIPTION"]).startswith(f"Ihre Bestellung Nr. {order_id} im/in Test Hall. Ihre Tickets:")
