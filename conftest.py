"""Fixtures shared by tests/ and e2e/: a real PostgreSQL, the app, clean data.

The database comes from `TEST_DATABASE_URL` when set, otherwise from a
throwaway pgserver instance started once per test session. The schema is
built by the migrations, exactly as in production.

Every test also runs under the unit-row ownership guard: a statement that
writes unit rows (or calls a SQL function that writes units or holds) from
anywhere in `webapp/` but the package `services/selling/inventory/` fails
the test that caused it (see `tests/ownership.py`).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from config import TestConfig, normalise_database_url
from tests import ownership
from tests.factories import Factory, make_gateway
from webapp import create_app
from webapp.extensions import db

TABLES = (
    "audit_log, outbox_messages, tickets, orders, payment_attempts, gateway_charges, units, holds,"
    " waitlist_entries, waiting_room_entries, waiting_rooms, inventory_clock, webhook_deliveries, webhook_endpoints,"
    " codes, tiers, events, api_tokens, users, waiting_room_spent_challenges, stripe_intents, stripe_events,"
    " payment_disputes, gateway_refunds, invoice_series, organiser_members, organisers, shop_delays"
)
# What the migration leaves: one default organiser, for the events tests make without naming one.
DEFAULT_ORGANISER = "INSERT INTO organisers (slug, name) VALUES ('default', 'Ticketbooth')"


@pytest.fixture(scope="session")
def database_url():
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield normalise_database_url(external)
        return
    from webapp import embedded_pg

    datadir = Path(tempfile.mkdtemp(prefix="tickets-test-pg-", dir="/tmp"))
    server = embedded_pg.start(datadir / "data", throwaway=True)
    url = embedded_pg.create_database(embedded_pg.url_of(server), "tickets_test", drop_first=True)
    yield url
    server.cleanup()
    shutil.rmtree(datadir, ignore_errors=True)


@pytest.fixture
def empty_database(database_url):
    """An empty database on the test server, as a new deployment would see it; dropped afterwards."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from webapp import embedded_pg

    server_url = make_url(database_url).set(database="postgres").render_as_string(hide_password=False)
    name = f"empty_{os.getpid()}"
    url = embedded_pg.create_database(server_url, name, drop_first=True)
    yield url
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session")
def app(database_url):
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "DB_POOL_SIZE": 20, "DB_MAX_OVERFLOW": 250},
                     config_class=TestConfig)
    with app.app_context():
        upgrade()
        ownership.GUARD.learn_sql_writers(db.engine)
        # Holds in tests are minutes long unless a test shortens them.
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_tables(request):
    """Every test starts from empty tables (contention tests really commit)."""
    yield
    if "app" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    # Ids start again at 1: a waiting room's shared state kept from the last test is another room's.
    app.extensions["waiting_room_now"].forget()
    with app.app_context():
        db.session.remove()
        # The e2e sweep process may be mid-batch: TRUNCATE can then lose a
        # deadlock to it. That is the harness racing itself; try again.
        for attempt in range(5):
            try:
                with db.engine.begin() as conn:
                    conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
                    conn.execute(text(DEFAULT_ORGANISER))
                break
            except OperationalError:
                if attempt == 4:
                    raise


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def session(app_ctx):
    """The app's scoped session, inside an app context."""
    return db.session


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def factory(app_ctx):
    return Factory(db.session)


@pytest.fixture
def gateway(app_ctx):
    """The simulated gateway on the test database (a slow card takes 0.2 s)."""
    return make_gateway()


@pytest.fixture(autouse=True)
def _unit_rows_have_one_writer():
    """Fail a test during which anything but inventory wrote unit rows."""
    ownership.GUARD.start()
    yield
    found = ownership.GUARD.take()
    assert not found, "unit rows written outside services/selling/inventory/:\n" + "\n".join(found)
