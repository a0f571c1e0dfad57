"""The database restarting or full: buyers get 503 with Retry-After, never a 500,
and everything works again as soon as it is back.

These run on a PostgreSQL of their own (the suite's shared one must not be
restarted), started here with room for only 20 connections so that a small
script can fill it.
"""
from __future__ import annotations

import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine, select, text

from config import TestConfig
from tests.factories import Factory
from tests.support import csrf_token, login, rate_limited_client
from webapp import create_app, database, embedded_pg, errors
from webapp.extensions import db
from webapp.models import Event, Order, OrderStatus, OutboxMessage, User
from webapp.services.money import checkout


@pytest.fixture(scope="module")
def own_pg():
    datadir = Path(tempfile.mkdtemp(prefix="tickets-outage-pg-", dir="/tmp"))
    server = embedded_pg.start(datadir / "data", throwaway=True, settings={"max_connections": "20"})
    url = embedded_pg.create_database(embedded_pg.url_of(server), "outage", drop_first=True)
    yield server, url
    server.cleanup()
    shutil.rmtree(datadir, ignore_errors=True)


def _app(url: str):
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "DB_POOL_SIZE": 4, "DB_MAX_OVERFLOW": 2,
                       "LOG_LEVEL": "ERROR"}, config_class=TestConfig)


@pytest.fixture(scope="module")
def shop(own_pg):
    """A migrated shop with one GA event on sale and a buyer."""
    server, url = own_pg
    app = _app(url)
    with app.app_context():
        upgrade()
        factory = Factory(db.session)
        event = factory.ga_event(capacity=50)
        tier = factory.tier(event)
        buyer = factory.user()
        ids = dict(event=event.id, tier=tier.id, buyer=buyer.email)
        db.session.remove()
    yield app, server, url, ids
    with app.app_context():
        db.engine.dispose()


@dataclass
class Answer:
    started: float
    path: str
    partial: bool
    status: int
    retry_after: str | None
    body: str


def _requests(ids):
    """What a small crowd does: list pages, event pages, a picker partial, their tickets, health."""
    e, t = ids["event"], ids["tier"]
    return [("/", False), (f"/events/{e}", False), (f"/events/{e}/tickets?qty-{t}=1", True),
            ("/orders", False), (f"/events/{e}/tickets?qty-{t}=2", False)]


def _ask(client, path: str, partial: bool) -> Answer:
    started = time.monotonic()
    try:
        response = client.get(path, headers={"HX-Request": "true"} if partial else {})
    except Exception as error:  # the error handler itself failed: a server would send a bare 500
        return Answer(started, path, partial, 500, None, f"Internal Server Error ({error!r})"[:300])
    return Answer(started, path, partial, response.status_code, response.headers.get("Retry-After"),
                  response.get_data(as_text=True))


class Crowd:
    """A few buyers (threads with their own client and login) asking in a loop."""

    def __init__(self, app, ids, buyers: int = 4):
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._clients = []
        for _ in range(buyers):
            client = app.test_client()
            login(client, ids["buyer"])
            self._clients.append(client)
        self._menu = _requests(ids)
        self._threads = [threading.Thread(target=self._run, args=(c, i), daemon=True)
                         for i, c in enumerate(self._clients)]

    def _run(self, client, seed: int) -> None:
        pick = random.Random(seed)
        while not self._stop.is_set():
            self.answers.append(_ask(client, *pick.choice(self._menu)))
            time.sleep(0.01)

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def _check_refusal(answer: Answer) -> None:
    """A 503 a buyer can act on: Retry-After, and a real page or a partial explaining it."""
    assert answer.status == 503, (answer.path, answer.status, answer.body[:300])
    assert answer.retry_after and int(answer.retry_after) > 0, answer.path
    assert "try again" in answer.body
    assert "Traceback" not in answer.body and "psycopg2" not in answer.body
    if answer.partial:
        assert "<html" not in answer.body and 'role="alert"' in answer.body
    else:
        assert answer.body.lstrip().lower().startswith("<!doctype html>") and "Ticketbooth" in answer.body


def test_a_database_restart_under_load_is_503_then_back_within_a_second(shop):
    app, server, url, ids = shop
    with Crowd(app, ids) as crowd:
        time.sleep(0.5)
        down_at = time.monotonic()
        embedded_pg.stop_for_a_while(server)
        stopped_at = time.monotonic()
        time.sleep(1.5)
        starting_at = time.monotonic()
        embedded_pg.start_again(server)  # returns a little after it takes connections
        back_at = time.monotonic()
        time.sleep(2.0)
    answers = sorted(crowd.answers, key=lambda a: a.started)
    during = [a for a in answers if stopped_at <= a.started < starting_at]
    after = [a for a in answers if a.started >= back_at]
    assert len(during) > 10 and len(after) > 10, (len(during), len(after))
    for answer in answers:
        if answer.status != 200:
            _check_refusal(answer)
    assert all(a.status == 503 for a in during)
    late = [a for a in after if a.started >= back_at + 1.0 and a.status != 200]
    assert not late, [(a.path, a.status) for a in late]
    refused_after = [a for a in after if a.status != 200]
    first_ok = min((a.started for a in after if a.status == 200), default=None)
    print(f"\nrestart: {len(answers)} requests; stopping took {stopped_at - down_at:.2f} s, down "
          f"{starting_at - stopped_at:.2f} s: {len(during)} answered 503; start took {back_at - starting_at:.2f} s; "
          f"after it was back: {len(after)} requests, "
          f"{len(refused_after)} refused, first success {1000 * (first_ok - back_at):.0f} ms after")


def test_dead_pooled_connections_are_replaced_not_handed_to_a_request(shop):
    app, server, url, ids = shop
    clients = [app.test_client() for _ in range(4)]
    menu = _requests(ids)
    # Fill the pool with several connections, all of which the restart kills.
    threads = [threading.Thread(target=_ask, args=(c, "/", False)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    embedded_pg.stop_for_a_while(server)
    embedded_pg.start_again(server)
    answers = [_ask(clients[i % 4], *menu[i % 2]) for i in range(8)]
    assert [a.status for a in answers] == [200] * 8, [(a.path, a.status, a.body[:200]) for a in answers]


HOLDER = textwrap.dedent("""
    import sys, psycopg2
    held = []
    while True:
        try:
            held.append(psycopg2.connect(sys.argv[1]))
        except psycopg2.OperationalError:
            break
    print(len(held), flush=True)
    sys.stdin.read()  # hold them until told to stop
""")


def test_a_full_connection_table_is_503_and_healthz_says_so_until_it_frees(shop):
    app, server, url, ids = shop
    dsn = url.replace("postgresql+psycopg2://", "postgresql://")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, dsn], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        held = int(holder.stdout.readline())
        assert held >= 15, held
        # A worker that starts now, while every connection is taken.
        fresh = _app(url)
        client = fresh.test_client()
        health = client.get("/healthz")
        assert health.status_code == 503 and health.get_json()["database"] == "unreachable"
        for path, partial in _requests(ids)[:3]:
            _check_refusal(_ask(client, path, partial))
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    freed_at = time.monotonic()
    answers = []
    while time.monotonic() < freed_at + 2.0:
        for path, partial in _requests(ids)[:3] + [("/healthz", False)]:
            answers.append(_ask(client, path, partial))
    for answer in answers:
        if answer.status != 200:
            _check_refusal(answer)
    late = [a for a in answers if a.started >= freed_at + 1.0 and a.status != 200]
    assert not late, [(a.path, a.status) for a in late]
    refused = [a for a in answers if a.status != 200]
    print(f"\nfull table: {held} connections held; after release {len(refused)} of {len(answers)} refused")
    with fresh.app_context():
        db.engine.dispose()


# ---- What a refusal during an outage says -----------------------------------------------------------


def test_a_reserve_refused_by_the_outage_says_when_to_retry_the_database_not_the_rate_limit(shop):
    """The reserve is rate limited; its 503 during an outage must carry the outage's Retry-After.

    Flask-Limiter writes its own Retry-After (the limit's window, up to a
    minute) on every response of a limited route, over the one the error
    handler set: buyers were told to wait 30–60 s for a restart of 2.
    """
    app, server, url, ids = shop
    e, t = ids["event"], ids["tier"]
    with rate_limited_client(url, DB_POOL_SIZE=2, DB_MAX_OVERFLOW=0, LOG_LEVEL="ERROR") as client:
        token = login(client, ids["buyer"])
        embedded_pg.stop_for_a_while(server)
        try:
            answers = [client.post(f"/events/{e}/reserve", data={f"qty-{t}": "1"},
                                   headers={"X-CSRFToken": token, **extra})
                       for extra in ({}, {"HX-Request": "true"})]
        finally:
            embedded_pg.start_again(server)
    for answer in answers:
        assert answer.status_code == 503, answer.get_data(as_text=True)[:300]
        assert answer.headers["Retry-After"] == str(database.RETRY_AFTER)


class _DatabaseLostOnceAuthorised:
    """The real gateway; the database stops the moment an authorisation comes back.

    So the checkout cannot record the verdict: the buyer's attempt stays
    pending, and the charge is real.
    """

    def __init__(self, real, server):
        self._real, self._server = real, server

    def authorise(self, **kwargs):
        result = self._real.authorise(**kwargs)
        embedded_pg.stop_for_a_while(self._server)
        return result

    def __getattr__(self, name):
        return getattr(self._real, name)


def test_a_pay_cut_off_by_the_outage_says_the_outcome_is_not_known_and_the_order_appears_later(shop):
    app, server, url, ids = shop
    with app.app_context():
        db.engine.dispose()  # the connections the last restart cut
        factory = Factory(db.session)
        event = db.session.get(Event, ids["event"])
        buyer = db.session.scalars(select(User).where(User.email == ids["buyer"])).one()
        hold_id = factory.hold(event, buyer, quantities={ids["tier"]: 1}).id
        db.session.commit()
        db.session.remove()
    client = app.test_client()
    login(client, ids["buyer"])
    token = csrf_token(client, f"/holds/{hold_id}")
    real = app.extensions["payment_gateway"]
    app.extensions["payment_gateway"] = _DatabaseLostOnceAuthorised(real, server)
    try:
        answer = client.post(f"/holds/{hold_id}/pay", headers={"HX-Request": "true", "X-CSRFToken": token},
                             data={"name": "Ada Outage", "number": "4242 4242 4242 4242", "expiry": "12/39",
                                   "cvc": "123", "idempotency_key": "outage-" + "k" * 20})
    finally:
        app.extensions["payment_gateway"] = real
        embedded_pg.start_again(server)
    body = answer.get_data(as_text=True)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == str(database.RETRY_AFTER)
    assert "Nothing was changed" not in body
    assert "not know yet whether your payment went through" in body
    assert "My tickets" in body and "e-mail" in body
    assert errors.PAYMENT_ENDPOINTS <= set(app.view_functions)  # the API's pay says the same
    # What the message promises: the sweep's reconciliation turns the charge into the order, and mails it.
    with app.app_context():
        checkout.reconcile_stale_payments(db.session, real, older_than_seconds=0, void_after_seconds=300)
        order = db.session.scalars(select(Order).where(Order.hold_id == hold_id)).one()
        assert order.status == OrderStatus.CONFIRMED
        mails = db.session.scalars(select(OutboxMessage).where(OutboxMessage.template == "order_confirmation")).all()
        assert [m.params["order_id"] for m in mails].count(order.id) == 1
        db.session.remove()


def test_a_read_only_database_mid_failover_is_503_not_500(shop):
    """A standby where the primary was (a failover or switchover under way) refuses writes: that is an outage.

    Found by the failover test on the cluster profile: reserves reaching the
    old primary while it came back read-only were answered 500.
    """
    app, server, url, ids = shop
    e, t = ids["event"], ids["tier"]
    direct = create_engine(url, isolation_level="AUTOCOMMIT")
    with app.app_context():
        db.engine.dispose()
    client = app.test_client()
    token = login(client, ids["buyer"])
    with direct.connect() as conn:
        conn.execute(text("ALTER DATABASE outage SET default_transaction_read_only = on"))
    try:
        with app.app_context():
            db.engine.dispose()  # new connections, which the setting applies to
        answers = [client.post(f"/events/{e}/reserve", data={f"qty-{t}": "1"},
                               headers={"X-CSRFToken": token, **extra}) for extra in ({}, {"HX-Request": "true"})]
    finally:
        with direct.connect() as conn:
            conn.execute(text("ALTER DATABASE outage RESET default_transaction_read_only"))
        direct.dispose()
        with app.app_context():
            db.engine.dispose()
    for answer in answers:
        assert answer.status_code == 503, answer.get_data(as_text=True)[:300]
        assert answer.headers["Retry-After"] == str(database.RETRY_AFTER)
