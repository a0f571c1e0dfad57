"""Password reset and e-mail verification over HTTP.

The reset link is signed, single-use and expiring; asking for one answers the
same whether or not the address has an account, and is rate limited;
resetting ends the account's other sessions.
"""
from __future__ import annotations

import re
import time

import itsdangerous.timed
import pytest
from sqlalchemy import select

from config import TestConfig
from tests.support import PASSWORD, login, rate_limited_client
from webapp.extensions import db
from webapp.models import OutboxMessage, User
from webapp.services.people import account_tokens

NEW_PASSWORD = "a-brand-new-passphrase"


def form_token(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def ask_for_reset(client, email: str):
    return client.post("/password/forgot", data={"email": email, "csrf_token": form_token(client, "/password/forgot")})


def reset_link(session, email: str) -> str:
    body = session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == email,
                                                       OutboxMessage.template == "password_reset")
                           .order_by(OutboxMessage.id.desc())).first().body
    return re.search(r"http://tickets\.test(/password/reset/\S+)", body).group(1)


def set_password(client, path: str, password: str = NEW_PASSWORD):
    token = form_token(client, "/password/forgot")
    return client.post(path, data={"password": password, "confirm": password, "csrf_token": token})


def test_the_answer_is_the_same_for_an_unknown_address(client, session, factory):
    user = factory.user(email="known@example.com")
    known = ask_for_reset(client, user.email)
    unknown = ask_for_reset(client, "stranger@example.com")
    assert known.status_code == unknown.status_code == 200
    strip = lambda r, email: r.get_data(as_text=True).replace(email, "EMAIL")  # noqa: E731
    assert strip(known, user.email) == strip(unknown, "stranger@example.com")
    assert "If an account exists for" in known.get_data(as_text=True)
    recipients = session.scalars(select(OutboxMessage.recipient)).all()
    assert recipients == [user.email]


def test_a_reset_link_works_once(client, session, factory):
    user = factory.user()
    ask_for_reset(client, user.email)
    link = reset_link(session, user.email)
    assert client.get(link).status_code == 200
    done = set_password(client, link)
    assert done.status_code == 303
    session.expire_all()
    assert session.get(User, user.id).password_changed_at is not None

    again = client.get(link)
    assert again.status_code == 400 and "already used" in again.get_data(as_text=True)
    assert set_password(client, link, "yet-another-passphrase").status_code == 400
    client.post("/logout", data={"csrf_token": form_token(client, "/password/forgot")})
    login(client, user.email, NEW_PASSWORD)


def test_an_expired_or_forged_link_is_refused(client, session, factory, monkeypatch):
    user = factory.user()
    issued = time.time() - TestConfig.PASSWORD_RESET_MAX_AGE_SECONDS - 5
    with pytest.MonkeyPatch.context() as past:
        past.setattr(itsdangerous.timed.time, "time", lambda: issued)
        with client.application.app_context():
            token = account_tokens.reset_token(db.session.get(User, user.id))
    expired = client.get(f"/password/reset/{token}")
    assert expired.status_code == 400 and "expired" in expired.get_data(as_text=True)
    assert set_password(client, f"/password/reset/{token}").status_code == 400
    forged = client.get(f"/password/reset/{token[:-4]}AAAA")
    assert forged.status_code == 400 and "not valid" in forged.get_data(as_text=True)
    session.expire_all()
    assert session.get(User, user.id).password_changed_at is None


def test_a_weak_new_password_is_refused_and_the_link_still_works(client, session, factory):
    user = factory.user()
    ask_for_reset(client, user.email)
    link = reset_link(session, user.email)
    weak = set_password(client, link, "short")
    assert weak.status_code == 400 and "at least" in weak.get_data(as_text=True)
    assert set_password(client, link).status_code == 303


def _user_and_link_reader(app):
    """A user made outside any long-lived app context: two browsers in one test must not share `g`
    (Flask reuses a pushed app context for requests, and Flask-Login and Flask-WTF cache in `g`)."""
    from tests.factories import Factory

    with app.app_context():
        email = Factory(db.session).user().email
        db.session.remove()

    def link() -> str:
        with app.app_context():
            try:
                return reset_link(db.session, email)
            finally:
                db.session.remove()

    return email, link


def test_resetting_ends_the_other_sessions(app, monkeypatch):
    email, link = _user_and_link_reader(app)
    other_browser, resetting_browser = app.test_client(), app.test_client()
    login(other_browser, email)
    assert other_browser.get("/orders").status_code == 200

    ask_for_reset(resetting_browser, email)
    assert set_password(resetting_browser, link()).status_code == 303

    ended = other_browser.get("/orders")
    assert ended.status_code in (302, 303) and "/login" in ended.headers["Location"]
    assert resetting_browser.get("/orders").status_code == 200  # the browser that reset is signed in
    login(other_browser, email, NEW_PASSWORD)
    assert other_browser.get("/orders").status_code == 200


@pytest.fixture
def limited_client(app, database_url):
    """A second app with rate limits on (the limiter object is shared: restore it after)."""
    with rate_limited_client(database_url, RESET_RATE_LIMIT="3 per minute",
                             RESET_PER_ADDRESS_RATE_LIMIT="2 per minute") as client:
        yield client


def test_asking_for_resets_is_rate_limited_per_address_and_per_client(limited_client, factory):
    user = factory.user()
    assert [ask_for_reset(limited_client, user.email).status_code for _ in range(3)] == [200, 200, 429]
    # Another address from the same client: one more under the per-client limit, then refused.
    assert ask_for_reset(limited_client, "someone-else@example.com").status_code == 200
    refused = ask_for_reset(limited_client, "third@example.com")
    assert refused.status_code == 429 and "Retry-After" in refused.headers


def test_sign_up_sends_a_verification_link_that_verifies(client, session):
    token = form_token(client, "/register")
    response = client.post("/register", data={"name": "Vera", "email": "vera@example.com", "password": PASSWORD,
                                              "csrf_token": token})
    assert response.status_code == 303
    mail = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "verify_email")).one()
    assert mail.recipient == "vera@example.com" and "Confirm your e-mail address" in mail.subject
    link = re.search(r"http://tickets\.test(/verify/\S+)", mail.body).group(1)
    assert session.scalars(select(User)).one().email_verified_at is None
    assert client.get(link).status_code == 303
    session.expire_all()
    assert session.scalars(select(User)).one().email_verified_at is not None
    assert client.get(link[:-3] + "xyz").status_code == 400


def test_a_reset_revokes_the_accounts_api_tokens_and_says_so(client, session, factory, caplog):
    from sqlalchemy import text

    from webapp.models import AuditLog
    from webapp.services.people import api_tokens

    user, other = factory.user(), factory.user()
    secrets = [api_tokens.create(session, user_id=user.id, is_admin=False, name=f"script {n}", scope="buyer").secret
               for n in range(2)]
    kept = api_tokens.create(session, user_id=other.id, is_admin=False, name="theirs", scope="buyer").secret
    session.commit()
    assert client.get("/api/v1/orders", headers={"Authorization": f"Bearer {secrets[0]}"}).status_code == 200

    ask_for_reset(client, user.email)
    with caplog.at_level("INFO", logger="webapp.auth.recovery"):
        done = set_password(client, reset_link(session, user.email))
    assert done.status_code == 303
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "your 2 API tokens were revoked" in page

    for secret in secrets:
        refused = client.get("/api/v1/orders", headers={"Authorization": f"Bearer {secret}"})
        assert refused.status_code == 401 and "revoked" in refused.get_json()["detail"]
    assert client.get("/api/v1/orders", headers={"Authorization": f"Bearer {kept}"}).status_code == 200
    session.expire_all()
    entry = session.scalars(select(AuditLog).where(AuditLog.action == "account.password_reset")).one()
    assert (entry.actor_id, entry.entity_id, entry.after) == (user.id, user.id, {"api_tokens_revoked": 2})
    [logged] = [r for r in caplog.records if r.getMessage() == "account.password_reset"]
    assert (logged.user_id, logged.api_tokens_revoked) == (user.id, 2)
    live = session.execute(text("SELECT count(*) FROM api_tokens WHERE user_id = :u AND revoked_at IS NULL"),
                           {"u": user.id}).scalar_one()
    assert live == 0


def test_a_reset_with_no_tokens_says_nothing_of_them(client, session, factory):
    user = factory.user()
    ask_for_reset(client, user.email)
    done = set_password(client, reset_link(session, user.email))
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Your password is changed. Every other browser signed in to your account is logged out." in page
    assert "revoked" not in page
