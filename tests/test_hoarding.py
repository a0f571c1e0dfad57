"""Hoarding. A per-event limit per buyer across orders, holds
and places asked for in line, and a short cool-down before a buyer holds again
what they released or let expire; both enforced by the reserve statement
itself (migration 0010), and one buyer's parallel requests never pass the limit.
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from tests.support import GOOD, assert_consistent, buy, csrf_token, expire_now, race, reserve_general, sign_in
from webapp.extensions import db
from webapp.models import Hold, HoldStatus, Tier
from webapp.services.errors import AlreadyOnWaitlist, Busy, HoldExpired, LimitExceeded, PaymentDeclined, TooSoonAgain
from webapp.services.money import checkout
from webapp.services.selling import inventory
from webapp.services.waiting import waitlist


def _ga(factory, **kw):
    return factory.ga_event(capacity=50, tiers=2, per_order_limit=8, **kw)


def _sold_out_first(factory, **kw):
    """Two GA tiers: the first (8 places) sold out to someone else, the second with 50 free."""
    from webapp.services.selling import events

    event = factory.event(title="Small Stage", per_order_limit=8)
    events.add_general_tier(factory.session, event, name="Front", price_minor=3000, capacity=8)
    events.add_general_tier(factory.session, event, name="Back", price_minor=2000, capacity=50, sort_order=1)
    factory.session.commit()
    first, second = _tiers(factory.session, event)
    factory.order(event, quantities={first: 8})
    for name, value in kw.items():
        setattr(event, name, value)
    factory.session.commit()
    return event, first, second


def _tiers(session, event) -> list[int]:
    return list(session.scalars(select(Tier.id).where(Tier.event_id == event.id).order_by(Tier.id)))


def _move_back(session, hold_id: int, seconds: int) -> None:
    """Pretend the hold was let go `seconds` earlier (its release and its deadline)."""
    session.execute(text("UPDATE holds SET ended_at = ended_at - make_interval(secs => :s),"
                         " expires_at = expires_at - make_interval(secs => :s) WHERE id = :h"),
                    {"s": seconds, "h": hold_id})
    session.commit()


def test_the_limit_counts_orders_and_holds_and_says_what_the_buyer_has(session, factory):
    event = _ga(factory, per_buyer_limit=6)
    first, second = _tiers(session, event)
    user = factory.user()
    buy(session, event, user, quantities={first: 4})
    # 4 bought + 2 held = 6: allowed; the basket is then replaced, not added to.
    reserve_general(session, user_id=user.id, event_id=event.id, quantities={second: 2})
    session.commit()
    reserve_general(session, user_id=user.id, event_id=event.id, quantities={first: 1, second: 1})
    session.commit()
    with pytest.raises(LimitExceeded) as over:
        inventory.reserve(user_id=user.id, event_id=event.id, quantities={second: 3})
    assert over.value.message == ("You already have 4 tickets for this event; the limit is 6, "
                                  "so you can add 2 more.")
    session.rollback()
    buy(session, event, user, quantities={second: 2})
    with pytest.raises(LimitExceeded) as full:
        inventory.reserve(user_id=user.id, event_id=event.id, quantities={first: 1})
    assert full.value.message == "You already have 6 tickets for this event; the limit is 6."
    # Another buyer is not affected.
    inventory.reserve(user_id=factory.user().id, event_id=event.id, quantities={first: 6})
    assert_consistent(session, event.id)


def test_a_limit_below_the_order_limit_caps_a_first_order(session, factory):
    event = factory.seated_event(rows=1, seats_per_row=8, per_buyer_limit=2)
    seats = factory.seat_ids(event)
    with pytest.raises(LimitExceeded, match=r"^You can have at most 2 tickets for this event\.$"):
        inventory.reserve(user_id=factory.user().id, event_id=event.id, seat_ids=seats[:3])


def test_places_asked_for_in_line_count_and_joining_past_the_limit_is_refused(session, factory):
    event, first, second = _sold_out_first(factory, per_buyer_limit=5)
    user = factory.user()
    reserve_general(session, user_id=user.id, event_id=event.id, quantities={second: 3})
    session.commit()
    with pytest.raises(LimitExceeded, match="You already have 3 tickets for this event; the limit is 5"):
        waitlist.join(session, user_id=user.id, event_id=event.id, tier_id=first, quantity=3)
    session.rollback()
    waitlist.join(session, user_id=user.id, event_id=event.id, tier_id=first, quantity=2)
    session.commit()
    # In line for 2: a basket of 4 (replacing the 3) would make 6.
    with pytest.raises(LimitExceeded, match="You already have 2 tickets for this event; the limit is 5"):
        inventory.reserve(user_id=user.id, event_id=event.id, quantities={second: 4})
    inventory.reserve(user_id=user.id, event_id=event.id, quantities={second: 3})


def test_paying_a_lapsed_hold_counts_it_again(session, factory, gateway):
    event = _ga(factory, per_buyer_limit=4)
    first, second = _tiers(session, event)
    user = factory.user()
    hold = factory.hold(event, user, quantities={first: 3})
    expire_now(session, hold.id)
    inventory.expire_holds(session, hold_ids=[hold.id])
    session.commit()
    _move_back(session, hold.id, 120)  # past the cool-down
    buy(session, event, user, quantities={second: 2})  # 2 bought meanwhile
    with pytest.raises(HoldExpired, match="limit of 4 tickets per buyer"):
        checkout.pay(session, gateway, hold_id=hold.id, user_id=user.id, idempotency_key="late-pay-over-limit",
                     card=GOOD)
    session.rollback()
    assert_consistent(session, event.id)


def test_released_seats_cannot_be_held_again_at_once_other_seats_can(session, factory):
    event = factory.seated_event(rows=1, seats_per_row=8)
    seats = factory.seat_ids(event)
    user = factory.user()
    hold = factory.hold(event, user, seats=seats[:2])
    inventory.release_hold_by_id(session, hold_id=hold.id, user_id=user.id)
    session.commit()
    with pytest.raises(TooSoonAgain) as early:
        inventory.reserve(user_id=user.id, event_id=event.id, seat_ids=[seats[1], seats[5]])
    assert re.fullmatch(r"You released these seats a moment ago; you can take them again in (\d+) s\.",
                        early.value.message)
    assert 55 <= early.value.retry_after <= 60 and early.value.status_code == 429
    # Someone else may take them at once; the buyer may take other seats.
    inventory.reserve(user_id=user.id, event_id=event.id, seat_ids=[seats[5]])
    inventory.reserve(user_id=factory.user().id, event_id=event.id, seat_ids=[seats[0]])
    # Once the cool-down has passed, the buyer may have them back.
    _move_back(session, hold.id, 45)
    with pytest.raises(TooSoonAgain) as later:
        inventory.reserve(user_id=user.id, event_id=event.id, seat_ids=[seats[1]])
    assert 10 <= later.value.retry_after <= 15
    _move_back(session, hold.id, 20)
    inventory.reserve(user_id=user.id, event_id=event.id, seat_ids=[seats[1]])
    assert_consistent(session, event.id)


def test_a_hold_let_expire_and_a_general_admission_tier_cool_down_too(session, factory):
    event = _ga(factory, rehold_cooldown_seconds=30)
    first, second = _tiers(session, event)
    user = factory.user()
    hold = factory.hold(event, user, quantities={first: 2})
    expire_now(session, hold.id)
    # The lapsed basket is given back by the next reservation itself (not swept yet).
    with pytest.raises(TooSoonAgain, match=r"^Your reservation of tickets of this type ran out a moment ago; "
                                           r"you can take them again in \d+ s\.$"):
        inventory.reserve(user_id=user.id, event_id=event.id, quantities={first: 1, second: 1})
    # The other tier may be held at once (the lapsed basket is then given back, as expired).
    inventory.reserve(user_id=user.id, event_id=event.id, quantities={second: 2})
    session.expire_all()
    assert session.get(Hold, hold.id).status == HoldStatus.EXPIRED
    with pytest.raises(TooSoonAgain, match="ran out a moment ago"):
        inventory.reserve(user_id=user.id, event_id=event.id, quantities={first: 1})


def test_cool_down_zero_switches_it_off(session, factory):
    event = factory.seated_event(rows=1, seats_per_row=4, rehold_cooldown_seconds=0)
    seats = factory.seat_ids(event)
    user = factory.user()
    hold = factory.hold(event, user, seats=seats[:1])
    inventory.release_hold_by_id(session, hold_id=hold.id, user_id=user.id)
    session.commit()
    # Held again at once, the same seat: no cool-down refused it.
    again = inventory.reserve(user_id=user.id, event_id=event.id, seat_ids=seats[:1])
    held = session.get(Hold, again.hold_id)
    assert held.status == HoldStatus.ACTIVE and held.unit_ids == seats[:1] and held.id != hold.id


def test_a_new_basket_keeping_seats_of_the_one_it_replaces_keeps_its_deadline(session, factory):
    """Otherwise reserving the same seats again just before time runs out would hold them for ever."""
    event = factory.seated_event(rows=1, seats_per_row=8, hold_minutes=10)
    seats = factory.seat_ids(event)
    user = factory.user()
    first = factory.hold(event, user, seats=seats[:2])
    session.execute(text("UPDATE holds SET expires_at = now() + interval '1 minute' WHERE id = :h"), {"h": first.id})
    session.commit()
    deadline = session.scalar(select(Hold.expires_at).where(Hold.id == first.id))
    kept = inventory.reserve(user_id=user.id, event_id=event.id, seat_ids=seats[:3])
    session.expire_all()
    assert session.scalar(select(Hold.expires_at).where(Hold.id == kept.hold_id)) == deadline
    # A basket of other seats starts a fresh window...
    other = inventory.reserve(user_id=user.id, event_id=event.id, seat_ids=seats[5:7])
    session.commit()
    left = session.scalar(select(Hold.expires_at - func.now()).where(Hold.id == other.hold_id))
    assert left.total_seconds() > 9 * 60
    # ...but going back to the first seats a moment later does not: their clock runs on.
    back = inventory.reserve(user_id=user.id, event_id=event.id, seat_ids=seats[:1])
    session.expire_all()
    assert session.scalar(select(Hold.expires_at).where(Hold.id == back.hold_id)) == deadline
    # And once that deadline has passed, they cool down like any seats let expire.
    replaced = list(session.scalars(select(Hold.id).where(Hold.user_id == user.id, Hold.end_reason == "replaced")))
    session.execute(text("UPDATE holds SET expires_at = now() - interval '1 second' WHERE id = ANY(:ids)"),
                    {"ids": replaced + [back.hold_id]})
    session.commit()
    with pytest.raises(TooSoonAgain):
        inventory.reserve(user_id=user.id, event_id=event.id, seat_ids=seats[:1])
    assert_consistent(session, event.id)


def test_the_reserve_view_says_it_beside_the_map_with_retry_after(client, session, factory):
    event = factory.seated_event(rows=1, seats_per_row=8, per_buyer_limit=2)
    seats = factory.seat_ids(event)
    user = factory.user()
    sign_in(client, user.id)
    token = csrf_token(client, f"/events/{event.id}")
    headers = {"X-CSRFToken": token, "HX-Request": "true"}
    over = client.post(f"/events/{event.id}/reserve", headers=headers,
                       data={"seat": [str(s) for s in seats[:3]]})
    assert over.status_code == 400
    body = over.get_data(as_text=True)
    assert body.lstrip().startswith('<form id="seat-map"')
    assert "You can have at most 2 tickets for this event." in body
    assert body.count("checked") >= 3  # the picks are kept
    hold = factory.hold(event, user, seats=seats[:1])
    inventory.release_hold_by_id(session, hold_id=hold.id, user_id=user.id)
    session.commit()
    again = client.post(f"/events/{event.id}/reserve", headers=headers, data={"seat": [str(seats[0])]})
    assert again.status_code == 429 and 1 <= int(again.headers["Retry-After"]) <= 60
    assert "You released these seats a moment ago; you can take them again in" in again.get_data(as_text=True)


@pytest.mark.slow
def test_one_buyers_parallel_reserves_and_joins_never_pass_the_limit(app, session, factory):
    """12 threads of one buyer: reserves of 2 or 3 of the free tier, and joins of the line for the sold-out one.

    Limit 4. Each request either wins or is refused by the limit (or finds the
    buyer in line already); none trips over another, and the buyer never has
    more than 4. Without the buyer's lock (tb_buyer_claims) this fails: a join
    and a reserve both pass the check, and parallel reserves collide on the
    one-basket index.
    """
    event, first, second = _sold_out_first(factory, per_buyer_limit=4)
    user = factory.user().id

    for round_ in range(4):
        def attempt(i):
            try:
                if i % 3 == 0:
                    waitlist.join(db.session, user_id=user, event_id=event.id, tier_id=first, quantity=2)
                    db.session.commit()
                    return "joined"
                inventory.reserve(user_id=user, event_id=event.id, quantities={second: 2 + i % 2})
                return "held"
            except (LimitExceeded, AlreadyOnWaitlist):
                db.session.rollback()
                return "refused"
            except IntegrityError:
                db.session.rollback()
                return "collided"

        results = race(app, 12, attempt)
        assert "collided" not in results, results
        assert "held" in results
        session.expire_all()
        have = session.scalar(text("SELECT tb_buyer_count(:u, :e)"), {"u": user, "e": event.id})
        assert have <= 4, (round_, have, results)
        # Start the next round from nothing in line and no basket.
        session.execute(text("UPDATE waitlist_entries SET status = 'left' WHERE user_id = :u"), {"u": user})
        for hold in session.scalars(select(Hold).where(Hold.user_id == user, Hold.status == HoldStatus.ACTIVE)):
            inventory.release_hold(session, hold)
        session.execute(text("UPDATE events SET rehold_cooldown_seconds = 0 WHERE id = :e"), {"e": event.id})
        session.commit()
    assert_consistent(session, event.id)


def test_admins_set_the_limit_and_the_cool_down_on_the_event_form(client, factory, session):
    from datetime import datetime, timedelta, timezone

    from tests.support import admin_client

    client, _, token = admin_client(client, factory)
    event = factory.ga_event()
    assert (event.per_buyer_limit, event.rehold_cooldown_seconds) == (10, 60)  # the defaults
    assert 'name="per_buyer_limit"' in client.get(f"/admin/events/{event.id}/edit").get_data(as_text=True)
    start = (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    form = {"title": "Gig", "venue": "Hall", "starts_at": start, "hold_minutes": "8", "per_order_limit": "8",
            "offer_hours": "12", "timezone": "UTC"}
    bad = client.post(f"/admin/events/{event.id}/edit", headers={"X-CSRFToken": token},
                      data={**form, "per_buyer_limit": "0", "rehold_cooldown_seconds": "-5"})
    assert bad.status_code == 400
    assert "Allow between 1 and 1,000 tickets per buyer." in bad.get_data(as_text=True)
    assert "Between 0 and 3,600 seconds." in bad.get_data(as_text=True)
    ok = client.post(f"/admin/events/{event.id}/edit", headers={"X-CSRFToken": token},
                     data={**form, "per_buyer_limit": "4", "rehold_cooldown_seconds": "0"})
    assert ok.status_code in (200, 204, 303), ok.get_data(as_text=True)[:300]
    session.expire_all()
    saved = session.get(type(event), event.id)
    assert (saved.per_buyer_limit, saved.rehold_cooldown_seconds) == (4, 0)
    # A form sent without them keeps what was set.
    client.post(f"/admin/events/{event.id}/edit", headers={"X-CSRFToken": token}, data=form)
    session.expire_all()
    assert session.get(type(event), event.id).per_buyer_limit == 4


def test_paying_a_lapsed_hold_while_the_same_buyer_reserves_never_passes_the_limit(app, session, factory, gateway):
    """The late payment counts under the buyer's lock, as a reserve does: of the two at once, one gets through."""
    event = _ga(factory, per_buyer_limit=4, rehold_cooldown_seconds=0)
    first, second = _tiers(session, event)
    rounds = []
    for _ in range(12):
        user = factory.user()
        lapsed = factory.hold(event, user, quantities={first: 3})
        expire_now(session, lapsed.id)
        inventory.expire_holds(session, hold_ids=[lapsed.id])
        session.commit()
        rounds.append((user.id, lapsed.id))

    def work(i):
        user_id, hold_id = rounds[i // 2]
        try:
            if i % 2:
                inventory.reserve(user_id=user_id, event_id=event.id, quantities={second: 3})
            else:
                checkout.pay(db.session, gateway, hold_id=hold_id, user_id=user_id, idempotency_key=f"late-{i}",
                             card=GOOD)
            return "ok"
        except (LimitExceeded, HoldExpired, Busy, PaymentDeclined) as refused:
            # PaymentDeclined: the reserve came after the late hold was taken
            # again, and replaced it as the buyer's basket (nothing charged).
            db.session.rollback()
            return type(refused).__name__

    outcomes = race(app, 2 * len(rounds), work)
    for user_id, _ in rounds:
        have = session.execute(text("SELECT tb_buyer_count(:u, :e)"), {"u": user_id, "e": event.id}).scalar_one()
        assert have <= 4, (user_id, have, outcomes)
    assert "ok" in outcomes
    assert_consistent(session, event.id)


def test_a_late_payment_does_not_wait_for_the_buyers_lock(session, factory, gateway, database_url):
    """A reserve of the same buyer in flight (holding their lock): the late payment answers Busy at once."""
    from sqlalchemy import create_engine

    event = _ga(factory, per_buyer_limit=10)
    first, _ = _tiers(session, event)
    user = factory.user()
    lapsed = factory.hold(event, user, quantities={first: 2})
    expire_now(session, lapsed.id)
    other = create_engine(database_url)
    with other.connect() as conn, conn.begin():
        conn.execute(text("SELECT pg_advisory_xact_lock((CAST(:e AS bigint) << 32) | :u)"),
                     {"e": event.id, "u": user.id})
        with pytest.raises(Busy, match="try paying again"):
            checkout.pay(session, gateway, hold_id=lapsed.id, user_id=user.id, idempotency_key="late-busy", card=GOOD)
        session.rollback()
    other.dispose()
    paid = checkout.pay(session, gateway, hold_id=lapsed.id, user_id=user.id, idempotency_key="late-free", card=GOOD)
    assert paid.order_id is not None
    assert_consistent(session, event.id)
