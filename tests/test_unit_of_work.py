"""One place where a request commits (webapp/unit_of_work.py): what a view changed is
saved once its answer is a success, nothing of it when the view fails, and a commit
that fails is answered like any database failure, with nothing of the view's answer.

The views here are a test app's own, on the suite's database; the app is a fresh
one, and no test holds its context, so each request has its own session and its
own teardown, as in production.
"""
from __future__ import annotations

import psycopg2
import pytest
from flask import flash, get_flashed_messages
from psycopg2.extensions import TRANSACTION_STATUS_IDLE
from sqlalchemy import create_engine, text

from config import TestConfig
from tests.factories import PASSWORD
from tests.support import login
from webapp import create_app
from webapp.extensions import db
from webapp.htmx import redirect_to
from webapp.models import User
from webapp.services.errors import BookingError

HX = {"HX-Request": "true"}


def _new_user(email: str) -> User:
    return User(email=email, name="Made By A View", password_hash="x")


def _add_test_views(app) -> None:
    @app.get("/uow/add/<email>")
    def add(email: str):
        db.session.add(_new_user(email))
        db.session.flush()
        flash("Saved.", "success")
        return redirect_to("/uow/flashes")

    @app.get("/uow/rename/<int:user_id>")
    def rename(user_id: int):
        # A write the ORM does not see.
        db.session.execute(text("UPDATE users SET name = 'Renamed' WHERE id = :u"), {"u": user_id})
        return "renamed"

    @app.get("/uow/add-then-raise/<email>")
    def add_then_raise(email: str):
        db.session.add(_new_user(email))
        db.session.flush()
        flash("Saved.", "success")
        raise BookingError("Refused after the write.")

    @app.get("/uow/add-then-crash/<email>")
    def add_then_crash(email: str):
        db.session.add(_new_user(email))
        db.session.flush()
        raise RuntimeError("a bug after the write")

    @app.get("/uow/add-then-refuse/<email>")
    def add_then_refuse(email: str):
        db.session.add(_new_user(email))
        db.session.flush()
        return "refused", 409

    @app.get("/uow/add-unflushed/<email>")
    def add_unflushed(email: str):
        # Flushed only by the commit: a clash with an existing address fails there.
        db.session.add(_new_user(email))
        flash("Saved.", "success")
        return "added"

    @app.get("/uow/add-then-lose-connection/<email>")
    def add_then_lose_connection(email: str):
        db.session.add(_new_user(email))
        db.session.flush()
        flash("Saved.", "success")
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        # The database goes away between the view's last statement and the commit.
        with db.engine.connect() as other:
            assert other.execute(text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid}).scalar_one()
        return redirect_to("/uow/flashes")

    @app.get("/uow/read")
    def read():
        return str(db.session.execute(text("SELECT count(*) FROM users")).scalar_one())

    @app.get("/uow/read-then-refuse")
    def read_then_refuse():
        db.session.execute(text("SELECT 1"))
        return "no", 404

    @app.get("/uow/nothing")
    def nothing():
        return "nothing"

    @app.get("/uow/flashes")
    def flashes():
        return "|".join(get_flashed_messages())


@pytest.fixture(scope="module")
def shop(database_url):
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "LOG_LEVEL": "CRITICAL"}, config_class=TestConfig)
    _add_test_views(app)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def saved(database_url):
    """What another connection sees: only what was committed."""
    engine = create_engine(database_url)

    def names(email_like: str = "%@uow.test") -> list[str]:
        with engine.connect() as connection:
            return list(connection.execute(text("SELECT name FROM users WHERE email LIKE :e ORDER BY id"),
                                           {"e": email_like}).scalars())

    yield names
    engine.dispose()


@pytest.fixture
def transaction_ends(shop, monkeypatch):
    """The COMMITs and ROLLBACKs the app's connections send: those that end an open transaction.

    psycopg2 sends nothing for a commit or rollback outside a transaction
    (a connection back from autocommit, the pool's reset of an idle one).
    """
    with shop.app_context():
        dialect = db.engine.dialect
    ends: list[str] = []

    def counting(name, original):
        def end(connection):
            if connection.get_transaction_status() != TRANSACTION_STATUS_IDLE:
                ends.append(name)
            return original(connection)
        return end

    monkeypatch.setattr(dialect, "do_commit", counting("commit", dialect.do_commit))
    monkeypatch.setattr(dialect, "do_rollback", counting("rollback", dialect.do_rollback))
    return ends


@pytest.mark.parametrize("headers, status", [({}, 303), (HX, 204)])
def test_a_views_change_is_committed_once_it_answers_success(app, shop, saved, headers, status):
    client = shop.test_client()
    answer = client.get("/uow/add/one@uow.test", headers=headers)
    assert answer.status_code == status
    assert saved() == ["Made By A View"]
    assert client.get("/uow/flashes").get_data(as_text=True) == "Saved."


def test_a_write_the_orm_did_not_see_is_committed_too(app, shop, saved, factory):
    user = factory.user("raw@uow.test")
    assert shop.test_client().get(f"/uow/rename/{user.id}").status_code == 200
    assert saved() == ["Renamed"]


@pytest.mark.parametrize("path, status", [("/uow/add-then-raise/x@uow.test", 409),
                                          ("/uow/add-then-crash/x@uow.test", 500),
                                          ("/uow/add-then-refuse/x@uow.test", 409)])
def test_a_view_that_fails_leaves_nothing_behind(app, shop, saved, path, status):
    client = shop.test_client()
    assert client.get(path).status_code == status
    assert saved() == []
    # The connection went back clean: the next request of the pool sees no leftover.
    assert client.get("/uow/read").status_code == 200
    assert saved() == []


def test_a_commit_that_loses_the_database_is_503_and_claims_nothing(app, shop, saved):
    client = shop.test_client()
    answer = client.get("/uow/add-then-lose-connection/lost@uow.test", headers=HX)
    assert answer.status_code == 503
    assert int(answer.headers["Retry-After"]) > 0
    body = answer.get_data(as_text=True)
    assert "Nothing was changed" in body and "HX-Redirect" not in answer.headers
    assert saved() == []
    # The "Saved." the view flashed went with the failed commit.
    assert client.get("/uow/flashes").get_data(as_text=True) == ""
    # The pool dropped the dead connection: the next request works.
    assert client.get("/uow/add/back@uow.test").status_code == 303
    assert saved() == ["Made By A View"]


def test_a_commit_that_conflicts_is_409_and_claims_nothing(app, shop, saved, factory):
    factory.user("taken@uow.test", name="First")
    client = shop.test_client()
    answer = client.get("/uow/add-unflushed/taken@uow.test")
    assert answer.status_code == 409
    body = answer.get_data(as_text=True)
    # The error page shows the flashes waiting: the view's "Saved." is not among them.
    assert "changed by another request" in body and "Saved." not in body
    assert saved() == ["First"]
    assert client.get("/uow/flashes").get_data(as_text=True) == ""


def test_a_failed_commit_does_not_log_the_browser_out(app, shop, factory, monkeypatch):
    buyer = factory.user("stays@example.com")
    client = shop.test_client()
    token = login(client, buyer.email, PASSWORD)
    with shop.app_context():
        dialect = db.engine.dialect

    def lost(connection):
        raise psycopg2.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(dialect, "do_commit", lost)
    answer = client.post("/logout", headers={"X-CSRFToken": token})
    monkeypatch.undo()
    assert answer.status_code == 503 and int(answer.headers["Retry-After"]) > 0
    # The version bump that ends every copy of the session was not saved, and
    # this browser's cookie was not cleared: the buyer is still signed in.
    assert client.get("/orders").status_code == 200
    assert client.get("/uow/flashes").get_data(as_text=True) == ""


def test_a_request_ends_only_a_transaction_it_began_in_one_round_trip(app, shop, transaction_ends):
    client = shop.test_client()
    assert client.get("/uow/nothing").status_code == 200
    assert transaction_ends == []
    assert client.get("/uow/read").status_code == 200
    # Where the session's removal used to send a ROLLBACK, the unit of work sends the COMMIT.
    assert transaction_ends == ["commit"]
    assert client.get("/uow/read-then-refuse").status_code == 404
    assert transaction_ends == ["commit", "rollback"]


def test_the_reserve_and_the_hold_page_send_no_commit_of_the_session(app, shop, factory, transaction_ends):
    event = factory.ga_event(capacity=5)
    tier = factory.tier(event)
    buyer = factory.user()
    url, field = f"/events/{event.id}/reserve", f"qty-{tier.id}"
    client = shop.test_client()
    token = login(client, buyer.email, PASSWORD)
    transaction_ends.clear()
    answer = client.post(url, data={field: "2"}, headers={**HX, "X-CSRFToken": token})
    assert answer.status_code == 204, answer.get_data(as_text=True)[:300]
    assert client.get(answer.headers["HX-Redirect"]).status_code == 200
    # The reserve statement and the hold page's reads run in autocommit.
    assert transaction_ends == []
