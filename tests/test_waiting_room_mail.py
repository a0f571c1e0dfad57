"""The waiting room's "e-mail me when it is my turn": asked on the page (an account's address, or a visitor's),
mailed through the outbox by the pass that admits the place, with a signed link that lets its owner in from
another device, for that one place and only until its admission ends."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text

from tests.smtp_support import SmtpServer
from tests.support import sign_in
from tests.test_mail import deliver_all
from tests.test_waiting_room import HX, admit, buyer, call, join_over_http, reserve_one, room, start_sale, token_of
from webapp.models import OutboxMessage, WaitingRoomEntry
from webapp.services.messaging import links
from webapp.services.waiting import waiting_room

LINK = re.compile(r"http://[^\s\"<>]+/waiting-room/turn/[A-Za-z0-9_.\-]+")


@pytest.fixture
def smtp(app, monkeypatch):
    server = SmtpServer().start()
    monkeypatch.setitem(app.config, "SMTP_URL", server.url)
    yield server
    server.stop()


def _ask(client, event_id, **form):
    return call(client, "post", f"/events/{event_id}/waiting-room/mail", data=form,
                headers={**HX, "X-CSRFToken": token_of(client)})


def _mail_link(smtp) -> str:
    assert len(smtp.received) == 1, [m["Subject"] for m in smtp.received]
    body = smtp.received[0].get_body(preferencelist=("plain",)).get_content()
    return LINK.search(body).group(0)


def _other_device(app) -> FlaskClient:
    return app.test_client()


def test_an_account_asks_and_gets_a_mail_whose_link_lets_it_in_on_another_device(app, client, session, factory,
                                                                                  smtp):
    event = factory.ga_event(capacity=20, title="Hot Gig")
    room(session, event, cap=1)
    first, second = buyer(client, factory), None
    join_over_http(client, event.id)
    asked = _ask(client, event.id)
    assert asked.status_code == 200 and f"We will e-mail <strong>{first.email}</strong>" in asked.get_data(True)
    page = call(client, "get", f"/events/{event.id}/waiting-room").get_data(as_text=True)
    assert 'id="waiting-room-mail"' in page and first.email in page  # kept: the page says so from now on

    # Someone else is ahead: they are let in first; nobody is mailed yet.
    other_client = _other_device(app)
    second = buyer(other_client, factory)
    join_over_http(other_client, event.id)
    start_sale(session, event.id)
    session.execute(text("UPDATE waiting_room_entries SET line_key = CASE WHEN user_id = :u THEN 1 ELSE 2 END"
                         " WHERE event_id = :e"), {"u": second.id, "e": event.id})
    session.commit()
    admit(session, event.id)
    deliver_all(session)
    assert smtp.received == []
    # The one ahead leaves: the next pass admits our buyer and mails them, once.
    leaving = session.scalars(select(WaitingRoomEntry).where(WaitingRoomEntry.user_id == second.id)).one()
    waiting_room.leave(session, leaving.id)
    session.commit()
    admit(session, event.id)
    admit(session, event.id)
    deliver_all(session)
    link = _mail_link(smtp)
    mail = smtp.received[0]
    assert mail["To"] == first.email and mail["Subject"] == "It is your turn: Hot Gig"
    assert "Choose your tickets" in mail.get_body(preferencelist=("html",)).get_content()

    # A phone: not logged in, the link asks for the login first, then lets the account in.
    phone = _other_device(app)
    path = link.split("://", 1)[1].split("/", 1)[1]
    opened = call(phone, "get", "/" + path)
    assert opened.status_code in (302, 303) and "/login" in opened.headers["Location"]
    sign_in(phone, first.id)
    opened = call(phone, "get", "/" + path)
    assert opened.status_code in (302, 303) and opened.headers["Location"].endswith(f"/events/{event.id}/waiting-room")
    page = call(phone, "get", f"/events/{event.id}/waiting-room")
    assert "It is your turn" in page.get_data(as_text=True)
    assert phone.get_cookie(waiting_room.pass_cookie_name(event.id)) is not None
    assert reserve_one(phone, event).status_code == 204

    # Another account with the same link gets nothing.
    thief = _other_device(app)
    sign_in(thief, factory.user().id)
    refused = call(thief, "get", "/" + path)
    assert refused.status_code == 403 and thief.get_cookie(waiting_room.pass_cookie_name(event.id)) is None


def test_a_visitor_gives_an_address_and_the_link_carries_the_place_to_log_in_with(app, client, session, factory,
                                                                                  smtp):
    event = factory.ga_event(capacity=20)
    room(session, event, cap=5)
    join_over_http(client, event.id)
    bad = _ask(client, event.id, email="not-an-address")
    assert bad.status_code == 422 and 'id="waiting-room-mail-error"' in bad.get_data(as_text=True)
    assert session.scalars(select(WaitingRoomEntry.notify_email)).one() is None
    assert _ask(client, event.id, email="Visitor@Example.com ").status_code == 200
    start_sale(session, event.id)
    admit(session, event.id)
    deliver_all(session)
    link = _mail_link(smtp)
    assert smtp.received[0]["To"] == "Visitor@Example.com"
    assert "log in (or sign up) first" in smtp.received[0].get_body(preferencelist=("plain",)).get_content()

    laptop = _other_device(app)
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    assert call(laptop, "get", path).status_code in (302, 303)
    body = call(laptop, "get", f"/events/{event.id}/waiting-room").get_data(as_text=True)
    assert "Log in to continue" in body  # the visitor's place, on this device
    user = buyer(laptop, factory)
    body = call(laptop, "get", f"/events/{event.id}/waiting-room").get_data(as_text=True)
    assert "It is your turn" in body
    session.expire_all()
    assert session.scalars(select(WaitingRoomEntry.user_id)).one() == user.id
    assert reserve_one(laptop, event).status_code == 204


def test_the_link_is_for_one_place_and_runs_out_with_its_turn(app, client, session, factory):
    event = factory.ga_event(capacity=20)
    other_event = factory.ga_event(capacity=20, title="Other")
    room(session, event, cap=5)
    user = buyer(client, factory)
    join_over_http(client, event.id)
    start_sale(session, event.id)
    admit(session, event.id)
    entry = session.scalars(select(WaitingRoomEntry)).one()
    with app.test_request_context():
        good = links.turn_token(entry_id=entry.id, event_id=event.id, until=entry.pass_until)
        other = links.turn_token(entry_id=entry.id, event_id=other_event.id, until=entry.pass_until)
        late = links.turn_token(entry_id=entry.id, event_id=event.id,
                                until=datetime.now(timezone.utc) - timedelta(seconds=1))
    device = _other_device(app)
    sign_in(device, user.id)
    for token in (good[:-2] + "xx", late):
        assert call(device, "get", f"/events/{event.id}/waiting-room/turn/{token}").status_code == 410
    assert call(device, "get", f"/events/{other_event.id}/waiting-room/turn/{other}").status_code in (404, 410)
    assert call(device, "get", f"/events/{event.id}/waiting-room/turn/{good}").status_code in (302, 303)
    # The admission ends (by the database's clock): the same link runs out with it.
    session.execute(text("UPDATE waiting_room_entries SET pass_until = now() - interval '1 second'"))
    session.commit()
    assert call(device, "get", f"/events/{event.id}/waiting-room/turn/{good}").status_code == 410


def test_a_place_that_did_not_ask_is_not_mailed_and_asking_without_a_place_says_so(client, session, factory,
                                                                                    smtp):
    event = factory.ga_event(capacity=20)
    room(session, event, cap=5)
    buyer(client, factory)
    refused = _ask(client, event.id)
    assert refused.status_code == 422 and "no place waiting" in refused.get_data(as_text=True)
    join_over_http(client, event.id)
    start_sale(session, event.id)
    admit(session, event.id)
    deliver_all(session)
    assert smtp.received == []
    assert session.scalar(select(OutboxMessage.id).where(OutboxMessage.template == "waiting_room_turn")) is None


def test_the_mail_partial_is_the_element_named_after_it(app):
    source = app.jinja_env.loader.get_source(app.jinja_env, "shop/_waiting_room_mail.html")[0]
    assert 'id="waiting-room-mail"' in source


def test_the_endless_wait_shows_the_form_and_is_answered_as_a_place_is_keeping_nothing(app, session, factory):
    from tests.test_waiting_room_abuse import join_with, rules

    event = factory.ga_event(capacity=20)
    room(session, event, starts_in=-1, cap=1)
    waiting_room.control(session, session.get(type(event), event.id), paused=True)
    session.commit()
    real, flagged = app.test_client(), app.test_client()
    answers = [join_with(real, event.id, headers=HX)]
    rules(session, event.id, flagged_wait_forever=True)
    flagged.set_cookie(f"tb_place_{event.id}", "forged")
    answers.append(join_with(flagged, event.id, headers=HX))
    for answer in answers:
        assert 'id="waiting-room-mail-address"' in answer.get_data(as_text=True)
    asked = [_ask(c, event.id, email=f"{name}@example.com") for c, name in ((real, "real"), (flagged, "flagged"))]
    assert [a.status_code for a in asked] == [200, 200]
    assert asked[0].get_data(as_text=True).replace("real", "X") == asked[1].get_data(as_text=True).replace(
        "flagged", "X")
    assert session.scalars(select(WaitingRoomEntry.notify_email)).all() == ["real@example.com"]
