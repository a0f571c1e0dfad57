"""Helpers for the admin tests: a paid order in one call, an admin client."""
from __future__ import annotations

import secrets

from webapp.extensions import db
from webapp.models import Order
from webapp.services import checkout, inventory
from webapp.services.gateway import Card, SimulatedGateway

from tests.factories import csrf_token, login

GOOD = Card("4242424242424242", 12, 2099, "123")


def gateway() -> SimulatedGateway:
    return SimulatedGateway(db.engine, slow_seconds=0.2)


def buy(session, event, user, *, seats: list[int] | None = None, quantities: dict[int, int] | None = None) -> Order:
    """Reserve and pay through the real services; returns the confirmed order."""
    if seats is not None:
        hold = inventory.reserve_seats(session, user_id=user.id, event_id=event.id, unit_ids=seats)
    else:
        hold = inventory.reserve_general(session, user_id=user.id, event_id=event.id, quantities=quantities)
    session.commit()
    result = checkout.pay(session, gateway(), hold_id=hold.id, user_id=user.id,
                          idempotency_key=secrets.token_urlsafe(24), card=GOOD)
    return session.get(Order, result.order_id)


def admin_client(client, factory):
    """A test client logged in as a fresh admin; returns (client, admin, csrf token)."""
    admin = factory.user(name="Ada Admin", is_admin=True)
    login(client, admin.email)
    return client, admin, csrf_token(client, "/admin/")
