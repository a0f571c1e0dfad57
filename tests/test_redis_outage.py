"""Redis, which holds the rate limits' counters (REDIS_URL), stopping mid-way: the shop goes on.

A limited request used to raise the Redis client's ConnectionError: every login, sign-up, reserve and API
call a 500 while Redis was away. Now each process counts on its own until Redis answers again (the
limits still hold, per process, as without REDIS_URL), and the waiting room keeps its spent proofs of work
in PostgreSQL meanwhile.
"""
from __future__ import annotations

import time

import pytest

from config import TestConfig
from tests.support import csrf_token
from tests.test_rush import redis_url  # noqa: F401 (a fixture)
from webapp import create_app
from webapp.extensions import db
from webapp.services.waiting.waiting_room import screening

LIMIT = 3


@pytest.fixture
def limited(database_url, redis_url):  # noqa: F811
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "RATELIMIT_ENABLED": True,
                      "RATELIMIT_STORAGE_URI": redis_url, "LOGIN_RATE_LIMIT": f"{LIMIT} per minute"},
                     config_class=TestConfig)
    yield app, redis_url
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _stop_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.shutdown(nosave=True)
    except redis.exceptions.ConnectionError:
        pass  # it answers the shutdown by going away
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            client.ping()
        except redis.exceptions.ConnectionError:
            return
        time.sleep(0.1)
    raise AssertionError("redis-server did not stop")


def _wrong_login(client) -> int:
    token = csrf_token(client, "/login")
    return client.post("/login", data={"email": "nobody@example.com", "password": "wrong-password-1",
                                       "csrf_token": token}).status_code


def test_redis_away_is_neither_a_500_nor_the_end_of_the_limits(limited, session, factory):
    app, url = limited
    import redis

    client = app.test_client()
    assert [_wrong_login(client) for _ in range(2)] == [400, 400]
    assert redis.Redis.from_url(url).keys("*"), "the limits are counted in Redis while it is there"

    _stop_redis(url)
    # Counted again from zero in this process, and still limited.
    answers = [_wrong_login(client) for _ in range(LIMIT + 1)]
    assert answers == [400] * LIMIT + [429], answers
    # The API's own limit, in front of every operation: the token check answers, not a 500.
    assert client.get("/api/v1/events", headers={"Authorization": "Bearer tb_not-a-token"}).status_code == 401

    # The waiting room's spent proofs of work go to PostgreSQL meanwhile: still once each.
    with app.app_context():
        solved = screening._Solved("d0d0ca" * 5, int(time.time()) + 120)
        assert screening._spend(solved) is True
        assert screening._spend(solved) is False
