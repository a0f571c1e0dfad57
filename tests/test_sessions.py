"""Sessions end on the server: logout kills every copy of the cookie, sessions time
out when idle and after a fixed time, login rotates the CSRF token. Sign-up tells
nobody who has an account, and passwords are long and not common."""
from __future__ import annotations

import re
import time

import pytest

from tests.factories import Factory
from tests.support import PASSWORD, csrf_token, login, rate_limited_client
from webapp.extensions import db
from webapp.services.people import accounts

HX = {"HX-Request": "true"}


def _new_user(app) -> str:
    """A buyer, made in an app context of its own: these tests need each request to
    get a fresh one (an outer context would share `g`, and with it the loaded user)."""
    with app.app_context():
        email = Factory(db.session).user().email
        db.session.remove()
    return email


def _copy_session(source, target) -> None:
    target.set_cookie("session", source.get_cookie("session").value)


def _is_login_redirect(response) -> bool:
    return response.status_code in (302, 303) and "/login" in response.headers["Location"]


def test_a_cookie_copied_before_logout_stops_working_after_it(app, client):
    email = _new_user(app)
    token = login(client, email)
    thief = app.test_client()
    _copy_session(client, thief)
    assert thief.get("/orders").status_code == 200
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert _is_login_redirect(thief.get("/orders"))
    # Logging in again works, and only the new cookie does.
    login(client, email)
    assert client.get("/orders").status_code == 200 and _is_login_redirect(thief.get("/orders"))


def _age(client, *, idle_seconds: int = 0, since_login_seconds: int = 0) -> None:
    with client.session_transaction() as s:
        now = int(time.time())
        s["_seen"] = now - idle_seconds
        card = list(s["_user_card"])
        card[4] = now - since_login_seconds
        s["_user_card"] = card


def test_a_session_ends_after_the_idle_timeout(app, client):
    login(client, _new_user(app))
    idle = app.config["SESSION_IDLE_MINUTES"] * 60
    _age(client, idle_seconds=idle - 120)
    assert client.get("/orders").status_code == 200  # still within it, and the visit counts as activity
    with client.session_transaction() as s:
        assert int(time.time()) - s["_seen"] < 5
    _age(client, idle_seconds=idle + 5)
    assert _is_login_redirect(client.get("/orders"))


def test_a_session_ends_after_the_absolute_timeout_even_if_active(app, client):
    login(client, _new_user(app))
    _age(client, since_login_seconds=app.config["SESSION_ABSOLUTE_HOURS"] * 3600 + 5)
    assert _is_login_redirect(client.get("/orders"))


def test_login_rotates_the_csrf_token(client, factory):
    buyer = factory.user()
    before = csrf_token(client, "/login")
    response = client.post("/login", data={"email": buyer.email, "password": PASSWORD, "csrf_token": before})
    assert response.status_code == 303
    after = re.search(r'"X-CSRFToken": "([^"]+)"', client.get("/").get_data(as_text=True)).group(1)
    assert after != before
    # The token a visitor had before logging in is refused afterwards.
    assert client.post("/logout", data={"csrf_token": before}).status_code == 400
    assert client.post("/logout", data={"csrf_token": after}).status_code == 303


@pytest.fixture
def check_limited_client(database_url):
    with rate_limited_client(database_url, REGISTER_CHECK_RATE_LIMIT="3 per minute") as client:
        yield client


def test_the_sign_up_email_check_is_rate_limited_and_says_nothing_about_accounts(check_limited_client, factory):
    client = check_limited_client
    known = factory.user()
    token = csrf_token(client, "/register")
    answers = [client.post("/register/validate/email", data={"email": email},
                           headers={**HX, "X-CSRFToken": token})
               for email in (known.email, "free@example.com", known.email, "other@example.com")]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].get_data() == answers[1].get_data() == answers[2].get_data()
    assert int(answers[3].headers["Retry-After"]) > 0


@pytest.mark.parametrize("password, problem", [
    ("short-pass1", "at least 12 characters"),     # 11 characters
    ("password1234", "common passwords"),           # on the list as it is
    ("Sunshine2024!", "common passwords"),          # a listed word with digits and a symbol added
    ("qwertyuiop123", "common passwords"),
    ("aaaaaaaaaaaa", "repetitive"),
])
def test_weak_passwords_are_refused(client, password, problem):
    assert problem in accounts.password_problem(password, "ann@example.com")
    token = csrf_token(client, "/register")
    answer = client.post("/register", data={"name": "Ann", "email": "ann@example.com", "password": password,
                                            "csrf_token": token})
    assert answer.status_code == 400 and problem in answer.get_data(as_text=True)


def test_a_long_uncommon_password_is_accepted_and_the_demo_ones_still_are():
    from webapp.services.demo import DEMO_ADMIN, DEMO_BUYER

    assert accounts.password_problem("tram-velvet-orchard-42") is None
    assert accounts.password_problem(PASSWORD) is None
    for email, password, _ in (DEMO_BUYER, DEMO_ADMIN):
        assert accounts.password_problem(password, email) is None
