"""The buyer's waiting-list pages over HTTP: join, place, offer banner, decline, leave."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.support import buy, cancel, csrf_token, login
from webapp.models import WaitlistEntry, WaitlistStatus

HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _rate_limits_off():
    """These tests log in often and are not about rate limits. The limiter is
    one object shared by every app in the process, and a test elsewhere that
    builds an app with limits on switches it on for all of them."""
    from webapp.extensions import limiter

    saved = limiter.enabled
    limiter.enabled = False
    yield
    limiter.enabled = saved


def forget_user():
    """Requests share the test's app context, so the logged-in user and CSRF
    token cached in `g` must be forgotten before another client's request."""
    from flask import g

    g.pop("_login_user", None)
    g.pop("csrf_token", None)


def switch_client(app):
    forget_user()
    return app.test_client()


@pytest.fixture
def sold_out(session, factory, gateway):
    event = factory.ga_event(capacity=2, per_order_limit=4, title="Tiny Gig")
    orders = [buy(session, event, u, gateway=gateway) for u in factory.users(2)]
    return event, orders


def text_of(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def join(client, event, token, quantity="2", tier="any", headers=None):
    return client.post(f"/events/{event.id}/waitlist", data={"quantity": quantity, "tier": tier},
                       headers={"X-CSRFToken": token, **(headers or {})})


def test_event_page_shows_status_and_the_join_form_when_sold_out(client, factory, sold_out):
    event, _ = sold_out
    page = text_of(client.get(f"/events/{event.id}"))
    assert '<dt>Sold</dt><dd data-count="sold">2</dd>' in page.replace("> <", "><")
    assert "Log in to join the waiting list" in page

    login(client, factory.user().email)
    page = text_of(client.get(f"/events/{event.id}"))
    assert 'id="waitlist-join"' in page and "Join the waiting list" in page

    open_event = factory.ga_event(capacity=5, title="Plenty")
    assert 'id="waitlist-join"' not in text_of(client.get(f"/events/{open_event.id}"))


def test_join_shows_the_place_and_refuses_a_second_time(client, factory, sold_out):
    event, _ = sold_out
    first, second = factory.users(2)
    login(client, first.email)
    token = csrf_token(client)
    response = join(client, event, token, headers=HX)
    assert response.status_code == 200
    body = text_of(response)
    assert "You are number 1 in line" in body and "for 2 tickets" in body
    assert 'hx-trigger="every 5s"' in body  # polls while waiting

    again = join(client, event, token, quantity="1", headers=HX)
    assert again.status_code == 409
    assert "already on the waiting list" in text_of(again)
    assert again.headers["HX-Retarget"] == "#flash"

    other = switch_client(client.application)
    login(other, second.email)
    response = join(other, event, csrf_token(other), quantity="1")
    assert response.status_code == 303  # without htmx: back to the event page
    page = text_of(other.get(response.headers["Location"]))
    assert "You are number 2 in line" in page and "1 person (2 tickets) ahead of you" in page


@pytest.mark.parametrize("form, status, message", [
    ({"quantity": "9", "tier": "any"}, 400, "at most 4 tickets"),
    ({"quantity": "0", "tier": "any"}, 400, "at least one ticket"),
    ({"quantity": "two", "tier": "any"}, 400, "whole number"),
    ({"quantity": "1", "tier": "999999"}, 400, "Unknown ticket type"),
])
def test_bad_join_requests_get_clear_messages(client, factory, sold_out, form, status, message):
    event, _ = sold_out
    login(client, factory.user().email)
    response = client.post(f"/events/{event.id}/waitlist", data=form, headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == status
    assert message in text_of(response)


def test_join_needs_login_csrf_and_a_sold_out_event(client, factory, sold_out):
    event, _ = sold_out
    anonymous = client.post(f"/events/{event.id}/waitlist", data={"quantity": "1"})
    assert anonymous.status_code in (302, 400)  # login first (or CSRF refusal), never a join
    login(client, factory.user().email)
    assert client.post(f"/events/{event.id}/waitlist", data={"quantity": "1"}).status_code == 400  # no CSRF
    open_event = factory.ga_event(capacity=5, title="Plenty")
    refused = join(client, open_event, csrf_token(client), quantity="1")
    assert refused.status_code == 409 and "still available" in text_of(refused)
    assert client.post("/events/999999/waitlist", data={"quantity": "1"},
                       headers={"X-CSRFToken": csrf_token(client)}).status_code == 404


def test_offer_banner_my_waitlists_and_decline(client, session, factory, sold_out, gateway):
    event, orders = sold_out
    first, second = factory.users(2)
    login(client, first.email)
    join(client, event, csrf_token(client), quantity="1")
    mine = text_of(client.get("/waitlists"))
    assert "Number 1 in line" in mine and "Tiny Gig" in mine

    cancel(session, gateway, orders[0])
    # The polled list and every page's banner now show the offer.
    polled = text_of(client.get("/waitlists", headers=HX))
    assert polled.startswith('<div id="my-waitlists"') and "Tickets are held for you" in polled
    assert "Accept and pay" in text_of(client.get("/"))
    entry = session.scalars(select(WaitlistEntry).where(WaitlistEntry.user_id == first.id)).one()
    panel = text_of(client.get(f"/events/{event.id}/waitlist", headers=HX))
    assert "Tickets are held for you" in panel and "Decline" in panel

    other = switch_client(client.application)
    login(other, second.email)
    assert other.post(f"/waitlist/{entry.id}/decline", headers={"X-CSRFToken": csrf_token(other)}).status_code == 404

    forget_user()
    response = client.post(f"/waitlist/{entry.id}/decline", data={"back": "event"},
                           headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/events/{event.id}")
    session.expire_all()
    assert session.get(WaitlistEntry, entry.id).status == WaitlistStatus.LAPSED
    assert "Offer not taken" in text_of(client.get("/waitlists"))


def test_leave(client, session, factory, sold_out):
    event, _ = sold_out
    person = factory.user()
    login(client, person.email)
    join(client, event, csrf_token(client), quantity="1")
    entry = session.scalars(select(WaitlistEntry)).one()
    response = client.post(f"/waitlist/{entry.id}/leave", headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 303 and response.headers["Location"].endswith("/waitlists")
    page = text_of(client.get("/waitlists"))
    assert "You have left the waiting list." in page and "You left" in page
    again = client.post(f"/waitlist/{entry.id}/leave", headers={"X-CSRFToken": csrf_token(client)})
    assert again.status_code == 409


def test_polls_answer_304_until_something_changes(client, session, factory, sold_out, gateway):
    event, orders = sold_out
    login(client, factory.user().email)
    join(client, event, csrf_token(client), quantity="1")
    page = client.get(f"/events/{event.id}").get_data(as_text=True)
    tag = re.search(r'"If-None-Match": "(W/\\"[^"\\]+\\")"', page).group(1).replace('\\"', '"')
    unchanged = client.get(f"/events/{event.id}/waitlist", headers={**HX, "If-None-Match": tag})
    assert unchanged.status_code == 304

    mine = client.get("/waitlists", headers=HX)
    assert mine.status_code == 200
    assert client.get("/waitlists", headers={**HX, "If-None-Match": mine.headers["ETag"]}).status_code == 304

    cancel(session, gateway, orders[0])  # an offer for this buyer
    changed = client.get(f"/events/{event.id}/waitlist", headers={**HX, "If-None-Match": tag})
    assert changed.status_code == 200 and "Tickets are held for you" in text_of(changed)
    assert client.get("/waitlists", headers={**HX, "If-None-Match": mine.headers["ETag"]}).status_code == 200
