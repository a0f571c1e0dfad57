"""Errors answer with a clear message and the right status; logs are JSON lines; CLI commands work."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, func, select, text

from config import TestConfig
from tests.support import csrf_token, login, reserve_general
from webapp import create_app
from webapp.models import Event, Hold, HoldStatus, Unit


def test_unknown_page_is_a_clear_404_page(client):
    response = client.get("/events/999999")
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "We could not find that page." in body and "<html" in body
    assert "Traceback" not in body


def test_htmx_errors_are_partials_swapped_into_the_flash_region(client):
    response = client.get("/events/999999", headers={"HX-Request": "true"})
    assert response.status_code == 404
    assert response.headers["HX-Retarget"] == "#flash"
    body = response.get_data(as_text=True)
    assert "<html" not in body and 'role="alert"' in body


def test_post_without_csrf_token_is_refused(client, factory):
    event = factory.ga_event(capacity=5)
    user = factory.user()
    login(client, user.email)
    response = client.post(f"/events/{event.id}/reserve", data={f"qty-{factory.tier(event).id}": "1"})
    assert response.status_code == 400
    assert "Reload the page" in response.get_data(as_text=True)


def test_wrong_method_is_405_not_500(client):
    assert client.delete("/").status_code == 405


@pytest.mark.parametrize("value, status, message", [
    ("abc", 400, "whole numbers"),
    ("-2", 400, "cannot be negative"),
    ("0", 400, "Choose how many"),
    ("99", 400, "at most 8"),
    ("3", 409, "Only 2 left"),
])
def test_bad_quantities_get_a_clear_message(client, factory, value, status, message):
    event = factory.ga_event(capacity=2)
    user = factory.user()
    login(client, user.email)
    token = csrf_token(client, f"/events/{event.id}")
    response = client.post(f"/events/{event.id}/reserve", data={f"qty-{factory.tier(event).id}": value},
                           headers={"X-CSRFToken": token})
    assert response.status_code == status
    assert message in response.get_data(as_text=True)


def test_anonymous_reserve_goes_to_login(client, factory):
    event = factory.ga_event(capacity=2)
    token = csrf_token(client, f"/events/{event.id}")
    response = client.post(f"/events/{event.id}/reserve", data={"csrf_token": token})
    assert response.status_code in (302, 303) and "/login" in response.headers["Location"]


def test_unexpected_failure_is_a_500_page_without_traceback(database_url):
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url}, config_class=TestConfig)

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internal detail")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "Something went wrong" in body
    assert "secret internal detail" not in body and "Traceback" not in body


def test_lock_wait_overload_becomes_503_with_retry_after(database_url, factory):
    """A seat row locked elsewhere longer than lock_timeout: a quick 503, not a pile-up."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "DB_LOCK_TIMEOUT_MS": 200}, config_class=TestConfig)
    event = factory.seated_event(rows=1, seats_per_row=3)
    seat = factory.seat_ids(event)[0]
    user = factory.user()
    client = app.test_client()
    login(client, user.email)
    token = csrf_token(client, f"/events/{event.id}")

    blocker = create_engine(database_url).connect()
    txn = blocker.begin()
    blocker.execute(text("SELECT id FROM units WHERE id = :u FOR UPDATE"), {"u": seat})
    try:
        response = client.post(f"/events/{event.id}/reserve", data={"seat": str(seat)},
                               headers={"X-CSRFToken": token})
    finally:
        txn.rollback()
        blocker.close()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert "busy" in response.get_data(as_text=True).lower()


def test_logs_are_json_lines_with_request_id_and_booking_context(database_url, factory, capfd):
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "LOG_LEVEL": "INFO"}, config_class=TestConfig)
    event = factory.ga_event(capacity=5)
    user = factory.user()
    client = app.test_client()
    login(client, user.email)
    token = csrf_token(client, f"/events/{event.id}")
    capfd.readouterr()
    response = client.post(f"/events/{event.id}/reserve", data={f"qty-{factory.tier(event).id}": "2"},
                           headers={"X-CSRFToken": token, "X-Request-ID": "test-request-0001"})
    assert response.status_code == 303
    assert response.headers["X-Request-ID"] == "test-request-0001"
    records = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    booking = next(r for r in records if r["message"] == "hold.created")
    assert booking["request_id"] == "test-request-0001"
    assert booking["user_id"] == user.id and booking["event_id"] == event.id
    access = next(r for r in records if r["message"] == "request")
    assert access["status"] == 303 and access["request_id"] == "test-request-0001"
    # A made-up request id that could inject into logs is replaced.
    client.get("/", headers={"X-Request-ID": "forged id <script>"})
    assert "forged id" not in capfd.readouterr().err


def test_check_invariants_command(app, factory, session):
    event = factory.ga_event(capacity=3)
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["check-invariants", str(event.id)])
    assert ok.exit_code == 0 and f"event {event.id}: ok" in ok.output
    session.execute(text("UPDATE units SET status = 'sold' WHERE id = :u"), {"u": factory.seat_ids(event)[0]})
    session.commit()
    bad = runner.invoke(args=["check-invariants"])
    assert bad.exit_code == 1 and "sold unit without exactly one valid ticket" in bad.output


def test_seed_demo_builds_the_four_demo_events(app, session):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert "Demo admin: admin@example.com" in result.output
    titles = session.scalars(select(Event.title)).all()
    assert len(titles) == 4
    hall = session.scalar(select(Event).where(Event.title.like("%Mahler%")))
    seats = session.scalar(select(func.count()).where(Unit.event_id == hall.id))
    assert 950 <= seats <= 1100 and len(hall.tiers) == 3
    stadium = session.scalar(select(Event).where(Event.title.like("Cup Final%")))
    assert session.scalar(select(func.count()).where(Unit.event_id == stadium.id)) >= 40_000
    spaces = session.scalars(select(Unit.id).where(Unit.event_id == stadium.id, Unit.wheelchair)).all()
    companions = session.scalars(select(Unit.companion_for).where(Unit.event_id == stadium.id,
                                                                  Unit.companion_for.is_not(None))).all()
    assert len(spaces) >= 4 and sorted(companions) == sorted(spaces)  # every wheelchair space has its companion
    again = runner.invoke(args=["seed-demo", "--if-empty"])
    assert "already present" in again.output
    for event_id in session.scalars(select(Event.id)):
        assert runner.invoke(args=["check-invariants", str(event_id)]).exit_code == 0


def test_sweep_once_expires_lapsed_holds(app, factory, session):

    event = factory.ga_event(capacity=4)
    user = factory.user()
    hold = reserve_general(session, user_id=user.id, event_id=event.id,
                                     quantities={factory.tier(event).id: 2})
    session.commit()
    hold_id = hold.id
    session.execute(text("UPDATE holds SET expires_at = now() - interval '1 second' WHERE id = :h"), {"h": hold_id})
    session.commit()
    result = app.test_cli_runner().invoke(args=["sweep", "--once"])
    assert result.exit_code == 0, result.output
    assert session.get(Hold, hold_id).status == HoldStatus.EXPIRED


def test_create_admin_command(app, session):
    from webapp.models import User

    runner = app.test_cli_runner()
    weak = runner.invoke(args=["create-admin", "boss@example.com", "--password", "short"])
    assert weak.exit_code != 0 and "at least 12" in weak.output
    result = runner.invoke(args=["create-admin", "Boss@Example.com", "--password", "a-long-enough-pass"])
    assert result.exit_code == 0, result.output
    assert session.scalar(select(User).where(User.email == "boss@example.com")).is_admin
