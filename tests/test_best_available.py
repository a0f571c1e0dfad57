"""Best available: the best free seats of a tier, together in one row where possible.

The race: 100 buyers ask for pairs in one section at the same instant. The
function locks what it takes with SKIP LOCKED, so every buyer gets a
different pair, and while pairs remain each is side by side in one row.
"""
from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select, text

from tests.support import assert_consistent, csrf_token, login, race, reserve_best
from webapp.extensions import db
from webapp.models import Hold, Unit
from webapp.services.errors import InvalidRequest, NotEnoughLeft
from webapp.services.selling import events, inventory


def _seats(session, hold_id: int) -> list[Unit]:
    hold = session.get(Hold, hold_id)
    return list(session.scalars(select(Unit).where(Unit.id.in_(hold.unit_ids)).order_by(Unit.seat_number)))


def _together(seats: list[Unit]) -> bool:
    numbers = [s.seat_number for s in seats]
    return (len({(s.section, s.row_label) for s in seats}) == 1
            and numbers == list(range(numbers[0], numbers[0] + len(numbers))))


def test_default_order_is_front_rows_centre_first(session, factory):
    event = factory.seated_event(rows=3, seats_per_row=9)
    tier = factory.tier(event)
    buyer = factory.user()
    hold = reserve_best(session, user_id=buyer.id, event_id=event.id, tier_id=tier.id, count=3)
    session.commit()
    seats = _seats(session, hold.id)
    assert [(s.row_label, s.seat_number) for s in seats] == [("A", 4), ("A", 5), ("A", 6)]
    other = factory.user()
    hold = reserve_best(session, user_id=other.id, event_id=event.id, tier_id=tier.id, count=2)
    session.commit()
    # A pair beside the centre block in row A would leave A1 or A9 alone: row B's centre instead.
    assert [(s.row_label, s.seat_number) for s in _seats(session, hold.id)] == [("B", 4), ("B", 5)]


def test_row_order_ranks_left_to_right(session, factory):
    event = factory.event(title="Row order")
    tier = events.add_seated_tier(session, event, name="Stalls", price_minor=1000)
    events.generate_section(session, event, events.SectionSpec("Stalls", 2, 6, 0, 0, ((0, 1, tier),),
                                                               best_order="row_order"))
    session.commit()
    hold = reserve_best(session, user_id=factory.user().id, event_id=event.id, tier_id=tier.id, count=2)
    session.commit()
    assert [(s.row_label, s.seat_number) for s in _seats(session, hold.id)] == [("A", 1), ("A", 2)]


def test_blocked_and_taken_seats_break_a_run_and_apart_is_the_last_resort(session, factory):
    event = factory.seated_event(rows=1, seats_per_row=5)
    tier = factory.tier(event)
    ids = factory.seat_ids(event)
    inventory.block_seat(session, session.get(Unit, ids[2]))  # A3: the row is 2 + 2 around it
    session.commit()
    hold = reserve_best(session, user_id=factory.user().id, event_id=event.id, tier_id=tier.id, count=2)
    session.commit()
    assert _together(_seats(session, hold.id))
    hold = reserve_best(session, user_id=factory.user().id, event_id=event.id, tier_id=tier.id, count=2)
    session.commit()
    assert _together(_seats(session, hold.id))
    with pytest.raises(NotEnoughLeft):
        reserve_best(session, user_id=factory.user().id, event_id=event.id, tier_id=tier.id, count=1)
    session.rollback()
    assert_consistent(session, event.id)


def test_no_run_left_gives_the_best_seats_apart(session, factory):
    event = factory.seated_event(rows=2, seats_per_row=3)
    tier = factory.tier(event)
    ids = factory.seat_ids(event)
    for seat_id in (ids[1], ids[4]):  # the middle seat of both rows
        inventory.block_seat(session, session.get(Unit, seat_id))
    session.commit()
    hold = reserve_best(session, user_id=factory.user().id, event_id=event.id, tier_id=tier.id, count=2)
    session.commit()
    seats = _seats(session, hold.id)
    assert len(seats) == 2 and not _together(seats)
    from webapp.services.money.checkout_read import hold_view

    assert not hold_view(session, hold.id, hold.user_id).seats_together


def test_bad_requests_are_refused_clearly(session, factory):
    event = factory.seated_event(rows=1, seats_per_row=4)
    tier = factory.tier(event)
    user = factory.user()
    with pytest.raises(InvalidRequest, match="how many seats"):
        reserve_best(session, user_id=user.id, event_id=event.id, tier_id=tier.id, count=0)
    with pytest.raises(InvalidRequest, match="seat tiers"):
        reserve_best(session, user_id=user.id, event_id=event.id, tier_id=999_999, count=1)
    session.rollback()
    with pytest.raises(NotEnoughLeft, match="Only 4 left"):
        reserve_best(session, user_id=user.id, event_id=event.id, tier_id=tier.id, count=5)


def test_the_page_form_holds_the_best_seats_and_explains_refusals(client, session, factory):
    event = factory.seated_event(rows=2, seats_per_row=6, per_order_limit=6)
    tier = factory.tier(event)
    buyer = factory.user()
    login(client, buyer.email)
    page = client.get(f"/events/{event.id}").get_data(as_text=True)
    assert 'id="best-available"' in page and "Find best seats" in page
    token = csrf_token(client, f"/events/{event.id}")
    headers = {"HX-Request": "true", "X-CSRFToken": token}
    bad = client.post(f"/events/{event.id}/best-available", data={"tier": str(tier.id), "quantity": "x"},
                      headers=headers)
    assert bad.status_code == 400 and "Choose how many seats" in bad.get_data(as_text=True)
    wrong = client.post(f"/events/{event.id}/best-available", data={"tier": "abc", "quantity": "2"}, headers=headers)
    assert wrong.status_code == 400 and "Choose a seat tier." in wrong.get_data(as_text=True)
    too_many = client.post(f"/events/{event.id}/best-available", data={"tier": str(tier.id), "quantity": "7"},
                           headers=headers)
    assert too_many.status_code == 413 or too_many.status_code == 400
    assert "at most 6" in too_many.get_data(as_text=True)
    good = client.post(f"/events/{event.id}/best-available", data={"tier": str(tier.id), "quantity": "4"},
                       headers=headers)
    assert good.status_code == 204 and "/holds/" in good.headers.get("HX-Redirect", "")
    hold = session.scalars(select(Hold).where(Hold.user_id == buyer.id, Hold.status == "active")).one()
    # Not the centre four of the row of six, which would leave a seat alone at each end.
    assert [(s.row_label, s.seat_number) for s in _seats(session, hold.id)] == [("A", 1), ("A", 2), ("A", 3),
                                                                                 ("A", 4)]
    together = client.get(good.headers["HX-Redirect"]).get_data(as_text=True)
    assert "Your reservation" in together and "best seats apart" not in together
    # Row A is still this buyer's basket while the new seats are chosen, and B3 is blocked: no five free side
    # by side, so the best five come apart, and the hold page says so.
    inventory.block_seat(session, session.scalars(select(Unit).where(
        Unit.event_id == event.id, Unit.row_label == "B", Unit.seat_number == 3)).one())
    session.commit()
    apart = client.post(f"/events/{event.id}/best-available", data={"tier": str(tier.id), "quantity": "5"},
                        headers=headers)
    assert apart.status_code == 204
    assert "these are the best seats apart" in client.get(apart.headers["HX-Redirect"]).get_data(as_text=True)


def test_a_hundred_buyers_asking_for_pairs_at_once_get_different_adjacent_pairs(app, session, factory):
    """220 seats in rows of 11: 100 pairs fit side by side (10 rows × 5 pairs, of 20 rows)."""
    event = factory.seated_event(rows=20, seats_per_row=11, per_buyer_limit=10)
    tier = factory.tier(event)
    buyers = [factory.user().id for _ in range(100)]
    session.commit()
    event_id, tier_id = event.id, tier.id

    def ask(i):
        hold_id = inventory.reserve(user_id=buyers[i], event_id=event_id, best=(tier_id, 2)).hold_id
        return hold_id

    hold_ids = race(app, 100, ask)
    session.expire_all()
    taken: Counter[int] = Counter()
    for hold_id in hold_ids:
        seats = _seats(session, hold_id)
        assert len(seats) == 2
        assert _together(seats), [(s.row_label, s.seat_number) for s in seats]
        taken.update(s.id for s in seats)
    assert max(taken.values()) == 1 and len(taken) == 200
    assert_consistent(session, event_id)
    # Nobody waited for anybody: no pair came from the apart fallback, and every hold is a live one.
    assert session.execute(text("SELECT count(*) FROM holds WHERE status = 'active' AND event_id = :e"),
                           {"e": event_id}).scalar() == 100
    db.session.remove()
