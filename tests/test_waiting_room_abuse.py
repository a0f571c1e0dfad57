"""The waiting room against a client that cheats: many places, the lottery, the proof of work, the limits,
the silent endless wait, and the API's reserve with a pass."""
from __future__ import annotations

import pytest
from sqlalchemy import select, text

from tests.test_waiting_room import admit, buyer, join_over_http, room, start_sale, take_turn
from webapp.models import Event, Hold
from webapp.services.people import api_tokens
from webapp.services.waiting import waiting_room

HX = {"HX-Request": "true"}


@pytest.fixture
def guarded(session, factory):
    """An event on sale behind its waiting room."""
    event = factory.ga_event(capacity=20)
    room(session, event, cap=5)
    start_sale(session, event.id)
    return session.get(Event, event.id)


def api_reserve(client, event, secret: str, **headers: str):
    return client.post(f"/api/v1/events/{event.id}/holds", json={"quantities": [{"tier_id": event.tiers[0].id,
                                                                                  "quantity": 1}]},
                       headers={"Authorization": f"Bearer {secret}", **headers})


def test_the_api_reserves_for_an_admitted_buyer_with_their_pass(client, app, session, factory, guarded):
    user = buyer(client, factory)
    join_over_http(client, guarded.id)
    admit(session, guarded.id)
    room_pass = take_turn(client, guarded.id)
    secret = api_tokens.create(session, user_id=user.id, is_admin=False, name="script", scope="buyer").secret
    session.commit()
    script = app.test_client()

    refused = api_reserve(script, guarded, secret)
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    assert "waiting room" in refused.get_json()["detail"]
    forged = api_reserve(script, guarded, secret, **{"Waiting-Room-Pass": room_pass[:-3] + "xyz"})
    assert forged.status_code == 403 and "not valid" in forged.get_json()["detail"]
    assert session.scalar(text("SELECT count(*) FROM holds")) == 0

    made = api_reserve(script, guarded, secret, **{"Waiting-Room-Pass": room_pass})
    assert made.status_code == 201, made.get_json()
    assert session.scalars(select(Hold).where(Hold.user_id == user.id)).one().id == made.get_json()["id"]
    # The pass's cookie works as the header does (a client that keeps the page's cookies).
    script.set_cookie(waiting_room.pass_cookie_name(guarded.id), room_pass)
    assert api_reserve(script, guarded, secret).status_code == 201


def test_another_accounts_pass_buys_nothing_through_the_api(client, app, session, factory, guarded):
    buyer(client, factory)
    join_over_http(client, guarded.id)
    admit(session, guarded.id)
    room_pass = take_turn(client, guarded.id)
    thief = factory.user()
    secret = api_tokens.create(session, user_id=thief.id, is_admin=False, name="script", scope="buyer").secret
    session.commit()
    refused = api_reserve(app.test_client(), guarded, secret, **{"Waiting-Room-Pass": room_pass})
    assert refused.status_code == 403 and "another account" in refused.get_json()["detail"]
    assert session.scalar(text("SELECT count(*) FROM holds")) == 0


def test_the_api_document_names_the_pass_header(client):
    document = client.get("/api/openapi.json").get_json()
    reserve = document["paths"]["/api/v1/events/{event_id}/holds"]["post"]
    header = next(p for p in reserve["parameters"] if p["in"] == "header")
    assert header["name"] == "Waiting-Room-Pass" and "403" in reserve["responses"]
