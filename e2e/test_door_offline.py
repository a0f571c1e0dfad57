"""The door without a network, in real browsers: the page takes its code list, goes offline, admits three tickets
and refuses a duplicate from the list, comes back online and the server agrees; then two phones (two contexts) let
the same ticket in offline, and after syncing the second is flagged on both phones and in the admin view."""
from __future__ import annotations

from playwright.sync_api import Browser, Page, expect
from sqlalchemy import func, select

from e2e.helpers import log_in
from tests.support import buy, door_member
from webapp.models import DoorDuplicate, Ticket

PHONE = {"width": 390, "height": 844}


def _scan(page: Page, code: str, word: str) -> None:
    page.get_by_label("Ticket code").fill(code)
    page.get_by_role("button", name="Check in").click()
    expect(page.get_by_role("alert")).to_contain_text(word)
    page.get_by_role("alert").click()  # tap for the next ticket
    expect(page.get_by_role("alert")).to_have_count(0)


def _open_door(page: Page, event_id: int, email: str) -> None:
    page.set_viewport_size(PHONE)
    log_in(page, email)
    page.goto(f"/door/events/{event_id}")
    expect(page.locator("[data-door-offline][data-list-ready='1']")).to_have_count(1)
    expect(page.locator("#door-sync")).to_contain_text("Online")


def _checked_in(session, event_id: int) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Ticket).where(Ticket.event_id == event_id,
                                                                         Ticket.checked_in_at.is_not(None)))


def test_offline_check_ins_are_kept_and_synced_and_the_server_agrees(page: Page, session, factory, shot):
    event = factory.ga_event(capacity=10, title="Seaside Rave")
    staff = factory.user(name="Olly Offline")
    door_member(session, event, staff)
    codes = [buy(session, event, factory.user()).tickets[0].code for _ in range(4)]
    _open_door(page, event.id, staff.email)

    page.context.set_offline(True)
    expect(page.locator("#door-sync")).to_contain_text("Offline")
    for code in codes[:3]:
        _scan(page, code, "ADMIT")
    _scan(page, codes[1], "ALREADY IN")
    _scan(page, "not-a-ticket-code", "NOT ON THE LIST")
    expect(page.locator("#door-sync")).to_contain_text("3 check-ins waiting to sync")
    shot("door-offline")
    assert _checked_in(session, event.id) == 0  # nothing reached the server yet

    page.context.set_offline(False)
    expect(page.locator("#door-sync")).to_contain_text("0 check-ins waiting to sync", timeout=15000)
    expect(page.locator("#door-sync")).not_to_contain_text("last synced never")
    assert _checked_in(session, event.id) == 3
    shot("door-synced")


def test_two_offline_phones_let_one_ticket_in_and_both_learn_the_second_was_flagged(browser: Browser, session,
                                                                                     factory, base_url, shot):
    event = factory.ga_event(capacity=10, title="Harbour Gates")
    staff = factory.user(name="Gail Gate")
    door_member(session, event, staff)
    code = buy(session, event, factory.user()).tickets[0].code
    phones = []
    for _ in range(2):
        context = browser.new_context(base_url=base_url)
        page = context.new_page()
        _open_door(page, event.id, staff.email)
        phones.append(page)
    for page in phones:
        page.context.set_offline(True)
    for page in phones:  # the first phone first, by its clock
        _scan(page, code, "ADMIT")
    for page in phones:
        page.context.set_offline(False)
        expect(page.locator("#door-sync")).to_contain_text("0 check-ins waiting", timeout=15000)
    # Both learn it: the first at its next sync (every 10 s), the second at once.
    expect(phones[1].locator("#door-flags")).to_contain_text("this phone's entry was the second", timeout=15000)
    expect(phones[0].locator("#door-flags")).to_contain_text("this phone's entry stands", timeout=20000)
    shot("door-flagged", phones[1].locator(".door"))
    session.expire_all()
    flagged = session.scalars(select(DoorDuplicate)).one()
    first = phones[0].locator("[data-device]").get_attribute("data-device")
    assert flagged.first_device == first and flagged.device != first
    for page in phones:
        page.context.close()
