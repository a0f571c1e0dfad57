"""The seat list (section, row, seat) over HTTP: both renderings of each step, the words
each choice is read out with, the seat map's reserve taken from the last step with and
without htmx, refusals answered in the list, the list's guards, and a cost that does not
grow with the hall."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select, text

from tests.support import login, reserve_seats
from webapp.extensions import db
from webapp.models import Hold, HoldStatus, Unit
from webapp.services.admin import codes as code_admin
from webapp.services.selling import events
from webapp.services.waiting import waiting_room

HX = {"HX-Request": "true"}


def body(response) -> str:
    return response.get_data(as_text=True)


def words(html: str) -> str:
    """The page's text as a screen reader strings it together: tags gone, spaces folded."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def list_url(event_id: int, **query) -> str:
    return f"/events/{event_id}/seat-list" + (f"?{urlencode(query)}" if query else "")


@pytest.fixture
def hall(session, factory):
    """Two sections, two tiers: Stalls rows A-C (A at €95, B-C at €65), Balcony row M (€45)."""
    event = factory.event(title="List Hall", per_order_limit=4)
    front = events.add_seated_tier(session, event, name="Premium", price_minor=9500, colour="#b45309")
    back = events.add_seated_tier(session, event, name="Standard", price_minor=6500, sort_order=1)
    balcony = events.add_seated_tier(session, event, name="Balcony", price_minor=4500, sort_order=2)
    events.generate_section(session, event, events.SectionSpec("Stalls", 3, 5, 0, 0, ((0, 0, front), (1, 2, back))))
    events.generate_section(session, event, events.SectionSpec("Balcony", 1, 6, 0, 6, ((0, 0, balcony),),
                                                               first_row_label="M"))
    session.commit()
    return event


def seat_id(session, event, section: str, row: str, number: int) -> int:
    return session.scalar(select(Unit.id).where(Unit.event_id == event.id, Unit.section == section,
                                                Unit.row_label == row, Unit.seat_number == number))


@pytest.fixture
def buyer(client, factory):
    user = factory.user(name="Lee List")
    return user, login(client, user.email)


def test_the_three_steps_read_out_availability_and_price(client, session, factory, hall):
    other = factory.user()
    reserve_seats(session, user_id=other.id, event_id=hall.id,
                  unit_ids=[seat_id(session, hall, "Stalls", "A", n) for n in (1, 2)])
    session.commit()

    sections = words(body(client.get(list_url(hall.id))))
    assert "Step 1 of 3: choose a section" in sections
    assert "Stalls 13 seats free, €65.00 to €95.00" in sections
    assert "Balcony 6 seats free, Balcony, €45.00" in sections

    rows = words(body(client.get(list_url(hall.id, section="Stalls"))))
    assert "Step 2 of 3: choose a row in Stalls" in rows
    assert "Row A 3 of 5 seats free, Premium, €95.00" in rows
    assert "Row B 5 of 5 seats free, Standard, €65.00" in rows

    seats_page = body(client.get(list_url(hall.id, section="Stalls", row="A")))
    seats = words(seats_page)
    assert "Step 3 of 3: choose seats in Stalls, row A" in seats
    assert "Seat 1 Premium, €95.00, unavailable" in seats
    assert "Seat 3 Premium, €95.00, available" in seats
    # Each seat is a labelled checkbox (its name is the label's words); taken ones cannot be picked.
    taken = seat_id(session, hall, "Stalls", "A", 1)
    assert re.search(rf'<input type="checkbox" name="seat" value="{taken}" id="list-seat-{taken}" disabled>',
                     seats_page)
    assert f'<label for="list-seat-{taken}">' in seats_page
    assert "Next row (B)" in seats and "Previous row" not in seats


def test_each_step_is_the_page_or_for_htmx_the_list_alone(client, hall):
    for query in ({}, {"section": "Stalls"}, {"section": "Stalls", "row": "B"}):
        page = client.get(list_url(hall.id, **query))
        assert page.status_code == 200 and "<html" in body(page) and 'id="seat-list"' in body(page)
        partial = client.get(list_url(hall.id, **query), headers=HX)
        assert partial.status_code == 200 and "HX-Request" in partial.headers["Vary"]
        assert "<html" not in body(partial) and body(partial).count('id="seat-list"') == 1
        # Every step is a plain link that htmx swaps into the list and pushes into the history.
        for link in re.findall(r"<a [^>]*hx-get[^>]*>", body(partial)):
            assert 'hx-target="#seat-list"' in link and 'hx-push-url="true"' in link
            href = re.search(r'href="([^"]+)"', link).group(1)
            assert href == re.search(r'hx-get="([^"]+)"', link).group(1)


def test_the_event_page_offers_the_list_first_on_every_seated_event(client, factory, hall):
    page = body(client.get(f"/events/{hall.id}"))
    assert page.index(f'href="/events/{hall.id}/seat-list"') < page.index('id="seat-map"')
    ga = factory.ga_event()
    assert "seat-list" not in body(client.get(f"/events/{ga.id}"))
    assert client.get(list_url(ga.id)).status_code == 404


def test_a_sold_out_row_and_section_are_said_and_not_offered(client, session, factory, hall):
    for numbers in ((1, 2, 3), (4, 5, 6)):  # the order limit is 4
        reserve_seats(session, user_id=factory.user().id, event_id=hall.id,
                      unit_ids=[seat_id(session, hall, "Balcony", "M", n) for n in numbers])
    session.commit()
    sections = body(client.get(list_url(hall.id)))
    assert "Balcony</span> <span class=\"choice-facts\">sold out, Balcony, €45.00" in sections
    assert "section=Balcony" not in sections
    rows = body(client.get(list_url(hall.id, section="Balcony")))
    assert "sold out" in rows and "row=M" not in rows


def test_reserve_from_the_list_without_javascript_goes_through_the_seat_reserve(client, session, hall, buyer):
    user, token = buyer
    wanted = [seat_id(session, hall, "Stalls", "B", n) for n in (2, 3)]
    response = client.post(f"/events/{hall.id}/reserve", data={
        "csrf_token": token, "list-section": "Stalls", "list-row": "B", "seat": wanted})
    assert response.status_code == 303 and "/holds/" in response.headers["Location"]
    hold = session.scalar(select(Hold).where(Hold.user_id == user.id, Hold.status == HoldStatus.ACTIVE))
    held = session.scalars(select(Unit.id).where(Unit.hold_id == hold.id).order_by(Unit.id)).all()
    assert list(held) == sorted(wanted)
    # The list now says the buyer's own seats are theirs.
    seats = words(body(client.get(list_url(hall.id, section="Stalls", row="B"))))
    assert "Seat 2 Standard, €65.00, held by you" in seats


def test_reserve_from_the_list_with_htmx_is_the_same_reserve(client, session, hall, buyer):
    user, token = buyer
    wanted = seat_id(session, hall, "Balcony", "M", 4)
    response = client.post(f"/events/{hall.id}/reserve", headers={**HX, "X-CSRFToken": token},
                           data={"list-section": "Balcony", "list-row": "M", "seat": [wanted]})
    assert response.status_code == 204 and "/holds/" in response.headers["HX-Redirect"]
    assert session.scalar(select(Unit.status).where(Unit.id == wanted)).value == "held"


def test_a_seat_taken_meanwhile_is_named_in_the_list_with_the_rest_still_picked(client, session, factory, hall,
                                                                                 buyer):
    _, token = buyer
    lost, kept = (seat_id(session, hall, "Stalls", "C", n) for n in (1, 2))
    reserve_seats(session, user_id=factory.user().id, event_id=hall.id, unit_ids=[lost])
    session.commit()
    for headers, data in (({**HX, "X-CSRFToken": token}, {}), ({}, {"csrf_token": token})):
        response = client.post(f"/events/{hall.id}/reserve", headers=headers,
                               data={**data, "list-section": "Stalls", "list-row": "C", "seat": [lost, kept]})
        assert response.status_code == 409
        page = body(response)
        assert 'id="seat-list"' in page and 'role="alert"' in page
        assert "Stalls, row C, seat 1" in words(page)
        assert "The list now shows what is free. The rest of your selection is still picked." in words(page)
        assert re.search(rf'value="{kept}" id="list-seat-{kept}" checked', page)
        assert re.search(rf'value="{lost}" id="list-seat-{lost}" disabled', page)
    assert session.scalar(text("SELECT count(*) FROM holds WHERE status = 'active'")) == 1


def test_over_the_order_limit_is_told_beside_the_picks(client, session, hall, buyer):
    _, token = buyer
    wanted = [seat_id(session, hall, "Stalls", "B", n) for n in range(1, 6)]  # the limit is 4
    response = client.post(f"/events/{hall.id}/reserve", headers={**HX, "X-CSRFToken": token},
                           data={"list-section": "Stalls", "list-row": "B", "seat": wanted})
    assert 400 <= response.status_code < 500
    page = body(response)
    assert "Your selection is still picked." in page and 'id="seat-list"' in page
    assert all(re.search(rf'value="{s}" id="list-seat-{s}" checked', page) for s in wanted)


def test_an_anonymous_reserve_logs_in_then_comes_back_to_the_same_row_and_picks(client, session, hall):
    from tests.support import csrf_token

    wanted = seat_id(session, hall, "Stalls", "B", 4)
    response = client.post(f"/events/{hall.id}/reserve", data={
        "csrf_token": csrf_token(client), "list-section": "Stalls", "list-row": "B", "seat": [wanted]})
    assert response.status_code == 303
    back = parse_qs(urlparse(response.headers["Location"]).query)["next"][0]
    assert back.startswith(f"/events/{hall.id}/seat-list?")
    assert parse_qs(urlparse(back).query) == {"section": ["Stalls"], "row": ["B"], "seat": [str(wanted)]}
    assert re.search(rf'value="{wanted}" id="list-seat-{wanted}" checked', body(client.get(back)))


def test_unknown_sections_and_rows_are_404(client, hall):
    for query in ({"section": "Nowhere"}, {"section": "Stalls", "row": "Z"}, {"row": "A"},
                  {"section": "x" * 61}, {"section": "Stalls", "row": "A" * 11}):
        assert client.get(list_url(hall.id, **query)).status_code == 404, query


def test_a_hidden_tier_stays_out_of_the_list_until_its_code_unlocks_it(client, session, factory):
    event = factory.event(title="Opera Gala")
    stalls = events.add_seated_tier(session, event, name="Stalls", price_minor=5000)
    box = events.add_seated_tier(session, event, name="Box", price_minor=9000, sort_order=1)
    box.hidden = True
    events.generate_section(session, event, events.SectionSpec("Hall", 2, 4, 0, 0, ((0, 0, stalls), (1, 1, box))))
    events.generate_section(session, event, events.SectionSpec("Loge", 1, 2, 0, 4, ((0, 0, box),)))
    session.commit()
    code_admin.create_code(session, event_id=event.id, raw_code="BOXES", actor_id=None,
                           spec=code_admin.CodeSpec(kind="access", tier_ids=(box.id,)))
    session.commit()
    sections = words(body(client.get(list_url(event.id))))
    assert "Hall 4 seats free, Stalls, €50.00" in sections and "Loge" not in sections and "Box" not in sections
    assert "Row B" not in words(body(client.get(list_url(event.id, section="Hall"))))
    assert client.get(list_url(event.id, section="Hall", row="B")).status_code == 404
    assert client.get(list_url(event.id, section="Loge")).status_code == 404
    assert "Next row" not in body(client.get(list_url(event.id, section="Hall", row="A")))

    client.get(f"/events/{event.id}?access=BOXES")
    sections = words(body(client.get(list_url(event.id))))
    assert "Hall 8 seats free, €50.00 to €90.00" in sections and "Loge 2 seats free, Box, €90.00" in sections
    assert "Seat 1 Box, €90.00, available" in words(body(client.get(list_url(event.id, section="Hall", row="B"))))


def test_seats_kept_for_the_waiting_list_are_unavailable_to_the_public(client, session, factory, hall):
    from webapp.services.selling import inventory

    premium = next(t for t in hall.tiers if t.name == "Premium")
    row_a = session.scalars(select(Unit).where(Unit.tier_id == premium.id).order_by(Unit.id)).all()
    for unit in row_a:
        inventory.block_seat(session, unit)
    session.commit()
    factory.waitlist_entry(hall, tier_id=premium.id, quantity=2)
    inventory.unblock_seat(session, row_a[0])  # one seat for a group of two: set aside for them
    session.commit()
    assert session.scalar(select(Unit.status).where(Unit.id == row_a[0].id)).value == "available"
    assert "Row A sold out" in words(body(client.get(list_url(hall.id, section="Stalls"))))
    assert "Seat 1 Premium, €95.00, unavailable" in words(body(client.get(list_url(hall.id, section="Stalls",
                                                                                     row="A"))))


def test_behind_a_waiting_room_the_list_needs_a_pass(client, session, factory, hall, buyer):
    waiting_room.configure(session, hall, enabled=True, max_shoppers=5, admit_per_minute=None, pass_minutes=10,
                           sale_starts_at=datetime.now(timezone.utc) + timedelta(hours=1))
    session.commit()
    for headers in ({}, HX):
        response = client.get(list_url(hall.id, section="Stalls", row="A"), headers=headers)
        assert response.status_code == 403 and f"/events/{hall.id}/waiting-room" in body(response)
    assert response.headers["HX-Retarget"] == "#event-body"


def _statements(app, client, url: str) -> list[str]:
    seen: list[str] = []

    def listen(conn, cursor, statement, *args):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    sa_event.listen(engine, "before_cursor_execute", listen)
    try:
        assert client.get(url).status_code == 200
    finally:
        sa_event.remove(engine, "before_cursor_execute", listen)
    return seen


def test_a_step_reads_the_same_statements_in_a_hall_ten_times_the_size(app, client, session, factory):
    small = factory.seated_event(rows=4, seats_per_row=10, title="Small")
    big = factory.seated_event(rows=40, seats_per_row=100, title="Big")
    for event in (small, big):
        client.get(list_url(event.id))  # the hall's geometry, read once per layout version
    for query in ({}, {"section": "Stalls"}):
        assert len(_statements(app, client, list_url(small.id, **query))) == \
            len(_statements(app, client, list_url(big.id, **query)))
    small_row = _statements(app, client, list_url(small.id, section="Stalls", row="B"))
    big_row = _statements(app, client, list_url(big.id, section="Stalls", row="T"))
    assert len(small_row) == len(big_row)
    # The row's statement names the row: it reads that row's seats only.
    assert any("u.row_label = %(r)s" in s for s in big_row)


def test_the_counts_walk_the_index_of_free_seats(session, factory):
    from webapp.services.selling import seat_list

    event = factory.event(title="Indexed")
    tier = events.add_seated_tier(session, event, name="Stalls", price_minor=4500)
    for n in range(10):
        events.generate_section(session, event, events.SectionSpec(f"S{n}", 10, 20, 30 * n, 0, ((0, 9, tier),)))
    session.commit()
    session.execute(text("ANALYZE units"))
    for statement, params in ((seat_list._FREE_PER_ROW, {"s": "S3"}),
                              (seat_list._FREE_PER_SECTION, {"sections": ["S1", "S2"], "cap": 100})):
        plan = session.execute(text("EXPLAIN " + str(statement)),
                               {"e": event.id, "tiers": [tier.id], **params}).scalars().all()
        assert any("ix_units_free_seats" in line for line in plan), "\n".join(plan)
    session.rollback()


def test_a_seat_number_reads_at_4_5_to_1_on_any_tier_colour_an_admin_picks(client, session, factory):
    import random

    from webapp.templating import contrast, ink

    rng = random.Random(7)
    colours = ["#b45309", "#2563eb", "#059669", "#3b82f6", "#db2777", "#7c3aed", "#777777", "#ffff00", "#000000",
               "#ffffff", *(f"#{rng.randrange(1 << 24):06x}" for _ in range(2000))]
    worst = min(contrast(c, ink(c)) for c in colours)
    assert worst >= 4.5, worst
    event = factory.seated_event(rows=1, seats_per_row=2, title="Pale")
    event.tiers[0].colour = "#fde68a"  # pale yellow: white on it would read at 1.3:1
    session.commit()
    assert "--tier:#fde68a;--ink:#000000" in body(client.get(f"/events/{event.id}"))


def test_reserve_with_no_seat_picked_is_told_in_the_list(client, hall, buyer):
    _, token = buyer
    for headers, data in (({**HX, "X-CSRFToken": token}, {}), ({}, {"csrf_token": token})):
        response = client.post(f"/events/{hall.id}/reserve", headers=headers,
                               data={**data, "list-section": "Stalls", "list-row": "B"})
        assert response.status_code == 400
        page = body(response)
        assert 'id="seat-list"' in page and 'role="alert"' in page, page[:500]
        assert "Pick at least one seat." in page and "still picked" not in page


def test_a_seat_says_its_properties_in_words(client, session, hall):
    from webapp.services.selling import inventory

    inventory.set_seat_property(session, hall.id, inventory.SeatRange("Balcony", "M", 1, 1), "wheelchair", True)
    inventory.set_seat_property(session, hall.id, inventory.SeatRange("Balcony", "M", 2, 2), "companion", True)
    inventory.set_seat_property(session, hall.id, inventory.SeatRange("Balcony", "M", 6, 6), "aisle", True)
    session.commit()
    seats = words(body(client.get(list_url(hall.id, section="Balcony", row="M"))))
    assert "Seat 1 Balcony, €45.00, wheelchair space, available" in seats
    assert "Seat 2 Balcony, €45.00, companion seat, available" in seats
    assert "Seat 6 Balcony, €45.00, aisle seat, available" in seats
    assert "Seat 3 Balcony, €45.00, available" in seats
