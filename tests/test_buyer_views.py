"""The buyer's pages over HTTP: two renderings per htmx URL, CSRF, the live
seat map, the race a buyer loses, the tier picker, the hold page, orders,
rate limits and redirects."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select, text

from tests.support import GOOD, PASSWORD, buy, csrf_token, login, rate_limited_client, reserve_general, reserve_seats
from webapp.models import Hold, HoldStatus, Order
from webapp.services.money import checkout

HX = {"HX-Request": "true"}


def html(response) -> str:
    return response.get_data(as_text=True)


def hx_get(client, url, **headers):
    return client.get(url, headers={**HX, **headers})


def hx_post(client, url, token, data=None):
    return client.post(url, data=data or {}, headers={**HX, "X-CSRFToken": token})


def checked_seats(page: str) -> set[int]:
    return {int(m) for m in re.findall(r'<input type="checkbox" name="seat" value="(\d+)"[^>]*\bchecked\b', page)}


def disabled_seats(page: str) -> set[int]:
    return {int(m) for m in re.findall(r'<input type="checkbox" name="seat" value="(\d+)"[^>]*\bdisabled\b', page)}


@pytest.fixture
def buyer(client, factory):
    user = factory.user(name="Ada Buyer")
    token = login(client, user.email)
    return user, token


# ---- One URL, two renderings ------------------------------------------------------------------

def _urls(factory, session, user):
    seated = factory.seated_event(rows=2, seats_per_row=4)
    ga = factory.ga_event(capacity=10)
    seats = factory.seat_ids(seated)
    hold = reserve_seats(session, user_id=user.id, event_id=seated.id, unit_ids=seats[:1])
    session.commit()
    elsewhere = factory.seated_event(rows=1, seats_per_row=2, title="Elsewhere")
    order = buy(session, elsewhere, user, seats=factory.seat_ids(elsewhere)[:1])
    return {
        "event list": ("/", "event-card"),
        "event list search": ("/?q=Seated", "Seated Concert"),
        "seated event": (f"/events/{seated.id}", "seat-map"),
        "ga event": (f"/events/{ga.id}", "tier-picker"),
        "seat map": (f"/events/{seated.id}/seat-map?seat={seats[1]}", "seat-map"),
        "selection summary": (f"/events/{seated.id}/selection?seat={seats[1]}", "selection-summary"),
        "tier picker": (f"/events/{ga.id}/tickets?qty-{factory.tier(ga).id}=2", "tier-picker"),
        "hold": (f"/holds/{hold.id}", "pay-form"),
        "countdown": (f"/holds/{hold.id}/countdown", "countdown"),
        "cancel confirmation": (f"/orders/{order.id}/cancel", "Cancel order"),
    }


def test_every_htmx_endpoint_answers_a_partial_to_htmx_and_a_page_otherwise(client, factory, session, buyer):
    user, _ = buyer
    for name, (url, marker) in _urls(factory, session, user).items():
        page = client.get(url)
        assert page.status_code == 200, name
        assert "<html" in html(page) and marker in html(page), name
        assert "HX-Request" in page.headers.get("Vary", ""), name
        partial = hx_get(client, url)
        assert partial.status_code == 200, name
        assert "<html" not in html(partial) and marker in html(partial), name
        assert "HX-Request" in partial.headers.get("Vary", ""), name


def test_live_seat_status_is_a_partial_for_htmx_and_the_whole_map_otherwise(client, factory, buyer):
    event = factory.seated_event(rows=2, seats_per_row=4)
    page = client.get(f"/events/{event.id}/seat-status")
    assert "<html" in html(page) and 'id="seat-map"' in html(page)
    partial = hx_get(client, f"/events/{event.id}/seat-status")
    assert "<html" not in html(partial) and 'id="seat-live"' in html(partial)
    assert 'id="seat-map"' not in html(partial)


# ---- CSRF on every state-changing request -----------------------------------------------------

def test_state_changing_requests_without_a_csrf_token_are_refused(client, factory, session, buyer):
    user, _ = buyer
    event = factory.seated_event(rows=1, seats_per_row=4)
    seats = factory.seat_ids(event)
    hold = reserve_seats(session, user_id=user.id, event_id=event.id, unit_ids=seats[:1])
    session.commit()
    elsewhere = factory.seated_event(rows=1, seats_per_row=2, title="Elsewhere")
    order = buy(session, elsewhere, user, seats=factory.seat_ids(elsewhere)[:1])
    posts = {
        f"/events/{event.id}/reserve": {"seat": seats[1]},
        f"/holds/{hold.id}/pay": {"name": "A", "number": "4242424242424242", "expiry": "12/30", "cvc": "123",
                                  "idempotency_key": "x" * 24},
        f"/holds/{hold.id}/validate/number": {"number": "4242"},
        f"/holds/{hold.id}/release": {},
        f"/orders/{order.id}/cancel": {},
        "/register/validate/email": {"email": "a@example.com"},
        "/register": {"name": "A", "email": "new@example.com", "password": PASSWORD},
        "/login": {"email": user.email, "password": PASSWORD},
        "/logout": {},
    }
    for url, data in posts.items():
        for headers in ({}, HX):
            response = client.post(url, data=data, headers=headers)
            assert response.status_code == 400, (url, headers, response.status_code)
            assert "form is stale" in html(response)
    # Nothing changed.
    session.expire_all()
    assert session.get(Hold, hold.id).status == HoldStatus.ACTIVE
    assert session.get(Order, order.id).status.value == "confirmed"
    assert session.scalar(select(func.count()).select_from(Hold)) == 2


# ---- Live seat map ----------------------------------------------------------------------------

def test_seat_status_answers_304_until_the_inventory_changes(client, factory, session, buyer):
    user, _ = buyer
    event = factory.seated_event(rows=2, seats_per_row=5)
    seats = factory.seat_ids(event)
    first = hx_get(client, f"/events/{event.id}/seat-status")
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('W/"') and "no-cache" in first.headers["Cache-Control"]
    assert f'If-None-Match": "{etag.replace(chr(34), chr(92) + chr(34))}"' in html(first)

    unchanged = hx_get(client, f"/events/{event.id}/seat-status", **{"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.get_data() == b""

    other = factory.user()
    reserve_seats(session, user_id=other.id, event_id=event.id, unit_ids=seats[3:5])
    reserve_seats(session, user_id=user.id, event_id=event.id, unit_ids=seats[:1])
    session.commit()
    changed = hx_get(client, f"/events/{event.id}/seat-status", **{"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    body = html(changed)
    assert f'data-taken="{seats[3]} {seats[4]}"' in body
    assert f'data-mine="{seats[0]}"' in body


def test_seat_status_of_an_unknown_event_is_404(client, buyer):
    assert hx_get(client, "/events/999/seat-status").status_code == 404


# ---- Selection summary and the race a buyer loses --------------------------------------------

def test_selection_summary_counts_tiers_subtotal_and_the_limit(client, factory):
    event = factory.seated_event(rows=2, seats_per_row=6, per_order_limit=3, price_minor=4500)
    seats = factory.seat_ids(event)
    two = hx_get(client, f"/events/{event.id}/selection?seat={seats[0]}&seat={seats[1]}")
    assert "2 × Stalls" in html(two) and "€90.00" in html(two) and "2 of 3 seats per order" in html(two)
    four = hx_get(client, f"/events/{event.id}/selection?" + "&".join(f"seat={s}" for s in seats[:4]))
    assert "at most 3 seats in one order; remove 1" in html(four)


def test_losing_a_race_names_the_seat_refreshes_the_map_and_keeps_the_rest(client, factory, session, buyer):
    user, token = buyer
    event = factory.seated_event(rows=2, seats_per_row=6)
    seats = factory.seat_ids(event)
    rival = factory.user()
    reserve_seats(session, user_id=rival.id, event_id=event.id, unit_ids=[seats[2]])
    session.commit()

    response = hx_post(client, f"/events/{event.id}/reserve", token, {"seat": [seats[1], seats[2], seats[3]]})
    assert response.status_code == 409
    body = html(response)
    assert "<html" not in body and 'id="seat-map"' in body
    assert "Stalls, row A, seat 3" in body and "just taken" in body
    assert checked_seats(body) == {seats[1], seats[3]}
    assert seats[2] in disabled_seats(body)
    assert "2 × Stalls" in body  # the summary shows what is still picked
    assert session.scalar(select(func.count()).select_from(Hold).where(Hold.user_id == user.id)) == 0

    plain = client.post(f"/events/{event.id}/reserve", data={"seat": [seats[2], seats[4]], "csrf_token": token})
    assert plain.status_code == 409 and "<html" in html(plain) and checked_seats(html(plain)) == {seats[4]}


def test_reserving_seats_redirects_to_the_hold_page(client, factory, session, buyer):
    _, token = buyer
    event = factory.seated_event(rows=1, seats_per_row=4)
    seats = factory.seat_ids(event)
    response = hx_post(client, f"/events/{event.id}/reserve", token, {"seat": seats[:2]})
    assert response.status_code == 204
    hold = session.scalars(select(Hold)).one()
    assert response.headers["HX-Redirect"] == f"/holds/{hold.id}"


def test_an_anonymous_reserve_goes_to_login_and_keeps_the_picks(client, factory):
    event = factory.seated_event(rows=1, seats_per_row=4)
    seats = factory.seat_ids(event)
    token = csrf_token(client, f"/events/{event.id}")
    response = hx_post(client, f"/events/{event.id}/reserve", token, {"seat": seats[:2]})
    assert response.status_code == 204
    target = response.headers["HX-Redirect"]
    assert target.startswith("/login?next=")
    page = client.get(target)
    back = re.search(r'name="next" type="hidden" value="([^"]+)"', html(page)).group(1).replace("&amp;", "&")
    assert checked_seats(html(client.get(back))) == set(seats[:2])


# ---- General-admission tier picker -----------------------------------------------------------

def test_tier_picker_steps_within_what_is_left_and_the_order_limit(client, factory):
    event = factory.ga_event(capacity=3, tiers=2, per_order_limit=4, price_minor=5000)
    first, second = sorted(t.id for t in event.tiers)
    url = f"/events/{event.id}/tickets"
    up = hx_get(client, f"{url}?qty-{first}=2&qty-{second}=0&step={first}:%2B1")
    body = html(up)
    assert re.search(rf'id="qty-{first}"[^>]*max="3" value="3"', body, re.S)
    assert re.search(rf'id="inc-{first}"[^>]*disabled', body, re.S)  # nothing more left in that tier
    assert "€150.00" in body
    # Past what is left is clamped, never shown as more than there is.
    over = html(hx_get(client, f"{url}?qty-{first}=9"))
    assert "3 × Tier 1" in over
    # The order limit stops the other tier's + button too.
    full = html(hx_get(client, f"{url}?qty-{first}=3&qty-{second}=1"))
    assert re.search(rf'id="inc-{second}"[^>]*disabled', full, re.S)
    assert "4 of 4 tickets per order" in full
    down = html(hx_get(client, f"{url}?qty-{first}=0&step={first}:-1"))
    assert re.search(rf'id="dec-{first}"[^>]*disabled', down, re.S)


def test_tier_picker_works_without_javascript(client, factory):
    event = factory.ga_event(capacity=5)
    tier = factory.tier(event)
    page = client.get(f"/events/{event.id}?qty-{tier.id}=1&step={tier.id}:%2B1")
    assert page.status_code == 200 and "2 × Tier 1" in html(page) and "<html" in html(page)


def tier_row(body: str, tier_id: int) -> str:
    """A tier's row of the picker, as an answer swaps it in out of band."""
    return re.search(rf'<li id="tier-row-{tier_id}"[^>]*hx-swap-oob="true".*?</li>', body, re.S).group(0)


def test_asking_for_more_than_is_left_answers_409_with_what_is_left_and_the_quantity_kept(
        client, factory, session, buyer):
    _, token = buyer
    event = factory.ga_event(capacity=2)
    tier = factory.tier(event)
    response = hx_post(client, f"/events/{event.id}/reserve", token, {f"qty-{tier.id}": 3})
    assert response.status_code == 409
    body = html(response)
    # The message into the picker's message region, not the whole picker again.
    assert response.headers["HX-Retarget"] == "#tier-picker-message" and 'id="tier-picker"' not in body
    assert "Only 2 left in Tier 1" in body and 'id="selection-summary"' not in body
    # The tier's row at what is left, with the buyer's 3 kept: + is off, at most 2.
    row = tier_row(body, tier.id)
    assert re.search(rf'id="qty-{tier.id}"[^>]*max="2" value="3"', row, re.S)
    assert re.search(rf'id="inc-{tier.id}"[^>]*disabled', row, re.S)
    # Without JavaScript: the whole page, with the message and the picker.
    plain = client.post(f"/events/{event.id}/reserve", data={f"qty-{tier.id}": 3, "csrf_token": token})
    assert plain.status_code == 409 and "<html" in html(plain)
    assert 'id="tier-picker"' in html(plain) and "Only 2 left in Tier 1" in html(plain)


@pytest.mark.parametrize("seated", [True, False])
def test_a_reserve_form_of_the_other_kind_is_answered_by_the_events_own_map_or_picker(
        client, factory, session, buyer, seated):
    # Places asked of a seated event (past the order's limit), or seats of a general-admission one.
    _, token = buyer
    event = factory.seated_event(rows=1, seats_per_row=4) if seated else factory.ga_event(capacity=4)
    tier_id = event.tiers[0].id
    form = {f"qty-{tier_id}": 50} if seated else {"seat": 999999}
    response = hx_post(client, f"/events/{event.id}/reserve", token, form)
    assert 400 <= response.status_code < 500
    body = html(response)
    if seated:
        assert 'id="seat-map"' in body and 'id="tier-picker"' not in body
    assert session.scalar(select(func.count()).select_from(Hold)) == 0


def test_a_tier_sold_out_under_the_buyer_is_marked_and_keeps_their_quantity(client, factory, session, buyer):
    _, token = buyer
    event = factory.ga_event(capacity=1, tiers=2)
    first, second = sorted(t.id for t in event.tiers)
    reserve_general(session, user_id=factory.user().id, event_id=event.id, quantities={first: 1})
    session.commit()
    response = hx_post(client, f"/events/{event.id}/reserve", token, {f"qty-{first}": 2, f"qty-{second}": 1})
    assert response.status_code == 409
    body = html(response)
    assert "Tier 1 is sold out." in body
    sold_out = tier_row(body, first)
    assert "Sold out" in sold_out and 'class="tier-row sold-out"' in sold_out
    # The stepper stays while the buyer still asks for some, so they can step down.
    assert re.search(rf'id="qty-{first}"[^>]*max="0" value="2"', sold_out, re.S)
    assert re.search(rf'id="inc-{first}"[^>]*disabled', sold_out, re.S)
    assert not re.search(rf'id="dec-{first}"[^>]*disabled', sold_out, re.S)
    assert re.search(rf'id="qty-{second}"[^>]*max="1" value="1"', tier_row(body, second), re.S)


def test_sold_out_tier_shows_sold_out_and_no_stepper(client, factory, session):
    event = factory.ga_event(capacity=1)
    tier = factory.tier(event)
    reserve_general(session, user_id=factory.user().id, event_id=event.id, quantities={tier.id: 1})
    session.commit()
    body = html(client.get(f"/events/{event.id}"))
    assert "Sold out" in body and f'id="inc-{tier.id}"' not in body


def test_event_list_filters_by_text_and_date(client, factory):
    factory.ga_event(title="Jazz Brunch", starts_in_days=3)
    factory.ga_event(title="Opera Gala", starts_in_days=5)
    assert "Opera Gala" not in html(hx_get(client, "/?q=jazz")) and "Jazz Brunch" in html(hx_get(client, "/?q=jazz"))
    from datetime import datetime, timedelta, timezone
    day = (datetime.now(timezone.utc) + timedelta(days=5)).date().isoformat()
    by_day = html(hx_get(client, f"/?date={day}"))
    assert "Opera Gala" in by_day and "Jazz Brunch" not in by_day
    assert client.get("/?date=not-a-date").status_code == 200


# ---- Hold page ---------------------------------------------------------------------------------

def test_countdown_says_expired_and_offers_to_try_again(client, factory, session, buyer):
    user, _ = buyer
    event = factory.seated_event(rows=1, seats_per_row=4)
    seats = factory.seat_ids(event)
    hold = reserve_seats(session, user_id=user.id, event_id=event.id, unit_ids=seats[:2])
    session.commit()
    live = hx_get(client, f"/holds/{hold.id}/countdown")
    assert 'role="timer"' in html(live) and "HX-Retarget" not in live.headers
    assert "Your seats are held for" in html(live)

    session.execute(text("UPDATE holds SET expires_at = now() - interval '1 second' WHERE id = :h"), {"h": hold.id})
    session.commit()
    over = hx_get(client, f"/holds/{hold.id}/countdown")
    assert over.headers["HX-Retarget"] == "#hold"
    body = html(over)
    assert "Your reservation has expired" in body and "Try again" in body
    assert 'id="pay-form"' not in body
    # The same seats, by the hold itself: "Reserve again" takes its units again.
    assert f'action="/holds/{hold.id}/reserve-again"' in body


def test_someone_elses_hold_is_404(client, factory, session, buyer):
    event = factory.seated_event(rows=1, seats_per_row=4)
    other = factory.user()
    hold = reserve_seats(session, user_id=other.id, event_id=event.id, unit_ids=factory.seat_ids(event)[:1])
    session.commit()
    assert client.get(f"/holds/{hold.id}").status_code == 404
    assert hx_get(client, f"/holds/{hold.id}/countdown").status_code == 404


def test_a_second_checkout_of_the_same_hold_follows_the_first(client, factory, session, buyer):
    user, token = buyer
    event = factory.seated_event(rows=1, seats_per_row=4)
    hold = reserve_seats(session, user_id=user.id, event_id=event.id, unit_ids=factory.seat_ids(event)[:1])
    session.commit()
    # The first tab's payment is in flight (phase 1 committed, gateway thinking).
    checkout.begin_payment(session, hold_id=hold.id, user_id=user.id, idempotency_key="first-tab-key-0123456789",
                           card=GOOD)
    session.commit()
    second = hx_post(client, f"/holds/{hold.id}/pay", token, {
        "name": "Ada", "number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123",
        "idempotency_key": "second-tab-key-0123456789"})
    assert second.status_code == 409
    assert "being processed" in html(second) and 'id="pay-form"' not in html(second)
    assert session.scalar(select(func.count()).select_from(Order)) == 0


# ---- Orders ------------------------------------------------------------------------------------

def test_orders_of_another_user_are_404_everywhere(client, factory, session, buyer):
    event = factory.seated_event(rows=1, seats_per_row=4)
    other = factory.user()
    order = buy(session, event, other, seats=factory.seat_ids(event)[:1])
    _, token = buyer
    ticket_id = order.tickets[0].id
    for url in (f"/orders/{order.id}", f"/orders/{order.id}/cancel", f"/orders/{order.id}/tickets/{ticket_id}"):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/orders/{order.id}/cancel", data={"csrf_token": token}).status_code == 404
    assert f"/orders/{order.id}" not in html(client.get("/orders"))


def test_order_page_shows_qr_tickets_and_cancel_frees_the_seats(client, factory, session, buyer):
    user, token = buyer
    event = factory.seated_event(rows=1, seats_per_row=4)
    seats = factory.seat_ids(event)
    order = buy(session, event, user, seats=seats[:2])
    page = html(client.get(f"/orders/{order.id}"))
    assert page.count("<svg") >= 2 and "Printable ticket" in page
    confirm = html(client.get(f"/orders/{order.id}/cancel"))
    assert "Yes, cancel my order" in confirm
    done = client.post(f"/orders/{order.id}/cancel", data={"csrf_token": token})
    assert done.status_code == 303
    session.expire_all()
    assert session.get(Order, order.id).status.value == "refunded"
    assert disabled_seats(html(client.get(f"/events/{event.id}"))) == set()


# ---- Accounts, next, rate limits ---------------------------------------------------------------

@pytest.mark.parametrize("target", [
    "//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)",
])
def test_login_next_never_leaves_the_site(client, factory, target):
    user = factory.user()
    page = html(client.get("/login"))
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token,
                                           "next": target})
    assert response.status_code == 303 and response.headers["Location"] == "/"


def test_login_next_keeps_a_local_path(client, factory):
    user = factory.user()
    page = html(client.get("/login?next=/orders"))
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token,
                                           "next": "/orders"})
    assert response.headers["Location"] == "/orders"


def test_register_inline_validation_checks_the_password_but_never_reveals_a_taken_email(client, factory):
    user = factory.user()
    token = csrf_token(client, "/register")
    taken = hx_post(client, "/register/validate/email", token, {"email": user.email})
    free = hx_post(client, "/register/validate/email", token, {"email": "nobody-yet@example.com"})
    assert taken.status_code == free.status_code == 200 and html(taken) == html(free)
    assert "already exists" not in html(taken) and "<html" not in html(taken)
    weak = hx_post(client, "/register/validate/password", token, {"password": "short"})
    assert "at least 12 characters" in html(weak)
    fine = hx_post(client, "/register/validate/password", token, {"password": "a-much-better-secret"})
    assert html(fine).strip() == ""


@pytest.fixture
def limited_client(app, database_url):
    """A client of a second app with rate limits on (support.rate_limited_client restores the shared limiter)."""
    with rate_limited_client(database_url, LOGIN_RATE_LIMIT="2 per minute", RESERVE_RATE_LIMIT="2 per minute",
                             REGISTER_RATE_LIMIT="1 per minute") as client:
        yield client


def test_login_is_rate_limited_with_a_clear_page_and_retry_after(limited_client, factory):
    user = factory.user()
    token = csrf_token(limited_client, "/login")
    for _ in range(2):
        assert limited_client.post("/login", data={"email": user.email, "password": "wrong-password",
                                                   "csrf_token": token}).status_code == 400
    page = limited_client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    assert page.status_code == 429 and int(page.headers["Retry-After"]) > 0
    assert "Too many attempts" in html(page) and "<html" in html(page)
    partial = limited_client.post("/login", data={"email": user.email, "password": PASSWORD},
                                  headers={**HX, "X-CSRFToken": token})
    assert partial.status_code == 429 and partial.headers["HX-Retarget"] == "#flash"
    assert "<html" not in html(partial) and "Retry-After" in partial.headers


def test_registration_and_reserve_are_rate_limited(limited_client, factory):
    token = csrf_token(limited_client, "/register")
    data = {"name": "A", "password": PASSWORD, "csrf_token": token}
    assert limited_client.post("/register", data={**data, "email": "one@example.com"}).status_code == 303
    limited_client.post("/logout", data={"csrf_token": token})
    token = csrf_token(limited_client, "/register")
    again = limited_client.post("/register", data={**data, "csrf_token": token, "email": "two@example.com"})
    assert again.status_code == 429 and "Retry-After" in again.headers

    user = factory.user()
    event = factory.ga_event(capacity=10)
    tier = factory.tier(event)
    token = login(limited_client, user.email)
    answers = [hx_post(limited_client, f"/events/{event.id}/reserve", token, {f"qty-{tier.id}": 1}).status_code
               for _ in range(3)]
    assert answers == [204, 204, 429]


def test_limits_are_off_again_for_the_test_app(client, factory):
    """Guards the fixture above: the suite's own app is never rate limited."""
    user = factory.user()
    token = csrf_token(client, "/login")
    answers = {client.post("/login", data={"email": user.email, "password": "wrong-password",
                                           "csrf_token": token}).status_code for _ in range(12)}
    assert answers == {400}


def test_logged_out_htmx_requests_move_the_whole_page_to_login(client, factory, session):
    event = factory.seated_event(rows=1, seats_per_row=2)
    owner = factory.user()
    hold = reserve_seats(session, user_id=owner.id, event_id=event.id, unit_ids=factory.seat_ids(event)[:1])
    session.commit()
    poll = client.get(f"/holds/{hold.id}/countdown",
                      headers={**HX, "HX-Current-URL": f"http://localhost/holds/{hold.id}"})
    assert poll.status_code == 204 and poll.headers["HX-Redirect"] == f"/login?next=/holds/{hold.id}"
    page = client.get("/orders")
    assert page.status_code == 303 and page.headers["Location"] == "/login?next=/orders"
    foreign = client.get("/orders/1/cancel", headers={**HX, "HX-Current-URL": "https://evil.example/x"})
    assert foreign.headers["HX-Redirect"] == "/login"
