"""The waiting room in a real browser: join before the start, countdown, position, admitted, reserve, pay."""
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

    # The countdown reaches zero and asks for the position.
    expect(page.get_by_text("You are next.")).to_be_visible(timeout=25000)
    expect(page.get_by_label("Your progress in the waiting room")).to_be_visible()
    expect(page.get_by_text("Admission is paused")).to_be_visible()
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
