"""Races through the API: real threads, real connections, the invariant checker at the end."""
from __future__ import annotations

from sqlalchemy import text

from tests.support import assert_consistent, race
from webapp.services.people import api_tokens

GOOD_CARD = {"number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123", "name": "Ada Lovelace"}


def _tokens(session, users) -> list[str]:
    secrets = [api_tokens.create(session, user_id=u.id, is_admin=False, name="rush", scope="buyer").secret
               for u in users]
    session.commit()
    return secrets


def test_200_api_reserves_for_100_places_sell_exactly_100(app, session, factory):
    event = factory.ga_event(capacity=100)
    tier = factory.tier(event)
    tokens = _tokens(session, factory.users(200))

    def reserve(i):
        return app.test_client().post(f"/api/v1/events/{event.id}/holds",
                                      json={"quantities": [{"tier_id": tier.id, "quantity": 1}]},
                                      headers={"Authorization": f"Bearer {tokens[i]}"})

    answers = race(app, 200, reserve)
    won = [(i, r.get_json()["id"]) for i, r in enumerate(answers) if r.status_code == 201]
    lost = [r for r in answers if r.status_code != 201]
    assert len(won) == 100
    for r in lost:
        assert r.status_code == 409 and r.mimetype == "application/problem+json"
        body = r.get_json()
        assert body["detail"] == f"{tier.name} is sold out. You can join the waiting list." and body["left"] == 0

    def pay(n):
        i, hold_id = won[n]
        return app.test_client().post(f"/api/v1/holds/{hold_id}/payment", json={"card": GOOD_CARD},
                                      headers={"Authorization": f"Bearer {tokens[i]}",
                                               "Idempotency-Key": f"rush-payment-{i:04d}"})

    paid = race(app, 100, pay)
    assert [r.status_code for r in paid] == [201] * 100
    sold = session.execute(text("SELECT count(*) FROM units WHERE tier_id = :t AND status = 'sold'"),
                           {"t": tier.id}).scalar()
    assert sold == 100
    assert session.execute(text("SELECT count(*) FROM orders WHERE event_id = :e"), {"e": event.id}).scalar() == 100
    assert_consistent(session, event.id)


def test_20_pays_with_one_idempotency_key_make_one_order_and_one_charge(app, session, factory):
    event = factory.ga_event(capacity=10)
    buyer = factory.user()
    hold = factory.hold(event, buyer, quantities={event.tiers[0].id: 2})
    token = _tokens(session, [buyer])[0]

    def pay(i):
        return app.test_client().post(f"/api/v1/holds/{hold.id}/payment", json={"card": GOOD_CARD},
                                      headers={"Authorization": f"Bearer {token}",
                                               "Idempotency-Key": "one-key-for-all-twenty"})

    answers = race(app, 20, pay)
    statuses = sorted({r.status_code for r in answers})
    assert set(statuses) <= {201, 409}, [r.get_data(as_text=True)[:200] for r in answers]
    orders = {r.get_json()["id"] for r in answers if r.status_code == 201}
    assert len(orders) == 1
    for r in answers:
        if r.status_code == 409:
            assert r.get_json()["detail"] == "A payment for this reservation is already being processed."
    counts = session.execute(text(
        "SELECT (SELECT count(*) FROM orders WHERE hold_id = :h), (SELECT count(*) FROM payment_attempts"
        " WHERE hold_id = :h), (SELECT count(*) FROM gateway_charges)"), {"h": hold.id}).one()
    assert tuple(counts) == (1, 1, 1)
    # A retry after the rush gets the same order back.
    again = pay(0)
    assert again.status_code == 201 and again.get_json()["id"] in orders
    assert_consistent(session, event.id)
