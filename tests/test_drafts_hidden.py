"""A draft event is answered exactly as an id that does not exist, to everyone but admins: reserving on the
pages (each form, with and without htmx) and in the API cannot be used to find which ids are drafts."""
from __future__ import annotations

import pytest

from tests.support import admin_client, csrf_token, sign_in
from webapp.models import EventStatus

UNKNOWN = 999_999


@pytest.fixture
def draft(factory):
    return factory.ga_event(capacity=12, status=EventStatus.DRAFT, title="Secret Reunion Tour")


def _same_answer(first, second, draft_id):
    assert first.status_code == second.status_code == 404
    assert first.get_data(as_text=True).replace(f"/events/{draft_id}", "/events/ID") == \
        second.get_data(as_text=True).replace(f"/events/{UNKNOWN}", "/events/ID")
    assert first.headers.get("Content-Type") == second.headers.get("Content-Type")


@pytest.mark.parametrize("path, form", [
    ("reserve", {"qty-1": "1"}),
    ("reserve", {"seat": "1"}),
    ("reserve", {}),
    ("best-available", {"tier": "1", "quantity": "2"}),
])
@pytest.mark.parametrize("htmx", [False, True])
def test_reserving_a_draft_is_answered_as_an_unknown_event(client, factory, draft, path, form, htmx):
    sign_in(client, factory.user().id)
    token = csrf_token(client, "/")
    headers = {"X-CSRFToken": token, **({"HX-Request": "true"} if htmx else {})}
    answers = [client.post(f"/events/{event_id}/{path}", data=form, headers=headers)
               for event_id in (draft.id, UNKNOWN)]
    _same_answer(*answers, draft.id)


def test_the_api_answers_a_draft_as_an_unknown_event(client, session, factory, draft):
    from webapp.services.people import api_tokens

    secret = api_tokens.create(session, user_id=factory.user().id, is_admin=False, name="t", scope="buyer").secret
    session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    tier = factory.tier(draft)
    for method, path, body in (
        ("post", "/holds", {"quantities": [{"tier_id": tier.id, "quantity": 1}]}),
        ("post", "/holds", {"seats": [1]}),
        ("get", "", None),
        ("get", "/seats", None),
        ("get", "?access=SOMECODE", None),
    ):
        answers = [getattr(client, method)(f"/api/v1/events/{event_id}{path}", headers=headers, json=body)
                   for event_id in (draft.id, UNKNOWN)]
        _same_answer(*answers, draft.id)


def test_an_admin_still_previews_a_draft_and_is_told_it_is_not_on_sale(client, factory, draft):
    client, _, _ = admin_client(client, factory)
    preview = client.get(f"/events/{draft.id}")
    assert preview.status_code == 200 and "Secret Reunion Tour" in preview.get_data(as_text=True)
    token = csrf_token(client, f"/events/{draft.id}")
    tier = factory.tier(draft)
    refused = client.post(f"/events/{draft.id}/reserve", data={f"qty-{tier.id}": "1"}, headers={"X-CSRFToken": token})
    assert refused.status_code == 409 and "not on sale" in refused.get_data(as_text=True)
    unknown = client.post(f"/events/{UNKNOWN}/reserve", data={f"qty-{tier.id}": "1"}, headers={"X-CSRFToken": token})
    assert unknown.status_code == 404
