"""The hot path's shortcuts keep every promise: the one-statement reserve, the
autocommit reads, the seat map's cached geometry and the layout version behind it.

Speed itself is measured by `python -m tests.load.cost`, never asserted here;
these tests prove the round trips are gone and that nothing stale can show.
"""
from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text

from tests.support import buy, login, reserve_general, reserve_seats
from webapp.database import single_statement
from webapp.extensions import db
from webapp.models import Event, Hold, HoldStatus, Unit, UnitStatus, WaitlistEntry
from webapp.services.admin import events as admin_events
from webapp.services.invariants import check_event
from webapp.services.selling import events
from webapp.services.waiting import waitlist

HX = {"HX-Request": "true"}


@contextmanager
def statements(app):
    """The statements the app sends while the block runs, besides the session check every
    signed-in request makes (session_user.py); BEGIN/COMMIT are the driver's and not seen."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if not statement.startswith("SELECT session_version, is_admin"):
            seen.append(" ".join(statement.split()))

    # A fresh app context, as a request in production has: the test's own
    # (its session and `g`) would otherwise serve the request too.
    with app.app_context():
        sa_event.listen(db.engine, "before_cursor_execute", record)
        try:
            yield seen
        finally:
            sa_event.remove(db.engine, "before_cursor_execute", record)


@pytest.fixture
def buyer(client, factory):
    user = factory.user(name="Hot Path")
    return user, login(client, user.email)


def _layout_version(session, event_id: int) -> int:
    session.expire_all()
    return session.scalar(select(Event.layout_version).where(Event.id == event_id))


def test_a_ga_reserve_is_one_statement_and_really_commits(client, session, factory, buyer):
    user, token = buyer
    event = factory.ga_event(capacity=10)
    tier = factory.tier(event)
    url, field = f"/events/{event.id}/reserve", f"qty-{tier.id}"  # read before: an expired object reloads
    with statements(client.application) as seen:
        response = client.post(url, data={field: "3"}, headers={**HX, "X-CSRFToken": token})
    assert response.status_code == 204, response.get_data(as_text=True)[:300]
    assert len(seen) == 1 and seen[0].startswith("SELECT tb_reserve_places(")
    # Committed on its own: another connection sees the hold and its units.
    with db.engine.connect() as other:
        held = other.execute(text("SELECT count(*) FROM units WHERE tier_id = :t AND status = 'held'"),
                             {"t": tier.id}).scalar_one()
    assert held == 3
    assert check_event(session, event.id) == []


def test_a_seat_reserve_is_one_statement_and_a_lost_race_names_the_seat(client, session, factory, buyer):
    user, token = buyer
    event = factory.seated_event(rows=1, seats_per_row=4)
    seats = factory.seat_ids(event)
    rival = factory.user()
    reserve_seats(session, user_id=rival.id, event_id=event.id, unit_ids=[seats[1]])
    session.commit()
    url = f"/events/{event.id}/reserve"
    with statements(client.application) as seen:
        won = client.post(url, data={"seat": [str(seats[2])]}, headers={**HX, "X-CSRFToken": token})
    assert won.status_code == 204
    assert len(seen) == 1 and seen[0].startswith("SELECT tb_reserve_seats(")
    lost = client.post(f"/events/{event.id}/reserve", data={"seat": [str(seats[0]), str(seats[1])]},
                       headers={**HX, "X-CSRFToken": token})
    assert lost.status_code == 409
    assert "Stalls, row A, seat 2" in lost.get_data(as_text=True)
    # The refusal rolled the whole statement back: the first hold is still the buyer's only one.
    holds = session.scalars(select(Hold).where(Hold.user_id == user.id, Hold.status == HoldStatus.ACTIVE)).all()
    assert [h.unit_ids for h in holds] == [[seats[2]]]
    assert check_event(session, event.id) == []


def test_a_basket_given_back_while_people_wait_goes_to_the_waitlist_first(client, session, factory, buyer):
    """The reserve statement leaves that case to the offer engine (TB503), all in one transaction."""
    user, token = buyer
    event = factory.ga_event(capacity=2, tiers=2)
    first_tier, second_tier = sorted(event.tiers, key=lambda t: t.id)
    assert client.post(f"/events/{event.id}/reserve", data={f"qty-{first_tier.id}": "1"},
                       headers={**HX, "X-CSRFToken": token}).status_code == 204
    buy(session, event, factory.user(), quantities={first_tier.id: 1})
    waiting = factory.user()
    waitlist.join(session, user_id=waiting.id, event_id=event.id, tier_id=first_tier.id, quantity=1)
    session.commit()
    # While the line waits, the first tier is closed to the public, so a new
    # basket there fails and the old one stays (all or nothing):
    refused = client.post(f"/events/{event.id}/reserve", data={f"qty-{first_tier.id}": "1"},
                          headers={**HX, "X-CSRFToken": token})
    assert refused.status_code == 409 and "sold out" in refused.get_data(as_text=True)
    session.expire_all()
    assert session.scalars(select(Hold).where(Hold.user_id == waiting.id)).first() is None
    # A basket of the other tier replaces it: the place it gives back goes to the line first.
    replaced = client.post(f"/events/{event.id}/reserve", data={f"qty-{second_tier.id}": "1"},
                           headers={**HX, "X-CSRFToken": token})
    assert replaced.status_code == 204
    session.expire_all()
    offer = session.scalars(select(Hold).where(Hold.user_id == waiting.id)).one()
    assert offer.status == HoldStatus.ACTIVE and len(offer.unit_ids) == 1
    entry = session.scalars(select(WaitlistEntry).where(WaitlistEntry.user_id == waiting.id)).one()
    assert entry.status.value == "offered"
    mine = session.scalars(select(Hold).where(Hold.user_id == user.id, Hold.status == HoldStatus.ACTIVE)).one()
    assert session.scalar(select(Unit.tier_id).where(Unit.id == mine.unit_ids[0])) == second_tier.id
    assert check_event(session, event.id) == []


def test_polls_and_read_pages_leave_no_transaction_open_and_autocommit_does_not_leak(client, session, factory,
                                                                                    buyer):
    user, token = buyer
    event = factory.seated_event(rows=1, seats_per_row=4)
    page = client.get(f"/events/{event.id}")
    tag = re.search(r'If-None-Match": "W/\\"([^\\]+)\\"', page.get_data(as_text=True)).group(1)
    url = f"/events/{event.id}/seat-status"
    with statements(client.application) as seen:
        unchanged = client.get(url, headers={**HX, "If-None-Match": f'W/"{tag}"'})
    assert unchanged.status_code == 304 and len(seen) == 1 and "inventory_clock" in seen[0]
    # A connection that served an autocommit statement goes back to the pool
    # transactional again: what a later session does there can still roll back.
    with single_statement() as connection:
        connection.execute(text("SELECT 1"))
    for _ in range(3):
        session.execute(text("UPDATE events SET title = 'Not committed' WHERE id = :e"), {"e": event.id})
        session.rollback()
    assert session.scalar(select(Event.title).where(Event.id == event.id)) != "Not committed"


def test_layout_version_moves_with_what_the_map_draws_and_not_with_sales(session, factory):
    event = factory.seated_event(rows=2, seats_per_row=4)
    before = _layout_version(session, event.id)
    buy(session, event, factory.user(), seats=factory.seat_ids(event)[:2])
    assert _layout_version(session, event.id) == before  # selling changes no geometry
    tier = factory.tier(event)
    admin = factory.user(is_admin=True)
    admin_events.update_tier(session, actor_id=admin.id, event_id=event.id, tier_id=tier.id, name="Front",
                             price_minor=tier.price_minor, colour=tier.colour)
    session.commit()
    renamed = _layout_version(session, event.id)
    assert renamed > before
    events.generate_section(session, event, events.SectionSpec("Balcony", 1, 3, 0, 5, ((0, 0, tier),)))
    session.commit()
    assert _layout_version(session, event.id) > renamed


def test_the_cached_map_shows_a_renamed_tier_and_new_seats_at_once(client, session, factory, buyer):
    event = factory.seated_event(rows=1, seats_per_row=3)
    tier = factory.tier(event)
    first = client.get(f"/events/{event.id}").get_data(as_text=True)
    assert first.count('name="seat"') == 3 and "Stalls, row A, seat 1, Stalls," in first
    admin = factory.user(is_admin=True)
    admin_events.update_tier(session, actor_id=admin.id, event_id=event.id, tier_id=tier.id, name="Front",
                             price_minor=9900, colour=tier.colour)
    events.generate_section(session, event, events.SectionSpec("Balcony", 1, 2, 0, 3, ((0, 0, tier),)))
    session.commit()
    second = client.get(f"/events/{event.id}").get_data(as_text=True)
    assert second.count('name="seat"') == 5
    assert "Stalls, row A, seat 1, Front, €99.00" in second and ", Stalls, €" not in second


def test_the_event_snapshot_follows_every_edit_of_the_event_and_its_tiers(client, session, factory):
    from webapp.services.selling import catalog

    event = factory.ga_event(capacity=3, title="Early Title")
    tier = factory.tier(event)
    assert "Early Title" in client.get(f"/events/{event.id}").get_data(as_text=True)
    snapshot = catalog.event_snapshot(session, event.id)
    assert catalog.event_snapshot(session, event.id) is snapshot  # unchanged rows: the same snapshot
    with pytest.raises(AttributeError):
        snapshot.title = "shared between requests, so read-only"
    session.execute(text("UPDATE events SET title = 'Late Title' WHERE id = :e"), {"e": event.id})
    session.execute(text("UPDATE tiers SET price_minor = 1234 WHERE id = :t"), {"t": tier.id})
    session.commit()
    page = client.get(f"/events/{event.id}").get_data(as_text=True)
    assert "Late Title" in page and "Early Title" not in page and "€12.34" in page
    session.execute(text("UPDATE events SET status = 'draft' WHERE id = :e"), {"e": event.id})
    session.commit()
    assert client.get(f"/events/{event.id}").status_code == 404  # a draft is hidden at once


def test_the_cached_map_draws_each_buyers_live_state(client, session, factory, buyer):
    user, token = buyer
    event = factory.seated_event(rows=1, seats_per_row=4)
    seats = factory.seat_ids(event)
    reserve_seats(session, user_id=factory.user().id, event_id=event.id, unit_ids=[seats[0]])
    session.execute(text("UPDATE units SET status = 'blocked' WHERE id = :s"), {"s": seats[3]})
    session.commit()
    client.post(f"/events/{event.id}/reserve", data={"seat": [str(seats[1])]}, headers={**HX, "X-CSRFToken": token})
    page = client.get(f"/events/{event.id}?seat={seats[2]}").get_data(as_text=True)

    def seat(i):
        return re.search(rf'<label class="seat (\w+)[^>]*><input[^>]*value="{seats[i]}"([^>]*)>', page)

    assert seat(0).group(1) == "taken" and "disabled" in seat(0).group(2)
    assert seat(1).group(1) == "mine" and "held by you" in seat(1).group(0)
    assert seat(2).group(1) == "available" and " checked" in seat(2).group(2)
    assert seat(3).group(1) == "blocked" and "not for sale" in seat(3).group(0)
    # The same cached hall, drawn for someone else: nothing of this buyer's shows.
    with client.application.app_context():
        other = client.application.test_client().get(f"/events/{event.id}").get_data(as_text=True)
    # (The map's words for every state, data-words, are the same for everyone: only the seats are read.)
    other_seats = "".join(re.findall(r'<label class="seat [^>]*>.*?</label>', other))
    assert other_seats.count("<label") == 4
    assert "held by you" not in other_seats and " checked" not in other_seats
    assert session.scalar(select(Unit.status).where(Unit.id == seats[1])) == UnitStatus.HELD


def test_a_poll_checks_the_session_in_its_own_statement(client, session, factory, buyer):
    """The map poll reads the cookie's session version with the clock: an ended session polls as anonymous."""
    from webapp import session_user

    user, token = buyer
    event = factory.seated_event(rows=1, seats_per_row=2)
    signed_in = client.get(f"/events/{event.id}/seat-status", headers=HX)
    assert signed_in.headers["ETag"].endswith(f'-u{user.id}"')
    session_user.end_all_sessions(session, user.id)  # logged out on another device
    session.commit()
    url = f"/events/{event.id}/seat-status"
    with statements(client.application) as seen:
        ended = client.get(url, headers={**HX, "If-None-Match": signed_in.headers["ETag"]})
    assert ended.status_code == 200 and ended.headers["ETag"].endswith('-u0"')
    assert "held by you" not in ended.get_data(as_text=True)
    assert "session_version" in seen[0] and "inventory_clock" in seen[0]


def test_a_reserve_from_an_ended_session_holds_nothing(client, session, factory, buyer):
    """The reserve statement checks the cookie's session version itself (TB401)."""
    from webapp import session_user

    user, token = buyer
    event = factory.ga_event(capacity=5)
    url, field = f"/events/{event.id}/reserve", f"qty-{factory.tier(event).id}"
    session_user.end_all_sessions(session, user.id)
    session.commit()
    response = client.post(url, data={field: "1"}, headers={**HX, "X-CSRFToken": token})
    assert response.status_code == 204 and "/login" in response.headers["HX-Redirect"]
    assert session.scalar(select(func.count()).select_from(Hold)) == 0


def test_the_price_held_is_the_price_paid(client, session, factory, buyer, gateway):
    """A tier repriced during a hold changes neither the hold nor its tickets."""
    from tests.support import GOOD
    from webapp.models import Order
    from webapp.services.money import checkout

    user, token = buyer
    event = factory.ga_event(capacity=5, price_minor=5000)
    tier = factory.tier(event)
    hold = reserve_general(session, user_id=user.id, event_id=event.id, quantities={tier.id: 2})
    session.commit()
    assert hold.unit_prices == [5000, 5000] and hold.total_minor == 10000
    admin = factory.user(is_admin=True)
    admin_events.update_tier(session, actor_id=admin.id, event_id=event.id, tier_id=tier.id, name=tier.name,
                             price_minor=9900, colour=tier.colour)
    session.commit()
    page = client.get(f"/holds/{hold.id}").get_data(as_text=True)
    assert "€50.00" in page and "€99.00" not in page
    result = checkout.pay(session, gateway, hold_id=hold.id, user_id=user.id, idempotency_key="k" * 24, card=GOOD)
    order = session.get(Order, result.order_id)
    assert order.total_minor == 10000 == sum(t.price_minor for t in order.tickets)
    assert check_event(session, event.id) == []


def test_the_in_process_rate_limit_counters_limit_expire_and_start_no_thread_per_hit(monkeypatch):
    import threading

    from limits import parse
    from limits.storage import storage_from_string
    from limits.strategies import FixedWindowRateLimiter

    from webapp.extensions import WorkerMemoryStorage

    storage = storage_from_string("worker-memory://")
    assert isinstance(storage, WorkerMemoryStorage)
    limiter = FixedWindowRateLimiter(storage)
    two_a_second = parse("2 per second")
    started = []
    monkeypatch.setattr(threading.Thread, "start", lambda self: started.append(self))
    assert limiter.hit(two_a_second, "buyer:1") and limiter.hit(two_a_second, "buyer:1")
    assert not limiter.hit(two_a_second, "buyer:1")  # the third in the same second is refused
    assert limiter.hit(two_a_second, "buyer:2")  # per key
    assert started == []
    storage.expirations["buyer:1"] = 0  # its window is over
    storage._next_sweep = 0
    assert limiter.hit(two_a_second, "buyer:3")  # the inline sweep runs and drops the stale counter
    assert "buyer:1" not in storage.storage


def test_the_countdown_is_one_statement_that_also_checks_the_session(client, session, factory, buyer):
    from webapp import session_user

    user, token = buyer
    event = factory.ga_event(capacity=3)
    hold = reserve_general(session, user_id=user.id, event_id=event.id,
                                     quantities={factory.tier(event).id: 1})
    session.commit()
    url = f"/holds/{hold.id}/countdown"
    with statements(client.application) as seen:
        answer = client.get(url, headers=HX)
    assert answer.status_code == 200 and len(seen) == 1 and "session_version" in seen[0], seen
    # While the hold is live it reads the clock only: no lines, prices or codes.
    assert "json_agg(json_build_object" not in seen[0] and "Your tickets are held for" in answer.get_data(as_text=True)
    session_user.end_all_sessions(session, user.id)  # logged out on another device
    session.commit()
    ended = client.get(url, headers=HX)
    assert ended.status_code in (302, 401) or "HX-Redirect" in ended.headers
    assert "login" in (ended.headers.get("Location", "") + ended.headers.get("HX-Redirect", ""))
    other = factory.user()
    login(client, other.email)
    assert client.get(url, headers=HX).status_code == 404  # someone else's hold cannot be probed


def test_the_hold_and_order_pages_are_one_statement_with_the_session_check_and_the_banner(
        client, session, factory, buyer, gateway):
    user, token = buyer
    event = factory.ga_event(capacity=3)
    order = buy(session, event, user, gateway=gateway)
    hold = reserve_general(session, user_id=user.id, event_id=event.id,
                                     quantities={factory.tier(event).id: 1})
    session.commit()
    for url in (f"/holds/{hold.id}", f"/orders/{order.id}"):
        with statements(client.application) as seen:
            page = client.get(url)
        assert page.status_code == 200 and "Hot Path" in page.get_data(as_text=True)  # the header's name
        assert len(seen) == 1 and "AS offers" in seen[0], (url, seen)


def test_a_commit_marks_the_request_as_committed_with_no_listener_on_the_engine(app, database_url, factory):
    """The stale-connection retry must never run a view twice after a COMMIT went out (database.py):
    an ORM session's, an `engine.begin()` block's (the payment gateway's) and an autocommit write mark
    the request; an autocommit read does not. The mark needs no engine event, whose dispatch every
    statement of every request would pay."""
    from flask import g

    from config import TestConfig
    from webapp import create_app

    # The app's own engine listeners (the tests' ownership guard listens on every engine, from the class).
    fresh = create_app({"SQLALCHEMY_DATABASE_URI": database_url}, config_class=TestConfig)
    with fresh.app_context():
        dispatch = db.engine.dispatch
        assert [name for name in dispatch._event_names if getattr(dispatch, name).listeners] == []
        db.engine.dispose()

    def committed(work) -> bool:
        with app.test_request_context():
            work()
            marked = bool(g.get("_db_committed"))
            db.session.remove()
            return marked

    def read_alone():
        with single_statement() as connection:
            connection.execute(text("SELECT 1"))

    def write_alone():
        with single_statement(writes=True) as connection:
            connection.execute(text("SELECT 1"))

    def session_read():
        db.session.execute(text("SELECT 1"))

    def session_commit():
        db.session.execute(text("SELECT 1"))
        db.session.commit()

    def core_block():
        with db.engine.begin() as connection:
            connection.execute(text("SELECT 1"))

    assert not committed(read_alone)
    assert not committed(session_read)
    assert committed(write_alone)
    assert committed(session_commit)
    assert committed(core_block)


def test_the_limiters_request_pass_runs_only_for_a_blueprint_with_a_limit(database_url, factory, session,
                                                                          monkeypatch):
    """The API's blueprint limit still counts every API request; a shop request, which no default or
    blueprint limit covers, leaves the limits' store alone (its decorated limits check for themselves)."""
    from tests.support import rate_limited_client
    from webapp.extensions import limiter
    from webapp.services.people import api_tokens

    event = factory.event(title="Limits")
    user = factory.user()
    secret = api_tokens.create(session, user_id=user.id, is_admin=False, name="t", scope="buyer").secret
    session.commit()
    with rate_limited_client(database_url, API_RATE_LIMIT="2 per minute") as limited:
        hits: list[tuple] = []
        real_hit = limiter.limiter.hit
        monkeypatch.setattr(limiter.limiter, "hit", lambda item, *key, **kw: hits.append(key) or real_hit(
            item, *key, **kw))
        for _ in range(3):
            assert limited.get(f"/events/{event.id}").status_code == 200
        assert hits == []
        answers = [limited.get("/api/v1/orders", headers={"Authorization": f"Bearer {secret}"}) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert len(hits) == 3
