"""Buy a ticket, find the confirmation in the dev mail page, download its PDF: in a real browser.

The e2e stack runs the real delivery worker (`flask deliver-mail`) sending
over SMTP to the real catcher (`python -m webapp.mailcatcher`).
"""
from __future__ import annotations

from playwright.sync_api import Page, expect
from pypdf import PdfReader

from e2e.helpers import GOOD_CARD, log_in, pay, register
from tests.factories import PASSWORD


def test_buy_then_open_the_caught_confirmation_and_download_the_tickets(page: Page, factory, shot, tmp_path):
    factory.seated_event(rows=1, seats_per_row=6, title="Mail Night", timezone="Europe/Vienna")
    admin = factory.user(name="Ada Admin", is_admin=True)

    email = register(page, name="Mia Mail")
    page.goto("/")
    page.get_by_role("link", name="Mail Night").click()
    page.get_by_label("Stalls, row A, seat 2,", exact=False).check()
    page.get_by_label("Stalls, row A, seat 3,", exact=False).check()
    page.get_by_role("button", name="Reserve selected seats").click()
    pay(page, GOOD_CARD, name="Mia Mail")
    expect(page.get_by_role("heading", name="Order #")).to_be_visible()
    expect(page.get_by_role("link", name="Download tickets (PDF)")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    log_in(page, admin.email, PASSWORD)
    page.goto("/admin/dev/mail")
    subject = page.get_by_role("link", name="Your tickets for Mail Night", exact=False)
    for _ in range(20):  # the worker passes every half second
        if subject.count():
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(subject).to_be_visible()
    expect(page.get_by_role("cell", name=email).first).to_be_visible()
    shot("dev-mail-list")
    subject.click()

    expect(page.get_by_role("heading", name="Your tickets for Mail Night", exact=False)).to_be_visible()
    frame = page.frame_locator("iframe[title='HTML part of the message']")
    expect(frame.get_by_text("Mail Night").first).to_be_visible()
    expect(frame.get_by_text("CET").first.or_(frame.get_by_text("CEST").first)).to_be_visible()
    shot("dev-mail-message")
    with page.expect_download() as info:
        page.get_by_role("link", name="tickets-order-", exact=False).click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.name.endswith(".pdf")
    pdf = PdfReader(path)
    assert len(pdf.pages) == 2
    assert "Mail Night" in pdf.pages[0].extract_text() and "row A, seat 2" in pdf.pages[0].extract_text()
    assert page.get_by_role("link", name="event-", exact=False).count() == 1  # the .ics is listed too
