"""Helpers shared by the test modules (and e2e/), so that no test module imports another.

Fixtures live in the root `conftest.py`; plain functions live here.
"""
from __future__ import annotations

import re
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from sqlalchemy import text

from tests.factories import (
    DECLINED,
    GOOD,
    NO_FUNDS,
    PASSWORD,
    SLOW_CARD,
    Factory,
    make_gateway,
    reserve_best,
    reserve_general,
    reserve_seats,
)
from webapp.extensions import db
from webapp.models import Order, User
from webapp.services.invariants import check_event
from webapp.services.money import checkout

__all__ = [
    "DECLINED", "GOOD", "NO_FUNDS", "PASSWORD", "SLOW_CARD", "admin_client", "assert_consistent", "buy", "cancel",
    "csrf_token", "expire_now", "free_port", "login", "make_gateway", "race", "rate_limited_client", "reserve_best",
    "reserve_general", "reserve_seats", "sell_in_bulk", "sign_in",
]


def buy(session, event, user, *, seats: list[int] | None = None, quantities: dict[int, int] | None = None,
        gateway=None) -> Order:
    """Reserve and pay through the real services (one place of the first tier by default); the confirmed order."""
    return Factory(session).order(event, user, seats=seats, quantities=quantities, gateway=gateway)


def cancel(session, gateway, order: Order) -> None:
    """The buyer cancels their order (refunded); committed."""
    checkout.cancel_order(session, gateway, order_id=order.id, user_id=order.user_id, reason="test")
    session.commit()


def expire_now(session, hold_id: int) -> None:
    """Make a hold's time run out now, by the database clock; the sweep has not seen it."""
    session.execute(text("UPDATE holds SET expires_at = now() WHERE id = :h"), {"h": hold_id})
    session.commit()


def race(app, n: int, work):
    """Run work(i) in n threads, released together; each has its own app context and session."""
    barrier = threading.Barrier(n)

    def run(i):
        with app.app_context():
            barrier.wait()
            try:
                return work(i)
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def assert_consistent(session, event_id):
    session.expire_all()
    found = check_event(session, event_id)
    assert found == [], found


def login(client, email: str, password: str = PASSWORD):
    """Log the test client in through the real form; returns the CSRF token issued at login."""
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    # Login rotates the CSRF token: the one from the login form is dead now.
    page = client.get("/").get_data(as_text=True)
    return re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)


def sign_in(client, user_id: int) -> None:
    """A signed-in session cookie for `user_id`, as login makes it, without the password round."""
    from flask import session

    from webapp import session_user
    from webapp.extensions import db

    with client.application.test_request_context():
        session_user.remember(db.session.get(User, user_id))
        state = dict(session)
    with client.session_transaction() as s:
        s.update(state, _user_id=str(user_id), _fresh=True)


def csrf_token(client, path: str = "/") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)


def admin_client(client, factory) -> tuple[object, User, str]:
    """A test client logged in as a fresh admin; returns (client, admin, csrf token)."""
    admin = factory.user(name="Ada Admin", is_admin=True)
    login(client, admin.email)
    return client, admin, csrf_token(client, "/admin/")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sell_in_bulk(session, event, tier, per_order: int = 10) -> None:
    """Sell every place of a GA tier, in bulk SQL, in the shape checkout leaves behind.

    One buyer per order of `per_order` tickets: holds converted, payments
    approved and captured at the gateway, orders confirmed, tickets valid, units sold (the invariant
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
        " 'purchase', 'converted', array_agg(id ORDER BY id), :p * :k, 'EUR', now() + interval '10 minutes', now()"
        " FROM u GROUP BY grp",
        "INSERT INTO payment_attempts (event_id, hold_id, user_id, idempotency_key, amount_minor, currency,"
        " card_last4, status) SELECT event_id, id, user_id, 'bulk-' || id, total_minor, 'EUR', '4242', 'approved'"
        " FROM holds WHERE event_id = :e",
        "INSERT INTO gateway_charges (idempotency_key, reference, amount_minor, currency, card_last4, outcome,"
        " status, captured_at) SELECT idempotency_key, 'ch_bulk_' || id, amount_minor, 'EUR', '4242', 'approved',"
        " 'captured', now() FROM payment_attempts WHERE event_id = :e",
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
    session.execute(text("ANALYZE users, holds, payment_attempts, gateway_charges, orders, tickets, units"))
    session.commit()


@contextmanager
def rate_limited_client(database_url: str, **settings):
    """A test client of a second app with rate limits on, and `settings` on top.

    The limiter object is shared by every app in the process, and `init_app`
    switches it on for all of them: it is switched back afterwards, or every
    later test would be rate limited too.
    """
    from config import TestConfig
    from webapp import create_app
    from webapp.extensions import limiter

    saved = (limiter.enabled, limiter.initialized)
    limited = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "RATELIMIT_ENABLED": True, **settings},
                         config_class=TestConfig)
    try:
        yield limited.test_client()
    finally:
        with limited.app_context():
            limiter.reset()
            db.engine.dispose()
        limiter.enabled, limiter.initialized = saved


def door_member(session, event, user) -> None:
    """Make `user` a door member of the event's organiser, for this event only (door staff since 0029)."""
    from webapp.services.people import organisers

    organisers.set_member(session, organiser_id=event.organiser_id, email=user.email, role="door",
                          event_ids=[event.id], actor_id=None)
    session.commit()
