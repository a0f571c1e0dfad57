"""The waiting room follows the shop: it lets fewer in at once while the people it let in queue.

The window's rule alone (halve what is in use over the target, grow by
half under half of it while in use, never past the cap or under the
least), the admission pass keeping it on the room row from the delays the
app processes report, each process's report (what it counts, when it
writes and when it stays silent), and the room as it was with the setting
off.
"""
from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.test_waiting_room_scale import admit, room, start_sale
from webapp.models import ShopDelay
from webapp.overload import ShopDelay as ShopDelayRecorder
from webapp.services.waiting import waiting_room
from webapp.services.waiting.waiting_room import outflow


@pytest.mark.parametrize("window, delay, in_use, cap, expected", [
    (40, 250, 40, None, 20),     # over the target: half of what is in use
    (40, 250, 12, None, 6),      # ... of what is in use, not of the window
    (8, 900, 8, None, outflow.MIN_WINDOW),  # never under the least
    (40, 30, 40, 300, 50),       # under half the target and in use: grows by a quarter
    (8, 30, 8, 300, 8 + outflow.MIN_WINDOW),  # ... by the least at least
    (250, 30, 250, 300, 300),    # ... up to the cap
    (40, 30, 40, None, 50),      # no cap: grows while in use
    (40, 30, 10, 300, 40),       # not in use: a quiet room does not grow a window it does not need
    (40, 70, 40, 300, 40),       # between half the target and the target: kept
])
def test_the_window_halves_over_the_target_and_grows_under_half_of_it(window, delay, in_use, cap, expected):
    assert outflow.next_window(window, delay_ms=delay, target=100, in_use=in_use, arrived=in_use, cap=cap) == expected


def test_the_window_grows_only_with_the_people_let_in_who_reached_the_shop():
    # 40 let in, the shop quiet: all of them shopping grows it; 40 let in but 10 arrived (the rest still
    # on their way to the shop, loading nothing yet) keeps it, or they would all arrive at once.
    assert outflow.next_window(40, delay_ms=30, target=100, in_use=40, arrived=40, cap=300) == 50
    assert outflow.next_window(40, delay_ms=30, target=100, in_use=40, arrived=10, cap=300) == 40
    # A cut halves what is let in, arrived or not.
    assert outflow.next_window(40, delay_ms=250, target=100, in_use=40, arrived=10, cap=300) == 20


def _admit(session, event_id: int) -> list[int]:
    return admit(session, event_id).admitted


def _line(session, factory, people: int, *, cap: int | None = 300, rate: int | None = None):
    """An event whose room (these rules) has `people` accounts waiting, and whose sale has just started."""
    event = factory.ga_event(capacity=500)
    room(session, event, cap=cap, rate=rate)
    for user in factory.users(people):
        waiting_room.join(session, event.id, user_id=user.id)
    session.commit()
    start_sale(session, event.id)
    return event


def _report(session, delay_ms: float, source: str = "host-a:1") -> None:
    session.execute(text("INSERT INTO shop_delays (source, delay_ms, measured_at) VALUES (:s, :d, now())"
                         " ON CONFLICT (source) DO UPDATE SET delay_ms = :d, measured_at = now()"),
                    {"s": source, "d": delay_ms})
    session.commit()


def _hold_passed(session, event_id: int) -> None:
    """The window's last change was HOLD_SECONDS ago: the next pass may change it again."""
    session.execute(text("UPDATE waiting_rooms SET outflow_changed_at = outflow_changed_at"
                         " - make_interval(secs => :s) WHERE event_id = :e"),
                    {"s": outflow.HOLD_SECONDS, "e": event_id})
    session.commit()


def _window(session, event_id: int) -> int | None:
    return session.execute(text("SELECT outflow_window FROM waiting_rooms WHERE event_id = :e"),
                           {"e": event_id}).scalar_one()


def _collect_passes(session, event_id: int) -> None:
    """Every place let in had its pass collected by its page, as the status view records it."""
    for entry_id in session.scalars(text("SELECT id FROM waiting_room_entries WHERE event_id = :e"
                                         " AND status = 'admitted'"), {"e": event_id}):
        waiting_room.pass_collected(entry_id)


def _finish_all(session, event_id: int) -> None:
    session.execute(text("UPDATE waiting_room_entries SET pass_until = now() - interval '1 second'"
                         " WHERE event_id = :e AND status = 'admitted'"), {"e": event_id})
    session.commit()


def test_a_room_that_follows_the_shop_starts_small_and_lets_fewer_in_while_the_shop_queues(app, session, factory,
                                                                                           monkeypatch):
    monkeypatch.setitem(app.config, "WAITING_ROOM_SHOP_DELAY_MS", 100)
    event = _line(session, factory, 200)

    # The sale starts: the first pass lets in the first window, not the whole cap.
    first = _admit(session, event.id)
    assert len(first) == outflow.FIRST_WINDOW and _window(session, event.id) == outflow.FIRST_WINDOW

    # The shop is quick and the window is in use; but the people let in have not reached the shop yet:
    # the window waits HOLD_SECONDS after its last change for that change to show.
    _report(session, 10)
    assert _admit(session, event.id) == [] and _window(session, event.id) == outflow.FIRST_WINDOW
    # Past the hold, while the people let in have not collected their passes, it still does not grow.
    _hold_passed(session, event.id)
    assert _admit(session, event.id) == [] and _window(session, event.id) == outflow.FIRST_WINDOW
    # They reach the shop (their pages collect their passes): it grows by a quarter, and the pass fills it.
    _collect_passes(session, event.id)
    _hold_passed(session, event.id)
    assert len(_admit(session, event.id)) == 25 - 20 and _window(session, event.id) == 25

    # One process reports its requests queuing 400 ms: the window halves what is in use, nobody more is let
    # in; and it is not cut again before the cut can show.
    _report(session, 400, source="host-b:7")
    _hold_passed(session, event.id)
    assert _admit(session, event.id) == [] and _window(session, event.id) == 12
    assert _admit(session, event.id) == [] and _window(session, event.id) == 12

    # The people let in finish; the queue is gone. Reports older than REPORT_SECONDS count no more.
    _finish_all(session, event.id)
    session.execute(text("UPDATE shop_delays SET measured_at = now() - make_interval(secs => :s)"),
                    {"s": outflow.REPORT_SECONDS + 1})
    session.commit()
    _hold_passed(session, event.id)
    third = _admit(session, event.id)
    # Under half the target, but nothing was in use after the retirements: the window stays; it fills.
    assert len(third) == 12 and _window(session, event.id) == 12

    # Everyone let in so far came in number order.
    numbers = session.execute(text("SELECT number FROM waiting_room_entries WHERE event_id = :e"
                                   " AND status <> 'waiting' ORDER BY admitted_at, number"), {"e": event.id}).scalars()
    assert list(numbers) == list(range(1, 20 + 5 + 12 + 1))


def test_with_the_setting_off_the_rules_alone_decide_and_no_window_is_kept(app, session, factory, monkeypatch):
    monkeypatch.setitem(app.config, "WAITING_ROOM_SHOP_DELAY_MS", 0)
    event = _line(session, factory, 120)
    _report(session, 5000)
    assert len(_admit(session, event.id)) == 120
    assert _window(session, event.id) is None


def test_a_rate_only_room_follows_the_shop_too(app, session, factory, monkeypatch):
    monkeypatch.setitem(app.config, "WAITING_ROOM_SHOP_DELAY_MS", 100)
    event = _line(session, factory, 150, cap=None, rate=6000)
    assert len(_admit(session, event.id)) == outflow.FIRST_WINDOW
    _report(session, 1000)
    _hold_passed(session, event.id)
    assert _admit(session, event.id) == [] and _window(session, event.id) == outflow.FIRST_WINDOW // 2


def test_a_process_reports_the_shops_queueing_and_stays_silent_while_it_is_quick(app, session):
    recorder = ShopDelayRecorder(app, 100, thread=False)
    recorder.source = "test-host:1"

    def row() -> ShopDelay | None:
        session.expire_all()
        return session.get(ShopDelay, "test-host:1")

    # Quick requests: under a quarter of the target, nothing is written.
    for waited in (0.001, 0.004, 0.010):
        recorder.observe(waited)
    assert recorder.report_due() is None and row() is None

    # The shop queues: the mean of the second is written.
    for waited in (0.2, 0.4):
        recorder.observe(waited)
    assert recorder.report_due() == pytest.approx(300)
    assert row().delay_ms == pytest.approx(300)

    # Quick again (or idle): the recovery is written once, then nothing.
    assert recorder.report_due() == 0.0 and row().delay_ms == 0.0
    assert recorder.report_due() is None


def test_the_crowds_requests_are_not_the_shops_delay(database_url, session, factory):
    import time

    from config import TestConfig
    from webapp import create_app
    from webapp.extensions import db

    measured = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "WAITING_ROOM_SHOP_DELAY_MS": 100},
                          config_class=TestConfig)
    recorder = measured.extensions["shop_delay"]
    recorder._start_thread = False  # this test reads the counts; nothing is reported
    event = factory.ga_event(capacity=5)
    room(session, event, cap=300)
    client = measured.test_client()

    def half_a_second_ago(**more) -> dict:
        return {"X-Request-Start": f"t={time.time() - 0.5:.3f}", **more}

    # The crowd's own asks queue by design: not counted.
    client.get(f"/events/{event.id}/waiting-room/status", headers=half_a_second_ago(**{"HX-Request": "true"}))
    client.get(f"/events/{event.id}/waiting-room", headers=half_a_second_ago())
    assert recorder._count == 0
    # The shop's requests, and a page whose number came up asking for its pass, are.
    client.get(f"/events/{event.id}", headers=half_a_second_ago())
    client.get(f"/events/{event.id}/waiting-room/status?turn=1", headers=half_a_second_ago(**{"HX-Request": "true"}))
    assert recorder._count == 2 and recorder._total / 2 == pytest.approx(0.5, abs=0.1)
    # A request without the proxy's stamp says nothing.
    client.get(f"/events/{event.id}")
    assert recorder._count == 2
    with measured.app_context():
        db.engine.dispose()


def test_the_admin_panel_shows_the_shops_queue_and_the_window(client, app, session, factory, monkeypatch):
    from tests.support import admin_client

    event = factory.ga_event(capacity=50)
    room(session, event, cap=300)
    admin, _, _ = admin_client(client, factory)
    live = f"/admin/events/{event.id}/waiting-room/live"
    # Off: not shown.
    assert 'data-stat="shop-delay"' not in admin.get(live, headers={"HX-Request": "true"}).get_data(as_text=True)

    monkeypatch.setitem(app.config, "WAITING_ROOM_SHOP_DELAY_MS", 100)
    for user in factory.users(30):
        waiting_room.join(session, event.id, user_id=user.id)
    session.commit()
    start_sale(session, event.id)
    _admit(session, event.id)
    _report(session, 1234.4)
    shown = admin.get(live, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'data-stat="shop-delay">1,234 ms<' in shown
    assert f"at most {outflow.FIRST_WINDOW} shopping at once while the room follows it" in shown


def test_a_page_collecting_its_pass_marks_its_place_as_in_the_shop_once(client, session, factory):
    from tests.support import sign_in

    event = _line(session, factory, 2, cap=1)
    _admit(session, event.id)
    first, second = session.execute(text("SELECT id, user_id FROM waiting_room_entries WHERE event_id = :e"
                                         " ORDER BY number"), {"e": event.id}).all()
    sign_in(client, first.user_id)
    # The page, on this device without the place's cookie, finds the place by account and gives the pass.
    answer = client.get(f"/events/{event.id}/waiting-room")
    assert answer.status_code == 200 and "It is your turn" in answer.get_data(as_text=True)
    seen = session.execute(text("SELECT id, turn_seen_at FROM waiting_room_entries WHERE event_id = :e"),
                           {"e": event.id}).all()
    marks = {row.id: row.turn_seen_at for row in seen}
    assert marks[first.id] is not None and marks[second.id] is None  # the one still waiting has no pass
    # Its status asked with the turn (the page's own ask), the mark stays the first one.
    asked = client.get(f"/events/{event.id}/waiting-room/status?turn=1", headers={"HX-Request": "true"})
    assert "It is your turn" in asked.get_data(as_text=True)
    again = session.execute(text("SELECT turn_seen_at FROM waiting_room_entries WHERE id = :w"),
                            {"w": first.id}).scalar_one()
    assert again == marks[first.id]
