"""`/metrics`: behind its token, and its figures move with what the shop does.

The rush runs against gunicorn with two workers in multiprocess mode, as in
production, so the scrape is the sum over the workers' files plus the
database's figures read at scrape time.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client.parser import text_string_to_metric_families

from config import TestConfig
from tests.factories import Factory
from tests.support import free_port
from webapp import create_app
from webapp.extensions import db
from webapp.launcher import ROOT, gunicorn_command, wait_until_healthy
from webapp.services.messaging import webhooks
from webapp.services.people import api_tokens
from webapp.services.waiting import waiting_room

TOKEN = "metrics-test-token-" + "x" * 20


def samples(body: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape, by name and labels."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def value(scrape: dict, name: str, **labels: str) -> float:
    return scrape.get((name, frozenset(labels.items())), 0.0)


def test_metrics_answer_only_with_the_token_and_do_not_exist_without_one(app, database_url):
    # `app`: the suite's app, which migrated the database the apps below read.
    without = create_app({"SQLALCHEMY_DATABASE_URI": database_url}, config_class=TestConfig).test_client()
    assert without.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
    guarded = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "METRICS_TOKEN": TOKEN},
                         config_class=TestConfig)
    client = guarded.test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        answer = client.get("/metrics", headers=headers)
        assert answer.status_code == 401 and TOKEN not in answer.get_data(as_text=True)
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200 and answer.mimetype == "text/plain"
    assert value(samples(answer.get_data(as_text=True)), "tickets_metrics_database_up") == 1
    with guarded.app_context():
        db.engine.dispose()


class Http:
    """A tiny JSON client for the served app."""

    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method: str, path: str, body: dict | None = None, **headers: str) -> tuple[int, str]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", **headers})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def scrape(self) -> dict:
        return samples(self.scrape_text())

    def scrape_text(self) -> str:
        status, body = self.call("GET", "/metrics", Authorization=f"Bearer {TOKEN}")
        assert status == 200, body[:300]
        return body


@pytest.fixture
def served(app, database_url):
    # `app`: the suite's app, which migrated the database.
    port = free_port()
    metrics_dir = tempfile.mkdtemp(prefix="tickets-metrics-test-")
    env = dict(os.environ, DATABASE_URL=database_url, SECRET_KEY="metrics-test-secret", LOG_LEVEL="WARNING",
               METRICS_TOKEN=TOKEN, PROMETHEUS_MULTIPROC_DIR=metrics_dir, RATELIMIT_ENABLED="0")
    proc = subprocess.Popen(gunicorn_command("127.0.0.1", port, 2, 4), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until_healthy(f"http://127.0.0.1:{port}/healthz", timeout=60)
        http = Http(port)
        # Both workers up: each adds its pool's size (10) to the capacity, summed over the live ones.
        deadline = time.monotonic() + 60
        while value(http.scrape(), "tickets_db_pool_connections_max") < 2 * 10 and time.monotonic() < deadline:
            time.sleep(0.2)
        yield http
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_small_rush_moves_the_counters(served, session, app):
    factory = Factory(session)
    event = factory.ga_event(capacity=6)
    tier_id, event_id = event.tiers[0].id, event.id
    buyers = factory.users(10)
    secrets = [api_tokens.create(session, user_id=b.id, is_admin=False, name="rush", scope="buyer").secret
               for b in buyers]
    # A receiver for the event's confirmations, which no worker delivers to here: the backlog shows it.
    allowed, app.config["WEBHOOK_ALLOWED_HOSTS"] = app.config["WEBHOOK_ALLOWED_HOSTS"], ("127.0.0.1",)
    try:
        webhooks.create_endpoint(session, actor_id=factory.user(is_admin=True).id,
                                 url=f"https://127.0.0.1:{free_port()}/hook", event_id=event_id,
                                 event_types=["order.confirmed"])
    finally:
        app.config["WEBHOOK_ALLOWED_HOSTS"] = allowed
    # A second event's waiting room, started: five in line, two of them let in.
    roomed = factory.ga_event(capacity=50, title="Roomed")
    waiting_room.configure(session, roomed, enabled=True, sale_starts_at=datetime.now(timezone.utc)
                           - timedelta(seconds=1), admit_per_minute=None, max_shoppers=2)
    for person in factory.users(5):
        waiting_room.join(session, roomed.id, user_id=person.id)
    session.commit()
    assert len(waiting_room.admit(session, roomed.id).admitted) == 2
    session.commit()
    before = served.scrape()

    answers: list[tuple[int, str, str]] = []
    scrapes: list[dict] = []

    def reserve(secret: str) -> None:
        status, body = served.call("POST", f"/api/v1/events/{event_id}/holds",
                                   {"quantities": [{"tier_id": tier_id, "quantity": 1}]},
                                   Authorization=f"Bearer {secret}")
        answers.append((status, secret, body))

    threads = [threading.Thread(target=reserve, args=(s,)) for s in secrets]
    threads.append(threading.Thread(target=lambda: scrapes.append(served.scrape())))  # a scrape mid-rush
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(status for status, _, _ in answers) == [201] * 6 + [409] * 4, answers
    _, winner, hold = next(answer for answer in answers if answer[0] == 201)
    paid, body = served.call("POST", f"/api/v1/holds/{json.loads(hold)['id']}/payment",
                             {"card": {"number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123",
                                       "name": "Ada Rush"}},
                             Authorization=f"Bearer {winner}", **{"Idempotency-Key": "rush-payment-key-0001"})
    assert paid == 201, body[:300]
    after = served.scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("tickets_reserves_total", outcome="won") == 6
    assert moved("tickets_reserves_total", outcome="NotEnoughLeft") == 4
    assert moved("tickets_http_requests_total", route="api.reserve", method="POST", status="201") == 6
    assert moved("tickets_http_requests_total", route="api.reserve", method="POST", status="409") == 4
    assert moved("tickets_http_request_duration_seconds_count", route="api.reserve") == 10
    assert moved("tickets_payment_gateway_calls_total", call="authorise", outcome="authorised") == 1
    assert moved("tickets_payment_gateway_calls_total", call="capture", outcome="captured") == 1
    assert moved("tickets_payment_gateway_duration_seconds_count", call="authorise") == 1
    # The shop's state, read at scrape time.
    assert value(after, "tickets_live_holds", event_id=str(event_id)) == 5
    assert value(after, "tickets_sold", event_id=str(event_id)) == 1
    assert value(after, "tickets_capacity", event_id=str(event_id)) == 6
    assert value(after, "tickets_outbox_backlog", outbox="mail") >= 1  # the paid order's confirmation
    assert value(after, "tickets_outbox_backlog", outbox="webhooks") == 1  # and its webhook
    assert value(after, "tickets_waiting_room_line", event_id=str(roomed.id)) == 3
    assert value(after, "tickets_waiting_room_admitted_total", event_id=str(roomed.id)) == 2
    assert ("tickets_waiting_room_admit_rate_per_minute", frozenset({("event_id", str(roomed.id))})) in after
    assert value(after, "tickets_db_server_connections", state="max") > 0
    # Both workers' pools: capacity summed over the live ones, connections in use never more.
    capacity = value(after, "tickets_db_pool_connections_max")
    assert capacity >= 2 * 10 and 0 <= value(after, "tickets_db_pool_connections_in_use") <= capacity
    assert scrapes and value(scrapes[0], "tickets_metrics_database_up") == 1

    # The on-sale dashboard asks only for metrics the app exposes.
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "ticketbooth-onsale.json").read_text())
    asked = {re.sub(r"_(bucket|total|count|sum)$", "", name)
             for panel in dashboard["panels"] for target in panel["targets"]
             for name in re.findall(r"\btickets_[a-z_]+", target["expr"])}
    exposed = {family.name for family in text_string_to_metric_families(served.scrape_text())}
    assert len(asked) >= 12 and asked <= exposed, asked - exposed

