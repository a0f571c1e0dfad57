"""Seat properties and best available across the venue: the focal point, orphan seats, wheelchair spaces.

Concrete layouts, the answers worked out by hand; the race: buyers asking for
wheelchair spaces at once never get one without its companion seat.
"""
from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select, text

from tests.support import admin_client, assert_consistent, race
from tests.test_api import bearer, problem, token_for
from webapp.extensions import db
from webapp.models import Event, Hold, Unit
from webapp.services import demo
from webapp.services.admin import seat_properties as admin_seats
from webapp.services.errors import InvalidRequest, NotEnoughLeft
from webapp.services.selling import events, inventory
from webapp.services.selling.inventory import BestSeats, SeatRange


def _seats(session, hold_id: int) -> list[tuple[str, str, int]]:
    hold = session.get(Hold, hold_id)
    return [(u.section, u.row_label, u.seat_number) for u in session.scalars(
        select(Unit).where(Unit.id.in_(hold.unit_ids)).order_by(Unit.section, Unit.row_label, Unit.seat_number))]


def _best(session, factory, event, tier, count, **ask) -> list[tuple[str, str, int]]:
    hold = inventory.reserve_in_session(session, user_id=factory.user().id, event_id=event.id,
                                        best=BestSeats(tier.id, count, **ask))
    session.commit()
    return _seats(session, hold.id)


def _mark(session, event, prop, row, first, last=None, section="Stalls", on=True) -> int:
    changed = admin_seats.set_seat_property(session, actor_id=None, event_id=event.id, prop=prop, on=on,
                                            seats=SeatRange(section, row, first, last or first))
    session.commit()
    return changed


def test_the_demo_hall_gives_four_premium_in_the_centre_block_front_row(session, factory):
    demo.seed(session)
    session.commit()
    hall = session.scalars(select(Event).where(Event.title.like("Vienna Philharmonic%"))).one()
    premium = next(t for t in hall.tiers if t.name == "Premium")
    # Ranked block by block, Stalls Left A5–8 (the middle of a 12-seat block) scored as well as these.
    assert _best(session, factory, hall, premium, 4) == [("Stalls Centre", "A", n) for n in (9, 10, 11, 12)]


def test_the_organiser_moves_the_focal_point_and_the_best_seats_follow(session, factory):
    demo.seed(session)
    session.commit()
    hall = session.scalars(select(Event).where(Event.title.like("Vienna Philharmonic%"))).one()
    premium = next(t for t in hall.tiers if t.name == "Premium")
    # Stalls Left is x 0–11; a point in front of its seats 1 and 2.
    admin_seats.set_best_available(session, actor_id=None, event_id=hall.id, focal_x=0.5, focal_y=-1,
                                   avoid_orphans=True)
    session.commit()
    assert _best(session, factory, hall, premium, 2) == [("Stalls Left", "A", 1), ("Stalls Left", "A", 2)]
    with pytest.raises(InvalidRequest, match="both across and deep"):
        admin_seats.set_best_available(session, actor_id=None, event_id=hall.id, focal_x=3, focal_y=None,
                                       avoid_orphans=True)
    session.rollback()


def test_a_run_that_would_leave_a_seat_alone_is_passed_over_while_the_rule_is_on(session, factory):
    # One row of six, then a second: the four nearest the centre (A2–5) leave A1 and A6 alone.
    event = factory.seated_event(rows=2, seats_per_row=6)
    tier = factory.tier(event)
    assert _best(session, factory, event, tier, 4) in ([("Stalls", "A", n) for n in (1, 2, 3, 4)],
                                                       [("Stalls", "A", n) for n in (3, 4, 5, 6)])
    other = factory.seated_event(rows=2, seats_per_row=6, avoid_orphans=False)
    assert _best(session, factory, other, factory.tier(other), 4) == [("Stalls", "A", n) for n in (2, 3, 4, 5)]


def test_a_seat_left_alone_between_taken_ones_counts_and_it_is_taken_when_nothing_else_is_left(session, factory):
    event = factory.seated_event(rows=1, seats_per_row=5)
    tier = factory.tier(event)
    ids = factory.seat_ids(event)
    factory.hold(event, seats=[ids[0]])  # A1
    # A2–4 leaves A5 alone at the row's end, A3–5 leaves A2 alone beside A1: both, but nothing else is left.
    assert _best(session, factory, event, tier, 3) in ([("Stalls", "A", n) for n in (2, 3, 4)],
                                                       [("Stalls", "A", n) for n in (3, 4, 5)])
    # A row of seven with A1 taken and a second row: a pair at A2–3 keeps A4–7 whole, so it is fine.
    wide = factory.seated_event(rows=2, seats_per_row=7)
    factory.hold(wide, seats=[factory.seat_ids(wide)[0]])
    pair = _best(session, factory, wide, factory.tier(wide), 2)
    assert pair in ([("Stalls", "A", 3), ("Stalls", "A", 4)], [("Stalls", "A", 4), ("Stalls", "A", 5)],
                    [("Stalls", "A", 2), ("Stalls", "A", 3)], [("Stalls", "A", 6), ("Stalls", "A", 7)])
    taken = {n for _, _, n in pair} | {1}
    free = [n for n in range(1, 8) if n not in taken]
    # No free seat of row A stands alone.
    assert all((n - 1 in free) or (n + 1 in free) for n in free), free


def test_a_wheelchair_space_comes_with_its_companion_and_ordinary_asks_keep_off_both(session, factory):
    event = factory.seated_event(rows=2, seats_per_row=10)
    tier = factory.tier(event)
    assert _mark(session, event, "wheelchair", "A", 1) == 1
    assert _mark(session, event, "wheelchair", "A", 10) == 1
    assert _mark(session, event, "companion", "A", 2) == 1
    assert _mark(session, event, "companion", "A", 9) == 1
    pairs = dict(session.execute(text(
        "SELECT seat_number, (SELECT seat_number FROM units w WHERE w.id = c.companion_for)"
        " FROM units c WHERE event_id = :e AND companion_for IS NOT NULL"), {"e": event.id}).all())
    assert pairs == {2: 1, 9: 10}
    # Eight ordinary seats in row A (3–8 is six): the best run of row A never reaches 1, 2, 9 or 10.
    assert _best(session, factory, event, tier, 6) == [("Stalls", "A", n) for n in range(3, 9)]
    got = _best(session, factory, event, tier, 4, wheelchair=1)
    assert got[:2] in ([("Stalls", "A", 1), ("Stalls", "A", 2)], [("Stalls", "A", 9), ("Stalls", "A", 10)])
    assert all(row == "B" for _, row, _ in got[2:]) and len(got) == 4
    assert _best(session, factory, event, tier, 2, wheelchair=1) in (
        [("Stalls", "A", 1), ("Stalls", "A", 2)], [("Stalls", "A", 9), ("Stalls", "A", 10)])
    with pytest.raises(NotEnoughLeft, match="wheelchair spaces with a companion seat"):
        _best(session, factory, event, tier, 2, wheelchair=1)
    session.rollback()
    with pytest.raises(InvalidRequest, match="two seats per wheelchair space"):
        _best(session, factory, event, tier, 3, wheelchair=2)
    session.rollback()
    assert_consistent(session, event.id)


def test_best_available_keeps_to_a_section_when_asked(session, factory):
    event = factory.event(title="Two blocks")
    tier = events.add_seated_tier(session, event, name="Stalls", price_minor=1000)
    events.generate_sections(session, event, [
        events.SectionSpec("Left", 2, 4, 0, 0, ((0, 1, tier),)),
        events.SectionSpec("Right", 2, 4, 6, 0, ((0, 1, tier),)),
    ])
    session.commit()
    assert {s for s, _, _ in _best(session, factory, event, tier, 2, section="Right")} == {"Right"}
    with pytest.raises(InvalidRequest, match="no seats in that section"):
        _best(session, factory, event, tier, 2, section="Balcony")
    session.rollback()


def test_bad_property_ranges_are_refused_clearly_and_nothing_is_half_set(session, factory):
    event = factory.seated_event(rows=2, seats_per_row=5)
    with pytest.raises(InvalidRequest, match="no seat property “sofa”"):
        _mark(session, event, "sofa", "A", 1)
    session.rollback()
    with pytest.raises(InvalidRequest, match="no seat 6, 7 in Stalls, row A"):
        _mark(session, event, "aisle", "A", 4, 7)
    session.rollback()
    with pytest.raises(InvalidRequest, match="The layout has no Stalls, row Q"):
        _mark(session, event, "aisle", "Q", 1, 2)
    session.rollback()
    with pytest.raises(InvalidRequest, match="lower seat number to the higher"):
        _mark(session, event, "aisle", "A", 3, 2)
    session.rollback()
    with pytest.raises(InvalidRequest, match="mark the wheelchair spaces first"):
        _mark(session, event, "companion", "A", 2)
    session.rollback()
    assert session.execute(text("SELECT count(*) FROM units WHERE event_id = :e AND (aisle OR wheelchair"
                                " OR companion_for IS NOT NULL)"), {"e": event.id}).scalar() == 0
    assert _mark(session, event, "restricted_view", "B", 1, 5) == 5
    assert _mark(session, event, "restricted_view", "B", 2, 3, on=False) == 2
    assert session.execute(text("SELECT array_agg(seat_number ORDER BY seat_number) FROM units"
                                " WHERE event_id = :e AND restricted_view"), {"e": event.id}).scalar() == [1, 4, 5]


def test_buyers_racing_for_wheelchair_spaces_never_get_one_without_its_companion(app, session, factory):
    """Five pairs in a row of ten (spaces 1, 3, 5, 7, 9, each with the seat after it); 30 buyers at once."""
    event = factory.seated_event(rows=2, seats_per_row=10, per_buyer_limit=10)
    tier = factory.tier(event)
    for space in (1, 3, 5, 7, 9):
        _mark(session, event, "wheelchair", "A", space)
        _mark(session, event, "companion", "A", space + 1)
    buyers = [factory.user().id for _ in range(30)]
    event_id, tier_id = event.id, tier.id

    def ask(i):
        try:
            return inventory.reserve(user_id=buyers[i], event_id=event_id,
                                     best=BestSeats(tier_id, 2, wheelchair=1)).hold_id
        except NotEnoughLeft:
            return None

    hold_ids = [h for h in race(app, 30, ask) if h is not None]
    session.expire_all()
    assert len(hold_ids) == 5
    taken: Counter[int] = Counter()
    for hold_id in hold_ids:
        units = session.scalars(select(Unit).where(Unit.id.in_(session.get(Hold, hold_id).unit_ids))).all()
        spaces = [u for u in units if u.wheelchair]
        assert len(units) == 2 and len(spaces) == 1
        assert [u.companion_for for u in units if not u.wheelchair] == [spaces[0].id]
        taken.update(u.id for u in units)
    assert len(taken) == 10 and max(taken.values()) == 1
    assert_consistent(session, event_id)
    db.session.remove()


def test_the_layout_page_sets_properties_by_range_and_explains_bad_ranges(client, session, factory):
    event = factory.seated_event(rows=2, seats_per_row=6)
    client, _, token = admin_client(client, factory)
    url = f"/admin/events/{event.id}/layout/properties"
    page = client.get(f"/admin/events/{event.id}/layout").get_data(as_text=True)
    assert 'id="seat-properties"' in page and "Apply to these seats" in page
    headers = {"X-CSRFToken": token, "HX-Request": "true"}
    form = {"prop": "wheelchair", "section": "Stalls", "row": "A", "first": "1", "last": "1"}
    for bad, words in (({"prop": "sofa"}, "Not a valid choice"),
                       ({"last": "9"}, "The layout has no seat 7, 8, 9 in Stalls, row A."),
                       ({"row": "Z"}, "The layout has no Stalls, row Z, seat 1."),
                       ({"first": "x"}, "Not a valid integer value"),
                       ({"prop": "companion", "first": "2", "last": "2"}, "mark the wheelchair spaces first")):
        refused = client.post(url, data={**form, **bad}, headers=headers)
        assert refused.status_code == 400, refused.get_data(as_text=True)[:300]
        answer = refused.get_data(as_text=True)
        assert words in answer and 'id="seat-properties"' in answer, answer[:600]
    done = client.post(url, data=form, headers=headers)
    assert done.status_code == 204 and done.headers["HX-Redirect"].endswith(f"/admin/events/{event.id}/layout")
    assert client.post(url, data={**form, "prop": "companion", "first": "2", "last": "2"},
                       headers=headers).status_code == 204
    map_page = client.get(f"/events/{event.id}").get_data(as_text=True)
    # Said in words: the accessible name, the legend, the filter.
    assert 'aria-label="Stalls, row A, seat 1, wheelchair space, Stalls' in map_page
    assert 'aria-label="Stalls, row A, seat 2, companion seat, Stalls' in map_page
    assert "> Wheelchair space</li>" in map_page and 'id="seat-filter-wheelchair"' in map_page
    settings = client.post(f"/admin/events/{event.id}/layout/best-available",
                           data={"focal_x": "abc", "focal_y": "", "avoid_orphans": "y"}, headers=headers)
    assert settings.status_code == 400 and "Enter a number" in settings.get_data(as_text=True)
    settings = client.post(f"/admin/events/{event.id}/layout/best-available",
                           data={"focal_x": "2", "focal_y": "", "avoid_orphans": "y"}, headers=headers)
    assert settings.status_code == 400 and "both across and deep" in settings.get_data(as_text=True)
    settings = client.post(f"/admin/events/{event.id}/layout/best-available",
                           data={"focal_x": "5", "focal_y": "1"}, headers=headers)
    assert settings.status_code == 204
    session.expire_all()
    event = session.get(Event, event.id)
    assert (event.focal_x, event.focal_y, event.avoid_orphans) == (5, 1, False)


def test_the_api_lists_properties_and_reserves_best_with_a_wheelchair_space(client, session, factory):
    event = factory.seated_event(rows=2, seats_per_row=6)
    tier = factory.tier(event)
    _mark(session, event, "wheelchair", "B", 6)
    _mark(session, event, "companion", "B", 5)
    _mark(session, event, "aisle", "A", 1)
    h = bearer(token_for(session, factory.user()))
    seats = {s["label"]: s for s in client.get(f"/api/v1/events/{event.id}/seats", headers=h).get_json()["seats"]}
    assert seats["Stalls, row B, seat 6"]["properties"] == ["wheelchair"]
    assert seats["Stalls, row B, seat 5"]["properties"] == ["companion"]
    assert seats["Stalls, row A, seat 1"]["properties"] == ["aisle"]
    assert seats["Stalls, row A, seat 2"]["properties"] == []
    made = client.post(f"/api/v1/events/{event.id}/holds", headers=h,
                       json={"best": {"tier_id": tier.id, "quantity": 2, "wheelchair": 1}})
    assert made.status_code == 201, made.get_data(as_text=True)
    lines = {(line["row"], line["seat"]): line["properties"] for line in made.get_json()["lines"]}
    assert lines == {("B", 5): ["companion"], ("B", 6): ["wheelchair"]}
    other = bearer(token_for(session, factory.user()))
    short = problem(client.post(f"/api/v1/events/{event.id}/holds", headers=other,
                                json={"best": {"tier_id": tier.id, "quantity": 2, "wheelchair": 1}}), 409)
    assert "wheelchair spaces with a companion seat" in short["detail"]
    odd = problem(client.post(f"/api/v1/events/{event.id}/holds", headers=other,
                              json={"best": {"tier_id": tier.id, "quantity": 3, "wheelchair": 2}}), 400)
    assert "two seats per wheelchair space" in odd["detail"]
    negative = problem(client.post(f"/api/v1/events/{event.id}/holds", headers=other,
                                   json={"best": {"tier_id": tier.id, "quantity": 2, "wheelchair": -1}}), 400)
    assert "wheelchair" in negative["errors"]["best"]
    both = problem(client.post(f"/api/v1/events/{event.id}/holds", headers=other,
                               json={"best": {"tier_id": tier.id, "quantity": 2}, "seats": [1]}), 400)
    assert "Send one of" in both["detail"]
    nowhere = problem(client.post(f"/api/v1/events/{event.id}/holds", headers=other,
                                  json={"best": {"tier_id": tier.id, "quantity": 2, "section": "Gods"}}), 400)
    assert "no seats in that section" in nowhere["detail"]


def test_seats_are_written_with_the_focal_rank_so_ranking_the_venue_again_moves_nothing(session, factory):
    """The generator writes "front_centre" ranks as tb_rank_seats computes them (three blocks at once, then one
    more beside them, which moves the default focal point and so the older seats' ranks too)."""
    event = factory.event(title="Ranked as written")
    tier = events.add_seated_tier(session, event, name="Any", price_minor=1000)
    events.generate_sections(session, event, [
        events.SectionSpec(name, 4, 7, x, 0, ((0, 3, tier),)) for name, x in (("L", 0), ("C", 8), ("R", 16))])
    events.generate_section(session, event, events.SectionSpec("Far", 3, 9, 24, 2, ((0, 2, tier),)))
    session.commit()
    written = dict(session.execute(text("SELECT id, best_rank FROM units WHERE event_id = :e"), {"e": event.id}).all())
    session.execute(text("SELECT tb_rank_seats(:e)"), {"e": event.id})
    again = dict(session.execute(text("SELECT id, best_rank FROM units WHERE event_id = :e"), {"e": event.id}).all())
    assert len(written) == 3 * 28 + 27 and written == again
    # The far block widened the seats to x 0-32: the centre front is now x 16, R's first seat of row A.
    best = session.execute(text("SELECT section, row_label, seat_number FROM units WHERE event_id = :e"
                                " ORDER BY best_rank, id LIMIT 1"), {"e": event.id}).one()
    assert tuple(best) == ("R", "A", 1)
