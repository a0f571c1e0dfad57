"""The door offline, server side: the signed code list (hashes only), and syncing a device's queue: the first
entry by device time stands, a second is flagged and both devices learn it; replays are not flagged; a list not
ours is refused; bad input changes nothing."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from tests.support import buy, login
from webapp.models import DoorDuplicate, Ticket

T0 = datetime(2026, 12, 7, 19, 0, tzinfo=timezone.utc)


@pytest.fixture
def door(client, session, factory):
    event = factory.ga_event(capacity=20)
    tickets = [buy(session, event, factory.user()).tickets[0] for _ in range(3)]
    staff = factory.user(is_admin=True)
    token = login(client, staff.email)
    codes = client.get(f"/door/events/{event.id}/codes.json")
    assert codes.status_code == 200 and codes.headers["Cache-Control"] == "private, no-store"
    return event, tickets, token, codes.get_json()


def _sync(client, event, token, listing, device, scans):
    return client.post(f"/door/events/{event.id}/sync", headers={"X-CSRFToken": token}, json={
        "device": device, "issued_at": listing["issued_at"], "digest": listing["digest"],
        "signature": listing["signature"],
        "scans": [{"id": f"{device}-{n}", "code": code, "at": at.isoformat()} for n, (code, at) in enumerate(scans)]})


def test_the_list_holds_hashes_of_valid_codes_only(door):
    from webapp.services.admin.door_sync import code_hash

    _, tickets, _, listing = door
    assert sorted(listing["valid"]) == sorted(code_hash(t.code) for t in tickets)
    assert listing["in"] == [] and not any(t.code in str(listing) for t in tickets)


def test_offline_check_ins_sync_and_the_first_by_device_time_stands(client, session, door):
    event, tickets, token, listing = door
    a, b, c = (t.code for t in tickets)
    first = _sync(client, event, token, listing, "gate-a", [(a, T0), (b, T0 + timedelta(seconds=5))])
    assert [r["outcome"] for r in first.get_json()["results"]] == ["valid", "valid"]
    # Gate B was offline too: it let b in earlier by its clock (so it stands), a later (flagged), and c.
    second = _sync(client, event, token, listing, "gate-b",
                   [(b, T0 + timedelta(seconds=2)), (a, T0 + timedelta(seconds=9)), (c, T0 + timedelta(seconds=3))])
    outcomes = {r["id"]: r["outcome"] for r in second.get_json()["results"]}
    assert outcomes == {"gate-b-0": "valid", "gate-b-1": "duplicate", "gate-b-2": "valid"}
    session.expire_all()
    by_code = {t.code: t for t in session.scalars(select(Ticket).where(Ticket.event_id == event.id))}
    assert (by_code[b].door_device, by_code[b].door_device_at) == ("gate-b", T0 + timedelta(seconds=2))
    assert (by_code[a].door_device, by_code[a].door_device_at) == ("gate-a", T0)
    assert all(t.checked_in_at is not None for t in by_code.values())
    flags = {(d.device, d.first_device) for d in session.scalars(select(DoorDuplicate))}
    assert flags == {("gate-b", "gate-a"), ("gate-a", "gate-b")}
    # Both devices learn of both double entries at their next sync; a replay of the same scans flags nothing new.
    again = _sync(client, event, token, listing, "gate-a", [(a, T0), (b, T0 + timedelta(seconds=5))]).get_json()
    assert len(again["flags"]) == 2 and [r["outcome"] for r in again["results"]] == ["valid", "duplicate"]
    assert session.scalar(select(func.count()).select_from(DoorDuplicate)) == 2
    page = client.get(f"/admin/events/{event.id}/check-in").get_data(as_text=True)
    assert "Let in twice at offline gates" in page and "gate-b" in page


@pytest.mark.parametrize("change, message", [
    ({"signature": "0" * 64}, "did not issue"),
    ({"digest": "f" * 64}, "did not issue"),
    ({"scans": "lots"}, "as a list"),
    ({"scans": [{"id": "x", "code": "y"}]}, "an id, a code and the time"),
    ({"scans": [{"id": "x", "code": "y", "at": "yesterday"}]}, "not an ISO 8601 time"),
    ({"scans": [{"id": "x", "code": "y", "at": "2026-12-07T19:00:00"}]}, "needs its zone"),
    ({"device": ""}, "Name the device"),
])
def test_bad_syncs_are_refused_and_change_nothing(client, session, door, change, message):
    event, tickets, token, listing = door
    body = {"device": "gate-a", "issued_at": listing["issued_at"], "digest": listing["digest"],
            "signature": listing["signature"], "scans": [{"id": "1", "code": tickets[0].code, "at": T0.isoformat()}]}
    response = client.post(f"/door/events/{event.id}/sync", headers={"X-CSRFToken": token}, json={**body, **change})
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Ticket).where(Ticket.checked_in_at.is_not(None))) == 0


def test_someone_not_at_the_door_gets_404_for_the_list_and_the_sync(client, factory, door):
    event, _, _, _ = door
    client.post("/logout", headers={"X-CSRFToken": door[2]})
    token = login(client, factory.user().email)
    assert client.get(f"/door/events/{event.id}/codes.json").status_code == 404
    assert client.post(f"/door/events/{event.id}/sync", headers={"X-CSRFToken": token}, json={}).status_code == 404


def test_the_door_is_installable(client):
    manifest = client.get("/door/manifest.webmanifest")
    assert manifest.mimetype == "application/manifest+json" and manifest.get_json()["display"] == "standalone"
    worker = client.get("/door/sw.js")
    assert worker.mimetype == "text/javascript" and "/static/door_offline.js" in worker.get_data(as_text=True)
    assert "/static/door.js" in worker.get_data(as_text=True)
