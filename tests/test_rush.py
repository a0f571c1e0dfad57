"""Rush hour in the normal suite: correctness only, never speed.

- the hot on-sale (scenario a of the load benchmark) at small size, through
  gunicorn and real HTTP: exactly the places sold, nobody else served a 5xx,
  everyone else told "sold out, join the waiting list";
- two independent app instances (two gunicorn masters on different ports,
  like two hosts) against one database, with the buyers split between them;
- rate limits kept in Redis are global across instances (and, as a control,
  the per-process memory storage is not).

The benchmark's own harness starts the stacks, so these tests also keep it
working. Assertions are on counts and invariants, never on timings.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time

import pytest

from tests.load import scenarios
from tests.load.client import Browser
from tests.load.harness import HIDDEN_CSRF, Data, Stack, free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def stack_factory(app, database_url, tmp_path):
    """Start stacks against the suite's database; stop them after the test."""
    started: list[Stack] = []

    def start(**kw) -> tuple[Stack, Data]:
        kw.setdefault("workers", 2)
        kw.setdefault("threads", 4)
        stack = Stack(database_url, log_dir=tmp_path / f"stack{len(started)}", **kw).start()
        started.append(stack)
        return stack, Data(database_url, stack.secret_key)

    yield start
    for stack in started:
        stack.stop()


def _assert_clean(stack: Stack, outcome: scenarios.Outcome) -> None:
    assert outcome.ok, outcome.text + "\nFAILED: " + "; ".join(outcome.failures)
    assert stack.server_errors() == []


def test_hot_onsale_smoke_exactly_the_places_are_sold(stack_factory):
    """100 buyers at once for 10 places: 10 bought, 90 told to join the waiting list, no 5xx."""
    stack, data = stack_factory()
    outcome = asyncio.run(scenarios.hot_ga(stack, data, None, buyers=100, places=10))
    _assert_clean(stack, outcome)
    data.dispose()


def test_two_instances_against_one_database_keep_the_invariants(stack_factory):
    """Two gunicorn masters ("hosts") share the load of a GA rush and a seat rush."""
    stack, data = stack_factory(instances=2)
    assert len({i.port for i in stack.instances}) == 2

    ga = asyncio.run(scenarios.hot_ga(stack, data, None, buyers=120, places=30))
    _assert_clean(stack, ga)
    assert set(ga.figures["served_by"]) == {i.port for i in stack.instances}
    assert min(ga.figures["served_by"].values()) >= 60  # buyers alternate between the hosts

    seats = asyncio.run(scenarios.seat_rush(stack, data, None, buyers=80, rows=6, seats_per_row=10, best=30))
    _assert_clean(stack, seats)
    assert set(seats.figures["served_by"]) == {i.port for i in stack.instances}
    data.dispose()


# --------------------------------------------------------------------------- Redis

@pytest.fixture
def redis_url(tmp_path):
    """A private redis-server from Debian's package, on 127.0.0.1 and a free port."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (./run-tests installs Debian's redis-server)"
        # In CI a missing server is a broken install step, never a silent skip.
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port = free_port()
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 15
    while True:
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/0"
    client.close()
    process.terminate()
    process.wait(timeout=10)


LIMIT = 6


async def _failed_logins(stack: Stack, attempts: int) -> list[int]:
    """Wrong-password logins from one address, alternating between the instances and connections."""
    browsers = [Browser("127.0.0.1", i.port) for i in stack.instances for _ in range(2)]
    for browser in browsers:
        page = await browser.get("/login")
        browser.csrf = HIDDEN_CSRF.search(page.text).group(1)
    statuses = []
    for n in range(attempts):
        browser = browsers[n % len(browsers)]
        answer = await browser.post("/login", {"email": "nobody@example.com", "password": "wrong-password-1",
                                               "csrf_token": browser.csrf}, htmx=False)
        statuses.append(answer.status)
        if answer.status == 429:
            assert int(answer.headers["retry-after"]) > 0
    for browser in browsers:
        await browser.close()
    return statuses


def test_rate_limit_in_redis_is_global_across_instances(stack_factory, redis_url):
    stack, data = stack_factory(instances=2, env={"REDIS_URL": redis_url, "LOGIN_RATE_LIMIT": f"{LIMIT} per minute"})
    statuses = asyncio.run(_failed_logins(stack, 3 * LIMIT))
    # Every worker of both hosts counts against the same budget.
    assert statuses[:LIMIT] == [400] * LIMIT
    assert statuses[LIMIT:] == [429] * (2 * LIMIT)
    data.dispose()


def test_without_redis_each_process_counts_alone(stack_factory):
    """The control: memory storage lets each worker allow the full limit (development only)."""
    stack, data = stack_factory(instances=2, env={"LOGIN_RATE_LIMIT": f"{LIMIT} per minute"})
    statuses = asyncio.run(_failed_logins(stack, 3 * LIMIT))
    assert statuses.count(400) > LIMIT
    data.dispose()
