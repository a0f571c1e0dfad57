"""Discount codes on the hold page, access codes that unlock hidden tiers.

The race: 50 buyers apply a 10-use code and pay at the same instant; exactly
10 orders carry it, because a use is counted and taken under the code row's
lock (codes.py). Releases, expiries and cancellations give uses back.
"""
from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text

from tests.support import (
    GOOD,
    assert_consistent,
    cancel,
    csrf_token,
    expire_now,
    make_gateway,
    race,
    reserve_general,
    sign_in,
)
from webapp.extensions import db
from webapp.models import Hold, HoldStatus, Order, Ticket, Unit
from webapp.services.admin import codes as code_admin
from webapp.services.errors import AccessCodeNeeded, InvalidRequest
from webapp.services.money import checkout
from webapp.services.selling import codes, events, inventory
from webapp.services.selling.catalog import public_event
from webapp.services.waiting import waitlist


def _tiers(event):
    return [t.id for t in sorted(event.tiers, key=lambda t: t.sort_order)]


def _discount(session, event, code="SAVE", **terms) -> codes.Code:
    code_row = code_admin.create_code(session, event_id=event.id, raw_code=code, actor_id=None,
                                      spec=code_admin.CodeSpec(kind="discount", **terms))
    session.commit()
    return code_row


def _hold(factory, event, user=None, **quantities_by_index) -> Hold:
    tiers = _tiers(event)
    wanted = {tiers[int(k[1:])]: n for k, n in quantities_by_index.items()} or {tiers[0]: 1}
    return factory.hold(event, user, quantities=wanted)


def _pay(session, hold: Hold, gateway=None) -> Order:
    result = checkout.pay(session, gateway or make_gateway(), hold_id=hold.id, user_id=hold.user_id,
                          idempotency_key=secrets.token_urlsafe(24), card=GOOD)
    return session.get(Order, result.order_id)


def _apply(session, hold: Hold, code: str) -> Hold:
    hold = codes.apply_discount(session, hold_id=hold.id, user_id=hold.user_id, raw_code=code)
    session.commit()
    return hold


# ---------------------------------------------------------------------------
# What a code takes off, and what the order records
# ---------------------------------------------------------------------------

def test_percent_off_rounds_per_ticket_and_the_order_adds_up(session, factory):
    event = factory.ga_event(capacity=20, tiers=2, price_minor=1999)  # 19.99 and 29.99
    _discount(session, event, "TENOFF", percent_off=15)
    hold = _hold(factory, event, t0=2, t1=1)
    hold = _apply(session, hold, " tenoff ")  # any case, spaces around
    # 15% of 19.99 is 2.9985 -> 3.00; of 29.99 is 4.4985 -> 4.50 (half up, per ticket)
    assert hold.discount_minor == 300 + 300 + 450
    assert hold.total_minor == 1999 * 2 + 2999 - 1050
    order = _pay(session, hold)
    tickets = session.scalars(select(Ticket).where(Ticket.order_id == order.id)).all()
    assert sorted(t.price_minor for t in tickets) == [1699, 1699, 2549]
    assert order.total_minor == sum(t.price_minor for t in tickets) == hold.total_minor
    assert order.code_id is not None and order.discount_minor == 1050
    assert_consistent(session, event.id)


def test_fixed_amount_off_each_ticket_never_below_zero_and_only_for_its_tiers(session, factory):
    event = factory.ga_event(capacity=20, tiers=2, price_minor=400)  # 4.00 and 14.00
    first, second = _tiers(event)
    _discount(session, event, "FIVER", amount_off_minor=500, tier_ids=(first,))
    hold = _apply(session, _hold(factory, event, t0=1, t1=1), "FIVER")
    assert hold.unit_discounts is not None and sorted(hold.unit_discounts) == [0, 400]
    assert hold.total_minor == 1400
    order = _pay(session, hold)
    assert order.total_minor == 1400
    assert_consistent(session, event.id)


def test_a_whole_order_free_is_confirmed_at_zero(session, factory):
    event = factory.ga_event(capacity=5)
    _discount(session, event, "GUESTLIST", percent_off=100)
    order = _pay(session, _apply(session, _hold(factory, event), "GUESTLIST"))
    assert order.total_minor == 0 and order.status.value == "confirmed"
    assert_consistent(session, event.id)


@pytest.mark.parametrize("terms, held, message", [
    ({"tier_ids": "second"}, {"t0": 1}, "does not apply to these tickets"),
    ({"min_quantity": 3}, {"t0": 2}, "needs at least 3 eligible tickets"),
    # Outside its window a code reads as one that does not exist (tests/test_wrong_codes.py).
    ({"valid_from": "+1 day"}, {"t0": 1}, "can't be used for this event"),
    ({"valid_from": "-2 days", "valid_until": "-1 day"}, {"t0": 1}, "can't be used for this event"),
])
def test_refusals_say_why(session, factory, terms, held, message):
    event = factory.ga_event(capacity=20, tiers=2)
    now = datetime.now(timezone.utc)
    resolved = {}
    for key, value in terms.items():
        if key == "tier_ids":
            resolved[key] = (_tiers(event)[1],)
        elif isinstance(value, str):
            sign, days = value[0], int(value[1:].split()[0])
            delta = timedelta(days=days)
            resolved[key] = now + delta if sign == "+" else now - delta
        else:
            resolved[key] = value
    _discount(session, event, "RULES", percent_off=10, **resolved)
    hold = _hold(factory, event, **held)
    with pytest.raises(codes.CodeRefused, match=message):
        _apply(session, hold, "RULES")
    session.rollback()
    assert session.get(Hold, hold.id).code_id is None


def test_unknown_inactive_and_malformed_codes(session, factory):
    event = factory.ga_event(capacity=5)
    code = _discount(session, event, "GONE", percent_off=10)
    hold = _hold(factory, event)
    with pytest.raises(codes.CodeRefused, match="The code NOPE can't be used"):
        _apply(session, hold, "nope")
    session.rollback()
    with pytest.raises(InvalidRequest):
        _apply(session, hold, "<script>")
    session.rollback()
    code_admin.set_active(session, event_id=event.id, code_id=code.id, active=False, actor_id=None)
    session.commit()
    with pytest.raises(codes.CodeRefused, match="The code GONE can't be used"):
        _apply(session, hold, "GONE")
    session.rollback()


def test_another_events_code_is_not_found(session, factory):
    event, other = factory.ga_event(capacity=5), factory.ga_event(capacity=5, title="Other")
    _discount(session, other, "ELSEWHERE", percent_off=50)
    with pytest.raises(codes.CodeRefused, match="can't be used"):
        _apply(session, _hold(factory, event), "ELSEWHERE")


# ---------------------------------------------------------------------------
# Uses: held with the hold, given back when it ends
# ---------------------------------------------------------------------------

def test_uses_are_held_by_live_holds_and_given_back_by_release_expiry_and_cancel(session, factory):
    event = factory.ga_event(capacity=20)
    _discount(session, event, "ONCE", percent_off=10, max_uses=1)
    first = _apply(session, _hold(factory, event), "ONCE")
    second = _hold(factory, event)
    with pytest.raises(codes.CodeRefused, match="can't be used"):  # used up, told as unknown to a stranger
        _apply(session, second, "ONCE")
    session.rollback()

    inventory.release_hold_by_id(session, hold_id=first.id, user_id=first.user_id)  # released: use back
    session.commit()
    second = _apply(session, second, "ONCE")
    expire_now(session, second.id)
    inventory.expire_holds(session, hold_ids=[second.id])  # expired by the sweep: use back
    session.commit()
    third = _apply(session, _hold(factory, event), "ONCE")
    order = _pay(session, third)
    fourth = _hold(factory, event)
    with pytest.raises(codes.CodeRefused):
        _apply(session, fourth, "ONCE")
    session.rollback()
    cancel(session, make_gateway(), order)  # refunded: use back
    _apply(session, fourth, "ONCE")
    assert_consistent(session, event.id)


def test_removing_a_code_restores_the_price_and_the_use(session, factory):
    event = factory.ga_event(capacity=5)
    _discount(session, event, "ONCE", percent_off=50, max_uses=1)
    hold = _apply(session, _hold(factory, event), "ONCE")
    assert hold.total_minor == 2500
    hold = codes.remove_discount(session, hold_id=hold.id, user_id=hold.user_id)
    session.commit()
    assert (hold.total_minor, hold.discount_minor, hold.code_id) == (5000, 0, None)
    _apply(session, _hold(factory, event), "ONCE")


def test_per_buyer_limit_counts_orders_and_holds_of_that_buyer_only(session, factory):
    event = factory.ga_event(capacity=20)
    _discount(session, event, "MEMBER", percent_off=10, per_buyer_max=1)
    buyer = factory.user()
    _pay(session, _apply(session, _hold(factory, event, buyer), "MEMBER"))
    with pytest.raises(codes.CodeUsedUp, match="once per buyer"):
        _apply(session, _hold(factory, event, buyer), "MEMBER")
    session.rollback()
    _apply(session, _hold(factory, event), "MEMBER")  # someone else may


def test_paying_a_lapsed_hold_takes_its_use_again_or_says_so(session, factory):
    event = factory.ga_event(capacity=20)
    _discount(session, event, "ONCE", percent_off=20, max_uses=1)
    late = _apply(session, _hold(factory, event), "ONCE")
    other = _hold(factory, event)
    expire_now(session, late.id)
    inventory.expire_holds(session, hold_ids=[late.id])
    session.commit()
    # The use went back when the hold lapsed, and someone else took it.
    _apply(session, other, "ONCE")
    with pytest.raises(codes.CodeRefused, match="used up.*nothing was charged"):
        _pay(session, session.get(Hold, late.id))
    session.rollback()
    assert session.get(Hold, late.id).status == HoldStatus.EXPIRED
    assert session.scalar(select(func.count()).select_from(Order)) == 0
    assert_consistent(session, event.id)


def test_a_lapsed_hold_whose_use_is_free_is_paid_at_its_discounted_price(session, factory):
    event = factory.ga_event(capacity=20)
    _discount(session, event, "ONCE", percent_off=20, max_uses=1)
    late = _apply(session, _hold(factory, event), "ONCE")
    expire_now(session, late.id)
    order = _pay(session, session.get(Hold, late.id))
    assert order.total_minor == 4000 and order.discount_minor == 1000
    assert_consistent(session, event.id)


def test_a_code_cannot_change_a_hold_while_its_payment_is_in_flight(session, factory):
    event = factory.ga_event(capacity=5)
    _discount(session, event, "LATE", percent_off=10)
    hold = _hold(factory, event)
    started = checkout.begin_payment(session, hold_id=hold.id, user_id=hold.user_id,
                                     idempotency_key=secrets.token_urlsafe(24), card=GOOD)
    session.commit()
    assert isinstance(started, checkout.StartedPayment)
    with pytest.raises(checkout.PaymentInProgress):
        _apply(session, hold, "LATE")
    session.rollback()


def test_fifty_buyers_race_for_a_ten_use_code_and_exactly_ten_orders_carry_it(app, session, factory):
    event = factory.ga_event(capacity=60, per_buyer_limit=10)
    code = _discount(session, event, "TENONLY", percent_off=25, max_uses=10)
    holds = [(h.id, h.user_id) for h in (_hold(factory, event) for _ in range(50))]
    gateway = make_gateway()

    def work(i):
        hold_id, user_id = holds[i]
        try:
            codes.apply_discount(db.session, hold_id=hold_id, user_id=user_id, raw_code="TENONLY")
            db.session.commit()
            applied = True
        except codes.CodeRefused:  # used up, in the words of an unknown code to buyers who never used it
            db.session.rollback()
            applied = False
        checkout.pay(db.session, gateway, hold_id=hold_id, user_id=user_id,
                     idempotency_key=secrets.token_urlsafe(24), card=GOOD)
        return applied

    applied = race(app, 50, work)
    session.expire_all()
    assert sum(applied) == 10
    with_code = session.scalars(select(Order).where(Order.code_id == code.id)).all()
    assert len(with_code) == 10 and all(o.total_minor == 3750 for o in with_code)
    assert session.scalar(select(func.count()).select_from(Order)) == 50
    assert_consistent(session, event.id)


def test_the_invariant_checker_catches_an_overused_code_and_a_total_that_does_not_add_up(session, factory):
    from webapp.services.invariants import check_event

    event = factory.ga_event(capacity=5)
    code = _discount(session, event, "ONCE", percent_off=10, max_uses=1)
    _pay(session, _apply(session, _hold(factory, event), "ONCE"))
    order = _pay(session, _hold(factory, event))
    # What a lost lock would leave behind: a second order carrying a one-use code.
    session.execute(text("UPDATE orders SET code_id = :c WHERE id = :o"), {"c": code.id, "o": order.id})
    session.execute(text("UPDATE tickets SET price_minor = price_minor - 1 WHERE order_id = :o"), {"o": order.id})
    session.commit()
    found = "\n".join(check_event(session, event.id))
    assert "used more times than it allows" in found
    assert "order total differs from the sum of its tickets' prices" in found


# ---------------------------------------------------------------------------
# Access codes and hidden tiers
# ---------------------------------------------------------------------------

@pytest.fixture
def presale(session, factory):
    event = factory.ga_event(capacity=10, title="Presale Night")
    hidden = events.add_general_tier(session, event, name="Fan Club", price_minor=2500, capacity=10,
                                     sort_order=5, hidden=True)
    session.commit()
    code_admin.create_code(session, event_id=event.id, raw_code="FANS", actor_id=None,
                           spec=code_admin.CodeSpec(kind="access", tier_ids=(hidden.id,)))
    session.commit()
    return event, hidden


def test_a_hidden_tier_is_refused_without_its_code_and_sold_with_it(session, factory, presale):
    event, hidden = presale
    buyer = factory.user()
    with pytest.raises(AccessCodeNeeded):
        reserve_general(session, user_id=buyer.id, event_id=event.id, quantities={hidden.id: 2})
    session.rollback()
    with pytest.raises(AccessCodeNeeded):
        reserve_general(session, user_id=buyer.id, event_id=event.id, quantities={hidden.id: 2},
                                  access=["WRONG"])
    session.rollback()
    reservation = inventory.reserve(user_id=buyer.id, event_id=event.id, quantities={hidden.id: 2},
                                        access=["FANS"])
    hold = session.get(Hold, reservation.hold_id)
    assert hold.access_code_id is not None
    order = _pay(session, hold)
    assert order.access_code_id == hold.access_code_id
    assert_consistent(session, event.id)


def test_an_access_code_outside_its_window_opens_nothing(session, factory, presale):
    event, hidden = presale
    code = session.scalars(select(codes.Code).where(codes.Code.code == "FANS")).one()
    code.valid_until = datetime.now(timezone.utc) - timedelta(minutes=1)
    code.valid_from = datetime.now(timezone.utc) - timedelta(days=1)
    session.commit()
    with pytest.raises(codes.CodeRefused, match="can't be used"):
        codes.unlock(session, event_id=event.id, raw_code="fans")
    with pytest.raises(AccessCodeNeeded):
        inventory.reserve(user_id=factory.user().id, event_id=event.id, quantities={hidden.id: 1},
                              access=["FANS"])


def test_the_public_snapshot_leaves_hidden_tiers_out_and_the_waitlist_never_waits_for_them(session, factory, presale):
    event, hidden = presale
    shown = public_event(session, event.id)
    assert hidden.id not in {t.id for t in shown.tiers} and shown.has_hidden_tiers
    assert hidden.id in {t.id for t in public_event(session, event.id, unlocked={hidden.id}).tiers}
    # Sell out the public tier: "any tier" in line then waits for the visible tiers only.
    public = _tiers(event)[0]
    factory.order(event, quantities={public: 8})
    factory.order(event, quantities={public: 2})
    entry = waitlist.join(session, user_id=factory.user().id, event_id=event.id, tier_id=None, quantity=1)
    session.commit()
    assert hidden.id not in inventory.tiers_kept_for_waitlist(session, event.id)
    with pytest.raises(InvalidRequest):
        waitlist.join(session, user_id=factory.user().id, event_id=event.id, tier_id=hidden.id, quantity=1)
    session.rollback()
    inventory.reserve(user_id=factory.user().id, event_id=event.id, quantities={hidden.id: 1}, access=["FANS"])
    assert entry.status.value == "waiting"
    assert_consistent(session, event.id)


def test_paying_a_lapsed_hidden_tier_hold_needs_its_access_code_still_valid(session, factory, presale):
    event, hidden = presale
    buyer = factory.user()
    held = inventory.reserve(user_id=buyer.id, event_id=event.id, quantities={hidden.id: 1}, access=["FANS"])
    expire_now(session, held.hold_id)
    code = session.scalars(select(codes.Code).where(codes.Code.code == "FANS")).one()
    code_admin.set_active(session, event_id=event.id, code_id=code.id, active=False, actor_id=None)
    session.commit()
    with pytest.raises(AccessCodeNeeded, match="nothing was charged"):
        _pay(session, session.get(Hold, held.hold_id))
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Order)) == 0


def test_an_access_code_unlocks_hidden_tiers_only(session, factory, presale):
    event, _ = presale
    with pytest.raises(InvalidRequest, match="not hidden"):
        code_admin.create_code(session, event_id=event.id, raw_code="OPEN", actor_id=None,
                               spec=code_admin.CodeSpec(kind="access", tier_ids=(_tiers(event)[0],)))


# ---------------------------------------------------------------------------
# The buyer's pages
# ---------------------------------------------------------------------------

def _signed_in(client, factory):
    buyer = factory.user()
    sign_in(client, buyer.id)
    return buyer


def test_hold_page_applies_a_code_in_place_and_shows_the_new_total(client, session, factory):
    event = factory.ga_event(capacity=10)
    _discount(session, event, "HALF", percent_off=50)
    buyer = _signed_in(client, factory)
    hold = _hold(factory, event, buyer, t0=2)
    page = client.get(f"/holds/{hold.id}").get_data(as_text=True)
    assert 'id="discount-form"' in page and "Pay €100.00" in page
    token = csrf_token(client, f"/holds/{hold.id}")
    headers = {"HX-Request": "true", "X-CSRFToken": token}
    wrong = client.post(f"/holds/{hold.id}/code", data={"code": "NOPE"}, headers=headers)
    assert wrong.status_code == 422 and "The code NOPE can&#39;t be used" in wrong.get_data(as_text=True)
    assert 'value="NOPE"' in wrong.get_data(as_text=True)  # kept in the field, to be corrected
    done = client.post(f"/holds/{hold.id}/code", data={"code": "half"}, headers=headers)
    body = done.get_data(as_text=True)
    assert done.status_code == 200 and "<html" not in body  # the #hold panel only
    assert "Code <strong>HALF</strong> applied" in body and "Pay €50.00" in body and "−€50.00" in body
    removed = client.post(f"/holds/{hold.id}/code/remove", headers=headers).get_data(as_text=True)
    assert "Pay €100.00" in removed


def test_without_javascript_the_code_form_posts_and_comes_back(client, session, factory):
    event = factory.ga_event(capacity=10)
    _discount(session, event, "HALF", percent_off=50)
    buyer = _signed_in(client, factory)
    hold = _hold(factory, event, buyer)
    token = csrf_token(client, f"/holds/{hold.id}")
    wrong = client.post(f"/holds/{hold.id}/code", data={"code": "NOPE", "csrf_token": token})
    assert wrong.status_code in (302, 303) and wrong.headers["Location"].endswith(f"/holds/{hold.id}")
    assert "The code NOPE can&#39;t be used" in client.get(f"/holds/{hold.id}").get_data(as_text=True)
    done = client.post(f"/holds/{hold.id}/code", data={"code": "HALF", "csrf_token": token}, follow_redirects=True)
    assert "Code applied" in done.get_data(as_text=True) and "Pay €25.00" in done.get_data(as_text=True)


def test_someone_elses_hold_is_a_404_for_codes(client, session, factory):
    event = factory.ga_event(capacity=10)
    _discount(session, event, "HALF", percent_off=50)
    hold = _hold(factory, event)
    _signed_in(client, factory)
    token = csrf_token(client)
    response = client.post(f"/holds/{hold.id}/code", data={"code": "HALF"}, headers={"X-CSRFToken": token})
    assert response.status_code == 404
    assert session.get(Hold, hold.id).code_id is None


def test_an_access_link_reveals_the_hidden_tier_and_lets_the_buyer_reserve_it(client, session, factory, presale):
    event, hidden = presale
    page = client.get(f"/events/{event.id}").get_data(as_text=True)
    assert "Fan Club" not in page and "Have an access code?" in page
    bad = client.get(f"/events/{event.id}?access=NOTIT", follow_redirects=True).get_data(as_text=True)
    assert "The code NOTIT can&#39;t be used" in bad and "Fan Club" not in bad
    shown = client.get(f"/events/{event.id}?access=fans", follow_redirects=True).get_data(as_text=True)
    assert "Code FANS accepted" in shown and f'name="qty-{hidden.id}"' in shown
    buyer = _signed_in(client, factory)
    token = csrf_token(client, f"/events/{event.id}")
    response = client.post(f"/events/{event.id}/reserve", data={f"qty-{hidden.id}": "2"},
                           headers={"X-CSRFToken": token})
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:300]
    hold = session.scalars(select(Hold).where(Hold.user_id == buyer.id)).one()
    assert hold.quantity == 2


def test_the_access_box_refuses_a_wrong_code_beside_the_field(client, session, factory, presale):
    event, _ = presale
    token = csrf_token(client, f"/events/{event.id}")
    response = client.post(f"/events/{event.id}/access", data={"code": "WRONG1"}, headers={"X-CSRFToken": token})
    assert response.status_code == 422
    assert re.search(r'id="access-error"[^>]*>The code WRONG1 can&#39;t be used', response.get_data(as_text=True))
    assert 'value="WRONG1"' in response.get_data(as_text=True)


def test_reserving_a_hidden_tier_without_a_code_gets_no_ticket(client, session, factory, presale):
    event, hidden = presale
    _signed_in(client, factory)
    token = csrf_token(client, f"/events/{event.id}")
    response = client.post(f"/events/{event.id}/reserve", data={f"qty-{hidden.id}": "1"},
                           headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert response.status_code in (400, 403)
    assert session.scalar(select(func.count()).select_from(Hold)) == 0



def test_the_api_neither_shows_nor_sells_a_hidden_tier(client, session, factory, presale):
    from webapp.services.people import api_tokens

    event, hidden = presale
    buyer = factory.user()
    secret = api_tokens.create(session, user_id=buyer.id, is_admin=False, name="test", scope="buyer").secret
    session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    detail = client.get(f"/api/v1/events/{event.id}", headers=headers).get_json()
    assert hidden.id not in [t["id"] for t in detail["tiers"]]
    listed = client.get("/api/v1/events", headers=headers).get_json()["events"]
    assert [e["capacity"] for e in listed if e["id"] == event.id] == [10]
    refused = client.post(f"/api/v1/events/{event.id}/holds", headers=headers,
                          json={"quantities": [{"tier_id": hidden.id, "quantity": 1}]})
    assert refused.status_code == 403 and "access code" in refused.get_json()["detail"]

    # With the code: listed, and sold.
    unlocked = client.get(f"/api/v1/events/{event.id}?access=fans", headers=headers).get_json()
    assert hidden.id in [t["id"] for t in unlocked["tiers"]]
    wrong = client.get(f"/api/v1/events/{event.id}?access=NOPE", headers=headers)
    assert wrong.status_code == 422 and "The code NOPE can't be used" in wrong.get_json()["detail"]
    made = client.post(f"/api/v1/events/{event.id}/holds", headers=headers,
                       json={"quantities": [{"tier_id": hidden.id, "quantity": 1}], "access_codes": ["fans"]})
    assert made.status_code == 201, made.get_json()


def test_the_api_applies_and_removes_a_discount_code(client, session, factory):
    from webapp.services.people import api_tokens

    event = factory.ga_event(capacity=10)
    _discount(session, event, "API20", percent_off=20, max_uses=1)
    buyer = factory.user()
    secret = api_tokens.create(session, user_id=buyer.id, is_admin=False, name="test", scope="buyer").secret
    session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    made = client.post(f"/api/v1/events/{event.id}/holds", headers=headers,
                       json={"quantities": [{"tier_id": _tiers(event)[0], "quantity": 2}]}).get_json()
    url = f"/api/v1/holds/{made['id']}/discount-code"
    unknown = client.put(url, headers=headers, json={"code": "NOPE"})
    assert unknown.status_code == 422 and "The code NOPE can't be used" in unknown.get_json()["detail"]
    applied = client.put(url, headers=headers, json={"code": "api20"}).get_json()
    assert (applied["total_minor"], applied["discount_code"], applied["discount_minor"]) == (8000, "API20", 2000)
    assert [line["discount_minor"] for line in applied["lines"]] == [1000, 1000]
    other = factory.hold(event, factory.user())
    with pytest.raises(codes.CodeRefused, match="can't be used"):
        _apply(session, other, "API20")  # its one use is this hold's
    session.rollback()
    removed = client.delete(url, headers=headers).get_json()
    assert (removed["total_minor"], removed["discount_code"], removed["discount_minor"]) == (10000, None, 0)
    assert client.put(f"/api/v1/holds/{other.id}/discount-code", headers=headers,
                      json={"code": "API20"}).status_code == 404  # someone else's hold


@pytest.fixture
def hidden_stalls(session, factory):
    """A hall of two seat tiers: Stalls for everyone, the Box (row B) only with the code BOXES."""
    event = factory.event(title="Opera Gala")
    stalls = events.add_seated_tier(session, event, name="Stalls", price_minor=5000)
    box = events.add_seated_tier(session, event, name="Box", price_minor=9000, sort_order=1)
    box.hidden = True
    events.generate_section(session, event, events.SectionSpec("Hall", 2, 4, 0, 0, ((0, 0, stalls), (1, 1, box))))
    session.commit()
    code_admin.create_code(session, event_id=event.id, raw_code="BOXES", actor_id=None,
                           spec=code_admin.CodeSpec(kind="access", tier_ids=(box.id,)))
    session.commit()
    box_seats = session.scalars(select(Unit.id).where(Unit.tier_id == box.id)
                                .order_by(Unit.id)).all()
    return event, box, list(box_seats)


def test_a_hidden_seat_tier_is_on_the_map_as_not_for_sale_until_its_code_unlocks_it(client, session, factory,
                                                                                     hidden_stalls):
    event, box, box_seats = hidden_stalls
    page = client.get(f"/events/{event.id}").get_data(as_text=True)
    assert "Box" not in page and "€90.00" not in page  # neither the tier, its price, nor its legend entry
    seat = re.search(rf'<label class="seat [^"]*"[^>]*><input[^>]*value="{box_seats[0]}"[^>]*>', page).group(0)
    assert "blocked" in seat and "disabled" in seat and "not for sale" in seat
    # The live poll keeps them not for sale too.
    status = client.get(f"/events/{event.id}/seat-status", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert str(box_seats[0]) in re.search(r'data-blocked="([^"]*)"', status).group(1)
    # Picking one anyway (a crafted URL) is "unavailable", not an error.
    picked = client.get(f"/events/{event.id}/selection?seat={box_seats[0]}", headers={"HX-Request": "true"})
    assert picked.status_code == 200 and "Box" not in picked.get_data(as_text=True)

    unlocked = client.get(f"/events/{event.id}?access=boxes", follow_redirects=True).get_data(as_text=True)
    seat = re.search(rf'<label class="seat [^"]*"[^>]*><input[^>]*value="{box_seats[0]}"[^>]*>', unlocked).group(0)
    assert "available" in seat and "Box" in seat and "disabled" not in seat
    buyer = factory.user()
    sign_in(client, buyer.id)
    token = csrf_token(client, f"/events/{event.id}")
    reserved = client.post(f"/events/{event.id}/reserve", data={"seat": [str(s) for s in box_seats[:2]]},
                           headers={"X-CSRFToken": token})
    assert reserved.status_code in (302, 303), reserved.get_data(as_text=True)[:300]
    assert session.scalars(select(Hold).where(Hold.user_id == buyer.id)).one().access_code_id is not None


def test_hidden_seats_are_refused_and_best_available_skips_them_without_the_code(session, factory, hidden_stalls):
    event, box, box_seats = hidden_stalls
    buyer = factory.user()
    with pytest.raises(AccessCodeNeeded):
        inventory.reserve(user_id=buyer.id, event_id=event.id, seat_ids=box_seats[:1])
    with pytest.raises(AccessCodeNeeded):
        inventory.reserve(user_id=buyer.id, event_id=event.id, best=(box.id, 2))
    held = inventory.reserve(user_id=buyer.id, event_id=event.id, best=(box.id, 2), access=["BOXES"])
    assert set(session.get(Hold, held.hold_id).unit_ids) <= set(box_seats)
    assert_consistent(session, event.id)


def test_the_apis_seat_list_hides_a_hidden_tier_as_the_map_does(client, session, factory, hidden_stalls):
    """Without its access code a hidden seat is blocked and names no tier (the map says "not for sale", no tier);
    with it, the seat is listed as the map then draws it."""
    from webapp.services.people import api_tokens

    event, box, box_seats = hidden_stalls
    buyer = factory.user()
    secret = api_tokens.create(session, user_id=buyer.id, is_admin=False, name="test", scope="buyer").secret
    session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    listed = client.get(f"/api/v1/events/{event.id}/seats", headers=headers)
    seats = {seat["id"]: seat for seat in listed.get_json()["seats"]}
    assert box.id not in {seat["tier_id"] for seat in seats.values()}
    assert all(seats[i]["tier_id"] is None and seats[i]["status"] == "blocked" for i in box_seats)
    assert all(seat["tier_id"] is not None for i, seat in seats.items() if i not in box_seats)
    unlocked = client.get(f"/api/v1/events/{event.id}/seats?access=boxes", headers=headers)
    assert unlocked.headers["ETag"] != listed.headers["ETag"]  # another representation, another tag
    seats = {seat["id"]: seat for seat in unlocked.get_json()["seats"]}
    assert all(seats[i]["tier_id"] == box.id and seats[i]["status"] == "available" for i in box_seats)
    wrong = client.get(f"/api/v1/events/{event.id}/seats?access=NOPE", headers=headers)
    assert wrong.status_code == 422 and wrong.mimetype == "application/problem+json"
