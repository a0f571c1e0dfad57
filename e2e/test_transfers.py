"""A ticket passed on in a real browser: the holder sends it from the order page, the recipient follows the mail's
link, creates an account on the way back, accepts, and finds it under My tickets; the sender sees to whom it went."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from sqlalchemy import select

from e2e.helpers import log_in
from tests.factories import PASSWORD
from tests.support import buy
from webapp.models import OutboxMessage


def test_a_holder_passes_a_ticket_on_and_the_recipient_accepts_it(page: Page, session, factory, shot):
    event = factory.ga_event(capacity=20, title="Harbour Lights Concert")
    sender = factory.user(name="Sue Sender")
    order = buy(session, event, sender)
    old_code = order.tickets[0].code
    log_in(page, sender.email)
    page.goto(f"/orders/{order.id}")
    page.get_by_text("Transfer this ticket").click()
    page.get_by_label("Recipient's e-mail").fill("rae.e2e@example.com")
    page.get_by_role("button", name="Send the ticket").click()
    expect(page.get_by_text("We sent the ticket to rae.e2e@example.com")).to_be_visible()
    expect(page.get_by_role("button", name="Withdraw the transfer")).to_be_visible()
    shot("transfer-offered")

    session.expire_all()
    body = session.scalars(select(OutboxMessage.body).where(OutboxMessage.template == "ticket_transfer")).one()
    path = re.search(r"https?://[^/\s]+(/transfers/accept/\S+)", body).group(1)
    page.get_by_role("button", name="Log out").click()

    page.goto(path)
    expect(page.get_by_text("Sue Sender is passing on a ticket")).to_be_visible()
    page.get_by_role("link", name="create an account").click()
    page.get_by_label("Name").fill("Rae Recipient")
    page.get_by_label("E-mail").fill("rae.e2e@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("button", name="Accept the ticket")).to_be_visible()
    shot("transfer-accept")
    page.get_by_role("button", name="Accept the ticket").click()
    expect(page.get_by_role("heading", name="Passed on to you")).to_be_visible()
    expect(page.get_by_text(old_code)).to_have_count(0)
    shot("transfer-received")

    page.get_by_role("button", name="Log out").click()
    log_in(page, sender.email)
    page.goto(f"/orders/{order.id}")
    expect(page.get_by_text("Transferred to rae.e2e@example.com")).to_be_visible()
    expect(page.get_by_text(old_code)).to_have_count(0)
    shot("transfer-sender")
