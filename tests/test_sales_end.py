"""Sales stop at the event's sale end (by default its start), by the database clock;
a hold made before the end may still be paid within its own window."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from tests.support import GOOD, admin_client, login, reserve_general, reserve_seats
from tests.support import make_gateway as gateway
from webapp.models import Order, OrderStatus
from webapp.services.errors import SalesClosed
from webapp.services.money import checkout


def _set(session, event, column: str, sql: str) -> None:
    # Moved by the database's own clock, so no app-host clock is involved.
    session.execute(text(f"UPDATE events SET {column} = {sql} WHERE id = :id"), {"id": event.id})
    session.commit()
    session.expire_all()


def test_an_event_edited_to_start_in_the_past_stops_selling(client, factory, session):
    event = factory.ga_event(capacity=5)
    tier = factory.tier(event)
    buyer = factory.user()
    _set(session, event, "starts_at", "now() - interval '1 minute'")
    with pytest.raises(SalesClosed):
        reserve_general(session, user_id=buyer.id, event_id=event.id, quantities={tier.id: 1})
    session.rollback()
    token = login(client, buyer.email)
    answer = client.post(f"/events/{event.id}/reserve", data={f"qty-{tier.id}": "1"},
                         headers={"HX-Request": "true", "X-CSRFToken": token})
    assert answer.status_code == 409 and "Sales for this event have ended" in answer.get_data(as_text=True)


def test_a_sale_end_before_the_start_stops_seats_too(factory, session):
    event = factory.seated_event(rows=1, seats_per_row=4)
    buyer = factory.user()
    _set(session, event, "sales_end_at", "now() - interval '1 second'")
    with pytest.raises(SalesClosed):
        reserve_seats(session, user_id=buyer.id, event_id=event.id, unit_ids=factory.seat_ids(event)[:1])
    session.rollback()
    _set(session, event, "sales_end_at", "now() + interval '1 hour'")
    hold = reserve_seats(session, user_id=buyer.id, event_id=event.id, unit_ids=factory.seat_ids(event)[:1])
    assert hold.id


def test_a_hold_made_before_the_end_may_be_paid_after_it(factory, session):
    event = factory.ga_event(capacity=5)
    buyer = factory.user()
    hold = reserve_general(session, user_id=buyer.id, event_id=event.id,
                                     quantities={factory.tier(event).id: 2})
    session.commit()
    _set(session, event, "sales_end_at", "now() - interval '1 second'")
    result = checkout.pay(session, gateway(), hold_id=hold.id, user_id=buyer.id,
                          idempotency_key=secrets.token_urlsafe(24), card=GOOD)
    assert session.get(Order, result.order_id).status == OrderStatus.CONFIRMED


def test_admins_set_the_sale_end_on_the_event_form(client, factory, session):
    client, admin, token = admin_client(client, factory)
    event = factory.ga_event()
    start = datetime.now(timezone.utc) + timedelta(days=30)
    end = start - timedelta(days=1)
    answer = client.post(f"/admin/events/{event.id}/edit", headers={"X-CSRFToken": token},
                         data={"title": "Gig", "venue": "Hall", "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
                               "sales_end_at": end.strftime("%Y-%m-%dT%H:%M"), "hold_minutes": "8",
                               "per_order_limit": "8", "offer_hours": "12"})
    assert answer.status_code in (200, 204, 303), answer.get_data(as_text=True)[:300]
    session.expire_all()
    assert session.get(type(event), event.id).sales_end_at == end.replace(second=0, microsecond=0)


def test_a_ticket_freed_after_the_sale_end_is_not_offered_to_the_waitlist(factory, session):
    from tests.support import buy, cancel
    from webapp.models import Hold, HoldKind, WaitlistStatus
    from webapp.services.invariants import check_event

    event = factory.ga_event(capacity=1)
    order = buy(session, event, factory.user())
    entry = factory.waitlist_entry(event)
    _set(session, event, "sales_end_at", "now()")  # just after the order was made
    cancel(session, gateway(), session.get(Order, order.id))
    session.expire_all()
    assert session.scalars(text("SELECT count(*) FROM holds WHERE kind = 'offer'")).one() == 0
    assert entry.status == WaitlistStatus.WAITING  # still in line, offered nothing
    assert not session.query(Hold).filter_by(event_id=event.id, kind=HoldKind.OFFER).count()
    assert check_event(session, event.id) == []
