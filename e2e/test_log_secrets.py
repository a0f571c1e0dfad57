"""The e2e server's own log, written as production writes it (JSON lines at INFO and gunicorn's access log), after
a journey that carries every kind of secret through it: the password typed at sign-up, a declined and a good
card number, an API token made in the browser and used, a password reset link followed. None is in the log;
each request of the journey is (the search would prove nothing on a log that said nothing). The whole session's
log is searched the same way when the server stops (e2e/conftest.py)."""
from __future__ import annotations

import json
import re
import time

from playwright.sync_api import Page, expect
from sqlalchemy import select

from e2e.conftest import server_log
from e2e.helpers import DECLINED_CARD, GOOD_CARD, pay, register, secrets_in_log
from webapp.models import OutboxMessage

NEW_PASSWORD = "a-new-passphrase-nobody-logs"


def test_the_servers_log_holds_none_of_the_secrets_that_went_through_it(page: Page, base_url, session, factory):
    event = factory.ga_event(capacity=10, title="Log Hygiene Night")
    email = register(page)

    page.goto(f"/events/{event.id}")
    page.get_by_role("button", name="One more Tier 1 ticket").click()
    expect(page.get_by_label("Number of Tier 1 tickets")).to_have_value("1")
    page.get_by_role("button", name="Reserve tickets").click()
    expect(page.get_by_role("heading", name="Your reservation")).to_be_visible()
    pay(page, DECLINED_CARD)
    expect(page.get_by_role("alert")).to_contain_text("Your card was declined")
    pay(page, GOOD_CARD)
    expect(page.get_by_text("Payment approved")).to_be_visible()

    page.goto("/account/tokens")
    page.get_by_label("Name").fill("log check")
    page.get_by_role("button", name="Make token").click()
    token = page.locator("#new-token").input_value()
    assert token.startswith("tb_")
    used = page.request.get(f"{base_url}/api/v1/events", headers={"Authorization": f"Bearer {token}",
                                                                    "X-Request-ID": "log-secrets-api-1"})
    assert used.status == 200

    page.get_by_role("button", name="Log out").click()
    page.goto("/password/forgot")
    page.get_by_label("E-mail").fill(email)
    page.get_by_role("button", name="Send the link").click()
    session.expire_all()
    body = session.scalars(select(OutboxMessage.body).where(OutboxMessage.recipient == email,
                                                            OutboxMessage.template == "password_reset")).one()
    reset_path = re.search(r"https?://[^/\s]+(/password/reset/\S+)", body).group(1)
    page.goto(reset_path)
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_label("Repeat it").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set the new password").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()

    # gunicorn writes a request's access line once its answer has gone: give the last one a moment.
    for _ in range(50):
        log = server_log()
        if "/password/reset/<token>" in log and log.count("log-secrets-api-1") >= 1:
            break
        time.sleep(0.1)
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    routes = {line.get("route") for line in lines if line.get("message") == "request"}
    assert {"auth.register_post", "account.token_create", "auth.reset_password_post"} <= routes, routes
    assert any(line.get("request_id") == "log-secrets-api-1" and line.get("status") == 200 for line in lines)
    assert 'POST /password/reset/<token> HTTP/1.1" 303' in log  # gunicorn's own line, the token left out
    assert secrets_in_log(log, {"token": token, "token without its prefix": token[3:], "new password": NEW_PASSWORD,
                                "reset link": reset_path}) == {}
