"""Over HTTP: what the pages carry so that quick clicks
count, race messages are told where the buyer looks, the live figures follow
the seat-status poll, and the smaller fixes (sold-out Reserve, the first card
error focused, the offer's wording, the hidden "Update totals")."""
from __future__ import annotations

import re

from sqlalchemy import select

from tests.support import admin_client, buy, cancel, csrf_token, login
from webapp.models import Hold, HoldKind
from webapp.services.waiting import waitlist

HX = {"HX-Request": "true"}


def html(response) -> str:
    return response.get_data(as_text=True)


def _live_attrs(body: str) -> dict[str, str]:
    form = re.search(r'<form id="seat-live"[^>]*>', body).group(0)
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', form))


def test_the_seat_status_poll_carries_the_pages_figures_and_sold_out_tiers(client, session, factory):
    event = factory.seated_event(rows=1, seats_per_row=4)
    seats = factory.seat_ids(event)
    tier = factory.tier(event)
    page = html(client.get(f"/events/{event.id}"))
    assert '<dd data-count="available">4</dd>' in page and f'<li data-tier="{tier.id}">' in page
    buy(session, event, factory.user(), seats=seats[:1])
    factory.hold(event, seats=seats[1:3])
    live = _live_attrs(html(client.get(f"/events/{event.id}/seat-status", headers=HX)))
    assert live["figures"] == "1 2 1"  # available, held, sold: as the availability panel counts them
    assert live["sold-out"] == ""
    factory.hold(event, seats=seats[3:])
    live = _live_attrs(html(client.get(f"/events/{event.id}/seat-status", headers=HX)))
    assert live["figures"] == "0 3 1" and live["sold-out"] == str(tier.id)


def test_reserve_is_disabled_on_a_sold_out_page(client, session, factory):
    seated = factory.seated_event(rows=1, seats_per_row=2)
    ga = factory.ga_event(capacity=2)
    open_one = factory.seated_event(rows=1, seats_per_row=2, title="Open")
    buy(session, seated, factory.user(), seats=factory.seat_ids(seated))
    buy(session, ga, factory.user(), quantities={ga.tiers[0].id: 2})
    reserve = re.compile(r'<button class="button block" type="submit" id="reserve-button"[^>]*>')
    assert " disabled" in reserve.search(html(client.get(f"/events/{seated.id}"))).group(0)
    assert " disabled" in reserve.search(html(client.get(f"/events/{ga.id}"))).group(0)
    assert " disabled" not in reserve.search(html(client.get(f"/events/{open_one.id}"))).group(0)


def test_a_seat_the_live_map_dropped_is_named_on_the_hold_page(client, session, factory):
    event = factory.seated_event(rows=1, seats_per_row=6)
    seats = factory.seat_ids(event)
    login(client, factory.user().email)
    token = csrf_token(client, f"/events/{event.id}")
    page = html(client.get(f"/events/{event.id}"))
    assert '<div id="seat-map-dropped" hidden></div>' in page
    # The message region sits in the summary dock, beside Reserve, not above the map.
    dock = page.index('class="summary-dock"')
    assert dock < page.index('id="seat-map-message"') < page.index('id="selection-summary"')
    factory.hold(event, seats=seats[:1])  # someone else took seat 1; app.js unpicked it
    r = client.post(f"/events/{event.id}/reserve", headers={**HX, "X-CSRFToken": token},
                    data={"seat": [str(seats[1])], "dropped": [str(seats[0]), "junk"]})
    assert r.status_code == 204
    hold_page = html(client.get(r.headers["HX-Redirect"]))
    assert ("Stalls, row A, seat 1 was taken by another buyer just before you reserved, "
            "so it is not in this reservation.") in hold_page
    # Nothing to say when nothing was dropped.
    r = client.post(f"/events/{event.id}/reserve", headers={**HX, "X-CSRFToken": token},
                    data={"seat": [str(seats[2])]})
    assert "taken by another buyer" not in html(client.get(r.headers["HX-Redirect"]))


def test_a_race_lost_at_reserve_is_told_in_the_summary_dock(client, session, factory):
    event = factory.seated_event(rows=1, seats_per_row=6)
    seats = factory.seat_ids(event)
    login(client, factory.user().email)
    token = csrf_token(client, f"/events/{event.id}")
    factory.hold(event, seats=seats[:1])
    r = client.post(f"/events/{event.id}/reserve", headers={**HX, "X-CSRFToken": token},
                    data={"seat": [str(seats[0]), str(seats[1])]})
    assert r.status_code == 409
    body = html(r)
    dock = body[body.index('class="summary-dock"'):]
    assert "just taken: Stalls, row A, seat 1" in dock


def test_an_empty_card_form_focuses_its_first_error(client, session, factory):
    event = factory.ga_event(capacity=5)
    user = factory.user()
    login(client, user.email)
    hold = factory.hold(event, user)
    token = csrf_token(client, f"/holds/{hold.id}")
    r = client.post(f"/holds/{hold.id}/pay", headers={**HX, "X-CSRFToken": token},
                    data={"idempotency_key": "k" * 24, "name": "Ada"})
    assert r.status_code == 400
    body = html(r)
    focused = re.findall(r'<input [^>]*\bautofocus\b[^>]*>', body)
    assert len(focused) == 1 and 'id="number"' in focused[0]
    whole = html(client.post(f"/holds/{hold.id}/pay", headers={"X-CSRFToken": token},
                             data={"idempotency_key": "k" * 24}))
    assert len(re.findall(r'<input [^>]*id="name"[^>]*\bautofocus\b', whole)) == 1


def test_an_offers_checkout_says_released_tickets_go_to_the_next_person(client, session, factory, gateway):
    event = factory.ga_event(capacity=1, title="Tiny")
    order = buy(session, event, factory.user(), quantities={event.tiers[0].id: 1})
    user = factory.user()
    waitlist.join(session, user_id=user.id, event_id=event.id, tier_id=event.tiers[0].id, quantity=1)
    session.commit()
    cancel(session, gateway, order)
    offer = session.scalars(select(Hold).where(Hold.user_id == user.id, Hold.kind == HoldKind.OFFER)).one()
    login(client, user.email)
    page = html(client.get(f"/holds/{offer.id}"))
    assert "back on sale at once" not in page
    assert "They go to the next person on the waiting list" in page


def test_the_hidden_update_totals_button_is_hidden_from_screen_readers_too(client, factory):
    event = factory.ga_event(capacity=5)
    page = html(client.get(f"/events/{event.id}"))
    button = re.search(r'<button class="visually-hidden"[^>]*>Update totals</button>', page).group(0)
    assert 'aria-hidden="true"' in button and 'tabindex="-1"' in button
    # It stays the form's first submit button: Enter in a quantity box updates, it does not step.
    picker = page[page.index('<form id="tier-picker"'):]
    assert picker.index("Update totals") < picker.index('name="step"')


def test_the_admin_map_form_outlives_its_redraws_and_queues_clicks(client, factory):
    event = factory.seated_event(rows=1, seats_per_row=4)
    client, _, token = admin_client(client, factory)
    page = html(client.get(f"/admin/events/{event.id}/layout"))
    form = re.search(r'<form id="seat-toggle"[^>]*>', page).group(0)
    assert 'hx-sync="this:queue all"' in form and 'hx-target="#layout-map"' in form
    # The map it redraws is inside it, and is what the partial answers.
    assert page.index('<form id="seat-toggle"') < page.index('<div id="layout-map"')
    seat = factory.seat_ids(event)[1]
    r = client.post(f"/admin/events/{event.id}/seats", headers={**HX, "X-CSRFToken": token},
                    data={"block": str(seat)})
    assert html(r).lstrip().startswith('<div id="layout-map"') and "<form" not in html(r)
