"""The waiting room in a real browser: join before the start, countdown, position, admitted, reserve, pay."""
import re
from datetime import datetime, timedelta, timezone

from playwright.sync_api import Page, expect
from sqlalchemy import text

from e2e.helpers import GOOD_CARD, pay, readme_shot, register
from webapp.extensions import db
from webapp.models import Event
from webapp.services.waiting import waiting_room


def test_join_the_waiting_room_before_the_start_get_admitted_reserve_and_pay(page: Page, factory, shot):
    event = factory.ga_event(capacity=50, title="Hot Gig")
    # Paused at first, so the position stays on the page until the test lets the buyer in.
    # The proof of work the admin's form proposes: the browser solves it when the join is sent.
    waiting_room.configure(db.session, event, enabled=True,
                           sale_starts_at=datetime.now(timezone.utc) + timedelta(seconds=12),
                           admit_per_minute=None, max_shoppers=5,
                           challenge_difficulty=waiting_room.PROPOSED_CHALLENGE_DIFFICULTY)
    waiting_room.control(db.session, event, paused=True)
    db.session.commit()

    register(page)
    page.goto(f"/events/{event.id}")
    expect(page).to_have_url(f"/events/{event.id}/waiting-room")
    expect(page.get_by_role("timer")).to_contain_text("Sales start in")
    joins: list[str] = []
    page.on("request", lambda request: joins.append(request.method) if request.url.endswith("/join") else None)
    page.get_by_role("button", name="Take a place in the waiting room").click()
    expect(page.get_by_text("You are in the waiting room.")).to_be_visible()
    assert joins == ["POST"]  # one post, once solved: the widget held the form's submit (htmx's too)
    # The join carried a solution: a place, and nothing flagged.
    assert db.session.scalar(text("SELECT count(*) FROM waiting_room_entries")) == 1
    assert db.session.scalar(text("SELECT count(*) FROM waiting_room_spent_challenges")) == 1
    assert db.session.scalar(text("SELECT count(*) FROM waiting_room_flags")) == 0
    readme_shot(page, "waiting-room-countdown")
    shot("waiting-room-countdown")

    # The countdown reaches zero; the page reads its number from the draw's published numbers, asking
    # nothing about itself (no /status): the whole room would ask at once.
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    expect(page.get_by_text("You are next.")).to_be_visible(timeout=25000)
    expect(page.get_by_label("Your progress in the waiting room")).to_be_visible()
    expect(page.get_by_text("Admission is paused")).to_be_visible()
    expect(page.locator("#waiting-room-number-hint strong")).to_have_text("1")
    expect(page.get_by_role("timer")).to_be_hidden()
    expect(page.get_by_role("button", name="Leave the waiting room")).to_be_visible()
    assert any(re.search(r"/waiting-room/draw/[0-9]+\.json$", url) for url in asked), asked
    assert not [url for url in asked if "/waiting-room/status" in url], asked
    readme_shot(page, "waiting-room-position")
    shot("waiting-room-position")

    # The admin resumes; the sweep admits, the next poll says so and hands the pass over.
    waiting_room.control(db.session, db.session.get(Event, event.id), paused=False)
    db.session.commit()
    expect(page.get_by_text("It is your turn.")).to_be_visible(timeout=15000)
    shot("waiting-room-admitted")
    page.get_by_role("link", name="Choose your tickets").click()
    page.get_by_role("button", name="One more Tier 1 ticket").click()
    expect(page.get_by_label("Number of Tier 1 tickets")).to_have_value("1")
    page.get_by_role("button", name="Reserve tickets").click()
    expect(page.get_by_role("heading", name="Your reservation")).to_be_visible()
    pay(page, GOOD_CARD)
    expect(page.get_by_role("heading", name="Order #")).to_be_visible()
    expect(page.get_by_text("Payment approved")).to_be_visible()


def test_email_me_when_it_is_my_turn_then_the_mailed_link_lets_me_in_on_another_device(
        page: Page, browser, base_url, factory, shot, dev_mail_dir):
    """Ask for the mail in the room; the sweep admits, the mail worker sends it to the catcher; its link,
    opened in another browser (a phone), asks for the login and then lets the same account in."""
    import email
    import re

    from e2e.helpers import log_in

    event = factory.ga_event(capacity=50, title="Mail Me Gig")
    waiting_room.configure(db.session, event, enabled=True,
                           sale_starts_at=datetime.now(timezone.utc) - timedelta(seconds=1),
                           admit_per_minute=None, max_shoppers=5)
    waiting_room.control(db.session, event, paused=True)
    db.session.commit()

    address = register(page, name="Mo Mailme")
    page.goto(f"/events/{event.id}/waiting-room")
    page.get_by_role("button", name="Take a place in the waiting room").click()
    expect(page.get_by_text("You are next.")).to_be_visible(timeout=15000)
    page.get_by_role("button", name="E-mail me when it is my turn").click()
    expect(page.get_by_role("status").filter(has_text="We will e-mail")).to_contain_text(address)
    shot("waiting-room-mail-asked")

    waiting_room.control(db.session, db.session.get(Event, event.id), paused=False)
    db.session.commit()
    link = None
    for _ in range(40):  # the sweep admits and the mail worker sends, every half second each
        for path in sorted(dev_mail_dir.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if message["To"] == address and message["Subject"] == "It is your turn: Mail Me Gig":
                body = message.get_body(preferencelist=("plain",)).get_content()
                link = re.search(r"http://\S+/waiting-room/turn/\S+", body).group(0)
        if link:
            break
        page.wait_for_timeout(500)
    assert link, "no turn mail reached the catcher"

    phone = browser.new_context(base_url=base_url, viewport={"width": 390, "height": 844})
    try:
        other = phone.new_page()
        other.goto(link)
        expect(other).to_have_url(re.compile(r"/login"))
        log_in(other, address)
        other.goto(link)
        expect(other).to_have_url(f"/events/{event.id}/waiting-room")
        expect(other.get_by_text("It is your turn.")).to_be_visible()
        shot("waiting-room-mail-link-phone", target=other)
        other.get_by_role("link", name="Choose your tickets").click()
        expect(other.get_by_role("button", name="Reserve tickets")).to_be_visible()
    finally:
        phone.close()


def test_a_waiting_page_shows_sold_out_and_tickets_coming_back_from_now_json_alone(page: Page, factory, shot):
    """The room sells out while a page waits with its number, then the seats come back: the page shows both
    from the room's shared now.json, and asks nothing about itself (no request to /status)."""
    from e2e.test_accessibility import axe_check
    from webapp.services.admin import events as admin_events

    admin = factory.user(is_admin=True)
    event = factory.seated_event(rows=1, seats_per_row=2, title="Sell-out Gig")
    seats = factory.seat_ids(event)
    # Paused, so the place keeps waiting with its number while the room's state changes around it.
    waiting_room.configure(db.session, event, enabled=True,
                           sale_starts_at=datetime.now(timezone.utc) - timedelta(seconds=1),
                           admit_per_minute=None, max_shoppers=5)
    waiting_room.control(db.session, event, paused=True)
    db.session.commit()

    def block_every_seat(blocked: bool) -> None:
        # The admin takes every seat off sale (nothing left: sold out) or gives them back; the sweep notices.
        for unit_id in seats:
            admin_events.set_seat_blocked(db.session, actor_id=admin.id, event_id=event.id, unit_id=unit_id,
                                          blocked=blocked)
        db.session.commit()

    page.goto(f"/events/{event.id}/waiting-room")
    page.get_by_role("button", name="Take a place in the waiting room").click()
    expect(page.get_by_text("You are next.")).to_be_visible(timeout=15000)  # its number came: data-number
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    waiting_list = page.get_by_role("link", name="Join the waiting list for returned tickets")
    expect(waiting_list).to_have_count(0)  # drawn, but hidden from everyone, screen readers too
    # What a screen reader is told: words put into a shown role="status" region.
    page.evaluate("""() => { window.said = []; new MutationObserver((changes) => changes.forEach((change) => {
        const region = change.target.closest('[role="status"]');
        if (region && change.addedNodes.length && !region.closest('[hidden]')) window.said.push(region.textContent);
      })).observe(document.getElementById('waiting-room-status'), { childList: true, subtree: true }); }""")

    block_every_seat(True)
    sold_out = page.get_by_text("Every ticket is taken or held right now.")
    expect(sold_out).to_be_visible(timeout=20000)
    assert not [url for url in asked if "/waiting-room/status" in url]
    expect(page.get_by_role("status").filter(has_text="Sold out.")).to_be_visible()
    # A function, not an expression: the page's CSP refuses the eval an expression would need.
    page.wait_for_function("() => window.said.some((words) => words.includes('Sold out.'))")
    expect(waiting_list).to_have_attribute("href", f"/events/{event.id}/waitlist")
    expect(page.get_by_text("You are next.")).to_be_hidden()
    expect(page.get_by_role("button", name="Leave the waiting room")).to_be_hidden()
    shot("waiting-room-sold-out-from-now-json")
    axe_check(page, "waiting room: sold out, shown from now.json")
    assert any(url.endswith("/now.json") for url in asked)
    assert not [url for url in asked if "/waiting-room/status" in url]

    # Nobody is on the waiting list: the seats come back to the room, which admits again (paused here).
    block_every_seat(False)
    # Told sold out, the page polls at its slowest (MAX_POLL_SECONDS, 30 s).
    expect(page.get_by_text("You are next.")).to_be_visible(timeout=45000)
    expect(page.get_by_text("Admission is paused")).to_be_visible()
    expect(sold_out).to_be_hidden()
    expect(waiting_list).to_be_hidden()
    shot("waiting-room-back-from-sold-out")
    axe_check(page, "waiting room: the position again, from now.json")
    assert not [url for url in asked if "/waiting-room/status" in url]
