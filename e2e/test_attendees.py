"""Attendee details in a real browser: the pay form's names and questions, checked as typed and on paying
(messages beside their fields, nothing charged), then shown on the order page and changed there."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from e2e.helpers import GOOD_CARD, log_in, pay
from webapp.services.admin import questions
from webapp.services.selling import events


def test_a_buyer_names_the_attendees_answers_the_questions_and_changes_a_name_later(page: Page, session, factory,
                                                                                       shot):
    event = factory.event(title="Robotics Workshop")
    events.add_general_tier(session, event, name="Seat", price_minor=2000, capacity=30)
    session.commit()
    questions.set_attendee_settings(session, actor_id=None, event=event, names="required", edit_until=None)
    questions.add_question(session, actor_id=None, event_id=event.id, label="Age", kind="number", options=[],
                           required=False, per_ticket=True, tier_id=None)
    questions.add_question(session, actor_id=None, event_id=event.id, label="Lunch", kind="choice",
                           options=["Vegetarian", "Vegan", "Anything"], required=True, per_ticket=True, tier_id=None)
    questions.add_question(session, actor_id=None, event_id=event.id, label="I agree to be photographed",
                           kind="checkbox", options=[], required=True, per_ticket=False, tier_id=None)
    session.commit()
    log_in(page, factory.user(name="Pat Parent").email)
    page.goto(f"/events/{event.id}")
    for count in (1, 2):
        page.get_by_role("button", name="One more Seat ticket").click()
        expect(page.get_by_label("Number of Seat tickets")).to_have_value(str(count))
    page.get_by_role("button", name="Reserve tickets").click()
    expect(page.get_by_role("heading", name="Attendees")).to_be_visible()

    # Checked as typed, with the rules of the payment.
    page.get_by_label("Age", exact=True).first.fill("eleven")
    page.get_by_label("Age", exact=True).first.press("Tab")
    expect(page.get_by_text("Enter a number, such as 42 or 3.5.")).to_be_visible()
    page.get_by_label("Age", exact=True).first.fill("11")
    page.get_by_label("Age", exact=True).first.press("Tab")
    expect(page.get_by_text("Enter a number, such as 42 or 3.5.")).to_have_count(0)

    # Paying with names missing: the messages beside their fields, the card kept, nothing charged.
    pay(page, GOOD_CARD, name="Pat Parent")
    expect(page.get_by_text("Some attendee details need your attention")).to_be_visible()
    expect(page.get_by_text("Enter the attendee's name.")).to_have_count(2)
    expect(page.get_by_text("Tick this box to go on.")).to_be_visible()
    expect(page.get_by_label("Age", exact=True).first).to_have_value("11")
    shot("attendees-refused")

    names = page.get_by_label("Attendee name")
    names.nth(0).fill("Sam Parent")
    names.nth(1).fill("Alex Parent")
    page.get_by_label("Vegan").first.check()
    page.get_by_label("Anything").nth(1).check()
    page.get_by_label("I agree to be photographed").check()
    shot("attendees-filled")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("heading", name="Order #")).to_be_visible()
    expect(page.get_by_text("Sam Parent")).to_be_visible()
    expect(page.get_by_text("Alex Parent")).to_be_visible()
    expect(page.locator(".ticket").first).to_contain_text("Vegan")
    shot("attendees-order")

    page.get_by_role("link", name="Change attendee details").click()
    page.get_by_label("Attendee name").nth(1).fill("Alexandra Parent")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Attendee details saved.")).to_be_visible()
    expect(page.get_by_text("Alexandra Parent")).to_be_visible()
