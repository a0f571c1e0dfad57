"""The hold page's "Reserve again" after a hold ran out: the same units taken again at once, never a button that
the re-hold cool-down refuses, and the cool-down still against a hold-and-let-lapse cycle."""
from __future__ import annotations

import re

from sqlalchemy import select, text

from tests.support import GOOD, assert_consistent, csrf_token, expire_now, reserve_general, sign_in
from webapp.models import Hold, HoldStatus
from webapp.services.money import checkout
from webapp.services.selling import inventory

HX = {"HX-Request": "true"}


def reserve_seats_over_http(client, event, seat_ids: list[int]):
    token = csrf_token(client, f"/events/{event.id}")
    response = client.post(f"/events/{event.id}/reserve", data={"seat": [str(s) for s in seat_ids]},
                           headers={**HX, "X-CSRFToken": token})
    assert response.status_code == 204, response.get_data(as_text=True)
    return int(re.search(r"/holds/(\d+)", response.headers["HX-Redirect"]).group(1))


def press_reserve_again(client, hold_id: int):
    """The button the expired hold page offers, as the browser sends it: its form's action and every field."""
    page = client.get(f"/holds/{hold_id}").get_data(as_text=True)
    forms = [f for f in re.findall(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', page, re.S)
             if "Try again: reserve the same" in f[1]]
    assert forms, "the expired hold page offers no Reserve again"
    action, body = forms[0]
    fields: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', body):
        fields.setdefault(name, []).append(value)
    return client.post(action, data=fields)


def hold_of(session, hold_id: int) -> Hold:
    session.expire_all()
    return session.get(Hold, hold_id)


def test_hold_lapse_reserve_again_gives_a_hold_not_429(client, session, factory):
    event = factory.seated_event(rows=1, seats_per_row=4, rehold_cooldown_seconds=60)
    seats = factory.seat_ids(event)
    user = factory.user()
    sign_in(client, user.id)
    hold_id = reserve_seats_over_http(client, event, seats[1:3])
    expire_now(session, hold_id)

    answer = press_reserve_again(client, hold_id)
    assert answer.status_code == 303 and answer.headers["Location"].endswith(f"/holds/{hold_id}")
    again = hold_of(session, hold_id)
    assert again.status == HoldStatus.ACTIVE and sorted(again.unit_ids) == seats[1:3]
    assert again.taken_again_at is not None
    page = client.get(f"/holds/{hold_id}").get_data(as_text=True)
    assert 'role="timer"' in page and "Pay" in page
    # A double click lands on the same live hold.
    second = client.post(f"/holds/{hold_id}/reserve-again", data={"csrf_token": csrf_token(client, "/")})
    assert second.status_code == 303 and hold_of(session, hold_id).status == HoldStatus.ACTIVE
    assert session.scalar(text("SELECT count(*) FROM holds")) == 1
    assert_consistent(session, event.id)


def test_a_second_lapse_waits_out_the_cool_down_and_the_page_offers_no_button_till_then(client, session, factory):
    event = factory.seated_event(rows=1, seats_per_row=4, rehold_cooldown_seconds=60)
    seats = factory.seat_ids(event)
    user = factory.user()
    sign_in(client, user.id)
    hold_id = reserve_seats_over_http(client, event, seats[:1])
    expire_now(session, hold_id)
    assert press_reserve_again(client, hold_id).status_code == 303
    expire_now(session, hold_id)  # ...and let it lapse again: a hold-and-lapse cycle

    page = client.get(f"/holds/{hold_id}").get_data(as_text=True)
    assert "Try again: reserve the same" not in page
    assert re.search(r"you can reserve the same seats again in (\d+) s", page)
    refused = client.post(f"/holds/{hold_id}/reserve-again", data={"csrf_token": csrf_token(client, "/")})
    assert refused.status_code == 429 and 55 <= int(refused.headers["Retry-After"]) <= 60
    assert "you can take them again in" in refused.get_data(as_text=True)
    # The ordinary reserve says the same.
    with_reserve = client.post(f"/events/{event.id}/reserve", data={"seat": str(seats[0])},
                               headers={**HX, "X-CSRFToken": csrf_token(client, "/")})
    assert with_reserve.status_code == 429

    # Once the cool-down is over, the page offers a fresh reserve of the same seats, which the cool-down lets by;
    # the hold's own Reserve again was its one.
    session.execute(text("UPDATE holds SET expires_at = expires_at - interval '61 seconds',"
                         " ended_at = ended_at - interval '61 seconds' WHERE id = :h"), {"h": hold_id})
    session.commit()
    assert client.post(f"/holds/{hold_id}/reserve-again",
                       data={"csrf_token": csrf_token(client, "/")}).status_code == 409
    fresh = press_reserve_again(client, hold_id)
    assert fresh.status_code == 303
    new_hold = session.scalars(select(Hold).where(Hold.status == HoldStatus.ACTIVE)).one()
    assert new_hold.id != hold_id and new_hold.unit_ids == seats[:1]
    assert fresh.headers["Location"].endswith(f"/holds/{new_hold.id}")


def test_behind_a_waiting_room_the_one_retry_needs_no_pass_and_later_ones_go_through_the_room(client, session,
                                                                                               factory):
    from tests.test_waiting_room import room, start_sale
    from webapp.services.waiting import waiting_room

    event = factory.ga_event(capacity=10, rehold_cooldown_seconds=0)
    user = factory.user()
    sign_in(client, user.id)
    room(session, event, starts_in=-1, cap=5)
    start_sale(session, event.id)
    entry_id = waiting_room.join(session, event.id, user_id=user.id)
    session.commit()
    waiting_room.admit(session, event.id)
    session.commit()
    hold = reserve_general(session, user_id=user.id, event_id=event.id, quantities={event.tiers[0].id: 1},
                                     admission_id=entry_id)
    session.commit()
    expire_now(session, hold.id)
    session.execute(text("UPDATE waiting_room_entries SET pass_until = now() - interval '1 second'"))
    session.commit()
    assert press_reserve_again(client, hold.id).status_code == 303  # the one retry: no pass needed
    expire_now(session, hold.id)
    page = client.get(f"/holds/{hold.id}").get_data(as_text=True)
    assert "Try again: reserve the same" not in page and "take a place there to reserve again" in page
    assert client.post(f"/holds/{hold.id}/reserve-again",
                       data={"csrf_token": csrf_token(client, "/")}).status_code == 409


def test_reserve_again_refuses_clearly_when_the_seats_went_to_someone_else(client, session, factory):
    event = factory.seated_event(rows=1, seats_per_row=4)
    seats = factory.seat_ids(event)
    user = factory.user()
    sign_in(client, user.id)
    hold_id = reserve_seats_over_http(client, event, seats[:2])
    expire_now(session, hold_id)
    inventory.expire_holds(session, hold_ids=[hold_id])
    session.commit()
    factory.hold(event, factory.user(), seats=seats[1:2])
    refused = press_reserve_again(client, hold_id)
    assert refused.status_code == 410
    assert "no longer available" in refused.get_data(as_text=True)
    assert hold_of(session, hold_id).status == HoldStatus.EXPIRED
    assert_consistent(session, event.id)


def test_a_released_or_paid_hold_is_not_taken_again(client, session, factory, gateway):
    event = factory.ga_event(capacity=10, rehold_cooldown_seconds=0)
    user = factory.user()
    sign_in(client, user.id)
    released = factory.hold(event, user)
    inventory.release_hold_by_id(session, hold_id=released.id, user_id=user.id)
    session.commit()
    assert "Try again: reserve the same" not in client.get(f"/holds/{released.id}").get_data(as_text=True)
    refused = client.post(f"/holds/{released.id}/reserve-again", data={"csrf_token": csrf_token(client, "/")})
    assert refused.status_code == 409 and "You released this reservation" in refused.get_data(as_text=True)
    paid = factory.hold(event, user)
    checkout.pay(session, gateway, hold_id=paid.id, user_id=user.id, idempotency_key="paid-once", card=GOOD)
    session.commit()
    assert client.post(f"/holds/{paid.id}/reserve-again",
                       data={"csrf_token": csrf_token(client, "/")}).status_code == 409
    other = factory.hold(event, factory.user())
    assert client.post(f"/holds/{other.id}/reserve-again",
                       data={"csrf_token": csrf_token(client, "/")}).status_code == 404
    assert session.scalars(select(Hold.status).where(Hold.id == released.id)).one() == HoldStatus.RELEASED


def test_after_the_sale_end_the_expired_page_says_so_and_offers_no_button(client, session, factory):
    event = factory.ga_event(capacity=10)
    user = factory.user()
    sign_in(client, user.id)
    hold = factory.hold(event, user)
    expire_now(session, hold.id)
    session.execute(text("UPDATE events SET sales_end_at = now() - interval '1 second' WHERE id = :e"),
                    {"e": event.id})
    session.commit()
    page = client.get(f"/holds/{hold.id}").get_data(as_text=True)
    assert "Try again: reserve the same" not in page and "Sales for this event have ended" in page
    refused = client.post(f"/holds/{hold.id}/reserve-again", data={"csrf_token": csrf_token(client, "/")})
    assert refused.status_code == 409
