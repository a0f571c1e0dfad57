"""Helpers for the admin tests: a paid order in one call, an admin client."""
from __future__ import annotations

import secrets

from sqlalchemy import text

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


def sell_in_bulk(session, event, tier, per_order: int = 10) -> None:
    """Sell every place of a GA tier, in bulk SQL, in the shape checkout leaves behind.

    One buyer per order of `per_order` tickets: holds converted, payments
    approved, orders confirmed, tickets valid, units sold (the invariant
    checker passes). For export and dashboard tests at 50,000 tickets.
    """
    params = {"e": event.id, "t": tier.id, "n": tier.capacity // per_order, "k": per_order, "p": tier.price_minor}
    session.execute(text("SET LOCAL statement_timeout = 0"))
    for statement in (
        "INSERT INTO users (email, password_hash, name) SELECT 'att' || g || '-' || :e || '@example.com', 'x',"
        " 'Attendee ' || g FROM generate_series(1, :n) g",
        "WITH u AS (SELECT id, (row_number() OVER (ORDER BY id) - 1) / :k AS grp FROM units WHERE tier_id = :t)"
        " INSERT INTO holds (event_id, user_id, kind, status, unit_ids, total_minor, currency, expires_at, ended_at)"
        " SELECT :e, (SELECT min(id) FROM users WHERE email LIKE 'att%-' || :e || '@example.com') + grp,"
        " 'purchase', 'converted', array_agg(id ORDER BY id), :p * :k, 'EUR', now(), now() FROM u GROUP BY grp",
        "INSERT INTO payment_attempts (event_id, hold_id, user_id, idempotency_key, amount_minor, currency,"
        " card_last4, status) SELECT event_id, id, user_id, 'bulk-' || id, total_minor, 'EUR', '4242', 'approved'"
        " FROM holds WHERE event_id = :e",
        "INSERT INTO orders (event_id, user_id, hold_id, payment_attempt_id, status, total_minor, currency)"
        " SELECT event_id, user_id, hold_id, id, 'confirmed', amount_minor, 'EUR' FROM payment_attempts"
        " WHERE event_id = :e",
        "INSERT INTO tickets (event_id, order_id, unit_id, tier_id, code, status, price_minor)"
        " SELECT o.event_id, o.id, uid, :t, md5(uid::text || random()::text), 'valid', :p"
        " FROM orders o JOIN holds h ON h.id = o.hold_id CROSS JOIN LATERAL unnest(h.unit_ids) AS uid"
        " WHERE o.event_id = :e",
        "UPDATE units SET status = 'sold' WHERE tier_id = :t",
    ):
        session.execute(text(statement), params)
    session.commit()
    # Fresh statistics, as autovacuum would gather them: without, the planner
    # guesses nested loops over 50,000 rows and the checker hits its timeout.
    session.execute(text("ANALYZE users, holds, payment_attempts, orders, tickets, units"))
    session.commit()
