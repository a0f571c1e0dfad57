"""Big venues: the overview of sections, section pages and their polls, at stadium size.

A venue over LARGE_VENUE_SEATS opens on its sections; each section page is
today's seat map for that section alone. Their HTML must stay small
whatever the venue's size, their polls answer 304 while nothing changed,
and a hold taken from a section page goes through the one reserve path.
"""
from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text

from tests.support import admin_client, login
from webapp.extensions import db
from webapp.models import Event, EventStatus, Hold, Tier, Unit

PAGE_LIMIT = 300_000  # bytes of HTML, whatever the venue's size
HTMX = {"HX-Request": "true"}


def stadium(factory, *, sections: int, **kw) -> Event:
    return factory.stadium(sections=sections, per_order_limit=8, **kw)


@pytest.fixture
def big(factory):
    """6,000 seats: six sections of 1,000, over the default threshold of 3,000."""
    return stadium(factory, sections=6)


def words(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def checkboxes(html: str) -> list[int]:
    return [int(v) for v in re.findall(r'name="seat" value="(\d+)"', html)]


def section_seats(event: Event, name: str) -> list[int]:
    return list(db.session.scalars(select(Unit.id).where(Unit.event_id == event.id, Unit.section == name)
                                   .order_by(Unit.id)))


def test_a_small_venue_keeps_its_single_map(client, factory):
    event = factory.seated_event(rows=20, seats_per_row=50)  # 1,000 seats
    html = client.get(f"/events/{event.id}").get_data(as_text=True)
    assert 'id="seat-map"' in html and 'id="venue-overview"' not in html
    assert len(checkboxes(html)) == 1_000


def test_a_big_venue_opens_on_its_sections(client, big):
    response = client.get(f"/events/{big.id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="venue-overview"' in html and checkboxes(html) == []
    for n in range(1, 7):
        assert f'href="/events/{big.id}/sections/{n}"' in html
    assert "1,000 of 1,000 seats left" in words(html)
    assert "€45.00–€90.00" in html


def test_a_section_page_draws_that_section_alone_with_the_way_back(client, big):
    html = client.get(f"/events/{big.id}/sections/3").get_data(as_text=True)
    assert checkboxes(html) == section_seats(big, "Block 3")
    assert f'href="/events/{big.id}"' in html  # all sections
    assert 'class="venue-plan minimap"' in html and "plan-section some current" not in html
    assert re.search(r'class="plan-section many current"', html)
    assert f'hx-get="/events/{big.id}/sections/3/seat-status"' in html


def test_the_threshold_is_a_setting(app, client, big):
    app.config["LARGE_VENUE_SEATS"] = 10_000
    try:
        html = client.get(f"/events/{big.id}").get_data(as_text=True)
    finally:
        app.config["LARGE_VENUE_SEATS"] = 3000
    assert 'id="venue-overview"' not in html and len(checkboxes(html)) == 6_000


@pytest.mark.parametrize("path", [
    "/sections/0", "/sections/7", "/sections/99999999999999999999", "/sections/-1", "/sections/abc",
    "/sections/1.5", "/sections/0/seat-status", "/sections/7/seat-status", "/sections/1x",
])
def test_bad_section_ids_are_404(client, big, path):
    assert client.get(f"/events/{big.id}{path}").status_code == 404
    assert client.get(f"/events/{big.id}{path}", headers=HTMX).status_code == 404


def test_sections_of_an_unknown_or_general_admission_event_are_404(client, factory):
    ga = factory.ga_event(10)
    for path in (f"/events/{ga.id}/sections/1", f"/events/{ga.id}/sections", "/events/999999/sections/1",
                 "/events/999999/sections/1/seat-status"):
        assert client.get(path, headers=HTMX).status_code == 404, path


def test_section_and_overview_polls_answer_304_until_something_changes(client, factory, big):
    for path, target in ((f"/events/{big.id}/sections/2/seat-status", 'id="seat-live"'),
                         (f"/events/{big.id}/sections", 'id="venue-overview"')):
        first = client.get(path, headers=HTMX)
        assert first.status_code == 200 and target in first.get_data(as_text=True)
        tag = first.headers["ETag"]
        assert client.get(path, headers={**HTMX, "If-None-Match": tag}).status_code == 304
    seat = section_seats(big, "Block 2")[0]
    factory.hold(big, seats=[seat])
    changed = client.get(f"/events/{big.id}/sections/2/seat-status", headers={**HTMX, "If-None-Match": tag})
    assert changed.status_code == 200 and str(seat) in changed.headers.get("ETag", "") + changed.get_data(as_text=True)
    overview = client.get(f"/events/{big.id}/sections", headers={**HTMX, "If-None-Match": tag})
    assert overview.status_code == 200 and "999 of 1,000 seats left" in words(overview.get_data(as_text=True))


def test_a_section_poll_carries_that_section_only(client, factory, big):
    in_two, in_five = section_seats(big, "Block 2")[10], section_seats(big, "Block 5")[10]
    factory.hold(big, seats=[in_two])
    factory.hold(big, seats=[in_five])
    html = client.get(f"/events/{big.id}/sections/2/seat-status", headers=HTMX).get_data(as_text=True)
    taken = re.search(r'data-taken="([^"]*)"', html).group(1).split()
    assert taken == [str(in_two)]
    assert "data-figures" not in html  # the event's figures are the whole hall's, not a section's


def test_holding_from_a_section_page_goes_through_the_seat_reserve(client, factory, big):
    buyer = factory.user()
    token = login(client, buyer.email)
    page = client.get(f"/events/{big.id}/sections/4").get_data(as_text=True)
    action = re.search(r'<form id="seat-map"[^>]* action="([^"]+)"', page).group(1)
    assert action == f"/events/{big.id}/reserve"
    picks = section_seats(big, "Block 4")[:2]
    answer = client.post(action, data={"csrf_token": token, "seat": picks})
    assert answer.status_code == 303 and "/holds/" in answer.headers["Location"]
    hold = db.session.scalars(select(Hold).where(Hold.user_id == buyer.id)).one()
    held = db.session.scalars(select(Unit.id).where(Unit.hold_id == hold.id)).all()
    assert sorted(held) == sorted(picks)


def test_a_seat_taken_meanwhile_redraws_its_section(client, factory, big):
    buyer = factory.user()
    token = login(client, buyer.email)
    seat = section_seats(big, "Block 5")[0]
    factory.hold(big, seats=[seat])  # someone else, first
    answer = client.post(f"/events/{big.id}/reserve", data={"csrf_token": token, "seat": [seat]},
                         headers={**HTMX, "X-CSRFToken": token})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 409
    assert checkboxes(html) == section_seats(big, "Block 5")  # the same section, not the overview


@pytest.mark.slow
def test_pages_stay_small_at_60000_seats(client, factory):
    started = time.perf_counter()
    event = stadium(factory, sections=60, rows=25, seats_per_row=40)
    generated = time.perf_counter() - started
    assert db.session.scalar(select(func.count()).select_from(Unit).where(Unit.event_id == event.id)) == 60_000
    assert db.session.scalar(select(func.sum(Tier.capacity)).where(Tier.event_id == event.id)) == 60_000
    overview = client.get(f"/events/{event.id}")
    assert overview.status_code == 200 and len(overview.data) < PAGE_LIMIT
    assert overview.get_data(as_text=True).count('class="section-list"') == 1
    sizes = {}
    for n in (1, 30, 60):
        page = client.get(f"/events/{event.id}/sections/{n}")
        assert page.status_code == 200 and len(page.data) < PAGE_LIMIT
        assert len(checkboxes(page.get_data(as_text=True))) == 1_000
        sizes[n] = len(page.data)
    print(f"60,000 seats generated in {generated:.1f} s; overview {len(overview.data):,} B, sections {sizes}")


def test_the_section_states_read_uses_the_section_index(session, factory, big):
    """The poll of a section can read its rows through the index on (event, section), not the whole event.

    On a table this small the planner may rightly prefer a scan; with scans off,
    the plan shows whether the section's condition is one an index can take.
    """
    session.execute(text("ANALYZE units"))
    session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(session.execute(text(
        "EXPLAIN SELECT id FROM units u WHERE u.event_id = :e AND u.seat_number IS NOT NULL"
        " AND (CAST('Block 2' AS text) IS NULL OR u.section = CAST('Block 2' AS text))"
        " AND u.status <> 'available'"), {"e": big.id}).scalars())
    session.rollback()
    assert "uq_units_seat_position" in plan and re.search(r"Index Cond: .*section", plan), plan


# The admin's layout tools at stadium size ----------------------------------------------------------


def _admin_with_tiers(client, factory, session):

    event = factory.event(status=EventStatus.DRAFT, title="Arena")
    session.commit()
    client, _, token = admin_client(client, factory)
    headers = {"X-CSRFToken": token, "HX-Request": "true"}
    for name, price in (("Lower", "90"), ("Upper", "45")):
        r = client.post(f"/admin/events/{event.id}/tiers", headers=headers,
                        data={"kind": "seated", "name": name, "price": price, "colour": "#b45309"})
        assert r.status_code == 204, r.get_data(as_text=True)[:500]
    lower, upper = session.scalars(select(Event).where(Event.id == event.id)).one().tiers
    return event, client, headers, lower, upper


@pytest.mark.slow
def test_the_admin_generates_60000_seats_in_one_request_and_sees_them_by_section(client, factory, session):
    event, client, headers, lower, upper = _admin_with_tiers(client, factory, session)
    form = {"sections": "Block 1-30", "rows": "40", "seats_per_row": "50", "first_row_label": "A",
            "per_line": "10", "tier_1": str(lower.id), "from_1": "1", "to_1": "20",
            "tier_2": str(upper.id), "from_2": "21", "to_2": "40"}

    preview = client.post(f"/admin/events/{event.id}/layout/preview", headers=headers, data=form)
    body = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "60,000 seats</strong> in 30 sections" in body
    assert 'class="aseat' not in body and body.count('class="plan-box planned"') == 30  # boxes, not 60,000 seats
    assert len(preview.data) < PAGE_LIMIT
    assert session.scalar(select(func.count()).where(Unit.event_id == event.id)) == 0

    statements = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731

    sa_event.listen(db.engine, "before_cursor_execute", listen)
    started = time.perf_counter()
    try:
        made = client.post(f"/admin/events/{event.id}/layout", headers=headers, data=form)
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", listen)
    took = time.perf_counter() - started
    assert made.status_code == 204, made.get_data(as_text=True)[:500]
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO UNITS")]
    assert len(inserts) == 30  # one statement per section, set-based: not a row at a time
    session.expire_all()
    assert session.scalar(select(func.count()).where(Unit.event_id == event.id)) == 60_000
    assert session.get(Tier, lower.id).capacity == session.get(Tier, upper.id).capacity == 30_000
    # Placed ten to a line: three lines of sections, each 42 rows below the one before.
    tops = session.execute(select(Unit.section, func.min(Unit.pos_x), func.min(Unit.pos_y))
                           .where(Unit.event_id == event.id).group_by(Unit.section)).all()
    assert {y for _, _, y in tops} == {0, 42, 84} and {x for _, x, _ in tops} == {i * 52 for i in range(10)}
    print(f"admin generated 60,000 seats in {took:.1f} s")

    page = client.get(f"/admin/events/{event.id}/layout")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and len(page.data) < PAGE_LIMIT and 'class="aseat' not in html
    assert html.count(f'href="/admin/events/{event.id}/layout?section=') == 30
    one = client.get(f"/admin/events/{event.id}/layout?section=7")
    assert one.status_code == 200 and one.get_data(as_text=True).count('class="aseat available"') == 2_000


def test_the_generator_places_sections_and_refuses_overlaps(client, factory, session):
    event, client, headers, lower, _ = _admin_with_tiers(client, factory, session)
    base = {"rows": "5", "seats_per_row": "10", "first_row_label": "A", "tier_1": str(lower.id)}
    made = client.post(f"/admin/events/{event.id}/layout", headers=headers,
                       data={**base, "sections": "North", "origin_x": "20", "origin_y": "0"})
    assert made.status_code == 204
    assert session.execute(select(func.min(Unit.pos_x), func.min(Unit.pos_y))
                           .where(Unit.event_id == event.id)).one() == (20, 0)
    clash = client.post(f"/admin/events/{event.id}/layout/preview", headers=headers,
                        data={**base, "sections": "East", "origin_x": "25", "origin_y": "3"})
    assert clash.status_code == 400 and "“East” would overlap “North”" in clash.get_data(as_text=True)
    for bad in ({"origin_x": "-1"}, {"origin_y": "x"}, {"per_line": "0"}, {"origin_x": "99999999999999999999"}):
        r = client.post(f"/admin/events/{event.id}/layout", headers=headers, data={**base, "sections": "West", **bad})
        assert r.status_code == 400, bad
    assert session.scalar(select(func.count()).where(Unit.event_id == event.id)) == 50


def test_a_section_too_big_for_one_page_is_shown_a_part_at_a_time(client, factory):
    """Sections of 40 rows x 50 seats (the generator allows 60 x 80): each part is whole rows, up to 1,000 seats."""
    event = stadium(factory, sections=2, rows=40, seats_per_row=50)  # 4,000 seats
    seats = section_seats(event, "Block 2")
    first = client.get(f"/events/{event.id}/sections/2")
    html = first.get_data(as_text=True)
    assert first.status_code == 200 and len(first.data) < PAGE_LIMIT
    assert checkboxes(html) == seats[:1_000]  # rows A-V (I and O are skipped): 20 rows of 50
    assert "Rows A–V" in words(html) and "Rows W–AR" in words(html)
    assert f'href="/events/{event.id}/sections/2?part=2"' in html
    second = client.get(f"/events/{event.id}/sections/2?part=2")
    assert second.status_code == 200 and len(second.data) < PAGE_LIMIT
    assert checkboxes(second.get_data(as_text=True)) == seats[1_000:]
    for bad in ("0", "3", "x", "99999999999999999999", ""):
        assert client.get(f"/events/{event.id}/sections/2?part={bad}").status_code == 404, bad
    # A seat picked in the second part opens that part (a link back from login, a refusal).
    picked = client.get(f"/events/{event.id}?seat={seats[1_500]}").get_data(as_text=True)
    assert checkboxes(picked) == seats[1_000:]
    token = login(client, factory.user().email)
    factory.hold(event, seats=[seats[1_500]])  # someone else, first
    lost = client.post(f"/events/{event.id}/reserve", data={"csrf_token": token, "seat": [seats[1_500]]},
                       headers={**HTMX, "X-CSRFToken": token})
    assert lost.status_code == 409 and checkboxes(lost.get_data(as_text=True)) == seats[1_000:]


def test_the_admin_blocks_a_seat_in_a_big_venues_chosen_section(client, factory, session, big):
    client, _, token = admin_client(client, factory)
    seat = section_seats(big, "Block 3")[5]
    answer = client.post(f"/admin/events/{big.id}/seats", headers={"X-CSRFToken": token, "HX-Request": "true"},
                         data={"block": str(seat), "section": "3"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and html.count('class="aseat ') == 1_000  # that section, not 6,000 seats
    assert f'name="unblock" value="{seat}"' in html
    assert session.get(Unit, seat).status.value == "blocked"
    page = client.get(f"/admin/events/{big.id}/layout?section=99")
    assert page.status_code == 200 and 'class="aseat' not in page.get_data(as_text=True)  # no such section: none drawn


def test_the_layout_kept_after_an_admin_page_draws_for_buyers(client, factory, session, big):
    """The admin's page reads the hall's layout with the event's models; what is kept must not be those models.

    Buyers are drawn from the kept layout in later requests, after that
    session has ended: a model there fails on its first expired attribute
    (the e2e admin journey met it as a 500 on the buyer's page).
    """
    from webapp.services.selling import hall_layout
    from webapp.services.selling.event_snapshots import TierSnapshot

    model = session.get(Event, big.id)
    layout = hall_layout.for_event(session, model)
    assert layout.tiers and all(isinstance(t, TierSnapshot) for t in layout.tiers)
    session.expire_all()
    event_id = big.id
    admin, _, _ = admin_client(client, factory)
    assert admin.get(f"/admin/events/{event_id}/layout").status_code == 200
    assert admin.get(f"/events/{event_id}/sections/1").status_code == 200
