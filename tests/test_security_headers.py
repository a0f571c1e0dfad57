"""Headers on every response: a script policy with no inline exception, no framing,
no sniffing, a referrer policy, HSTS over HTTPS; tickets and orders never cached;
the container's session cookie is Secure."""
from __future__ import annotations

import re

from tests.support import buy, login, reserve_general
from webapp.launcher import ROOT

TEMPLATES = ROOT / "webapp" / "templates"


def test_every_response_carries_the_security_headers(client, factory):
    event = factory.ga_event()
    for url in ("/", f"/events/{event.id}", "/login", "/no-such-page", "/static/app.css", "/healthz"):
        response = client.get(url)
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        assert "frame-ancestors 'none'" in policy and "unsafe-eval" not in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert "Strict-Transport-Security" not in response.headers  # plain http: HSTS would mean nothing


def test_hsts_is_sent_over_https_and_behind_a_trusted_proxy(app, database_url, client):
    assert "max-age=" in client.get("/", base_url="https://shop.example").headers["Strict-Transport-Security"]
    from config import TestConfig
    from webapp import create_app

    proxied = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "PROXY_FIX_HOPS": 1}, config_class=TestConfig)
    answer = proxied.test_client().get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" in answer.headers


def test_no_template_has_inline_script_handlers_or_style_elements():
    inline = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style|\son[a-z]+\s*=|\shx-on[:-]|hx-vals=['\"]js:|"
                        r"hx-trigger=\"[^\"]*\[")
    offenders = [f"{path.relative_to(ROOT)}: {m.group(0)}" for path in TEMPLATES.rglob("*.html")
                 for m in inline.finditer(path.read_text())]
    assert not offenders, offenders


def test_htmx_is_told_not_to_inject_styles_or_eval(client):
    page = client.get("/").get_data(as_text=True)
    assert '"includeIndicatorStyles":false' in page and '"allowEval":false' in page


def test_ticket_order_and_hold_pages_are_never_stored(client, factory, session):

    event = factory.ga_event(capacity=5)
    tier = factory.tier(event)
    buyer = factory.user()
    order = buy(session, event, buyer, quantities={tier.id: 1})
    hold = reserve_general(session, user_id=buyer.id, event_id=event.id, quantities={tier.id: 1})
    session.commit()
    login(client, buyer.email)
    ticket = order.tickets[0]
    for url in ("/orders", f"/orders/{order.id}", f"/orders/{order.id}/tickets/{ticket.id}", f"/holds/{hold.id}"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == "no-store", url
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")


def test_the_container_sends_the_session_cookie_only_over_https():
    dockerfile = (ROOT / "Dockerfile").read_text()
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "SESSION_COOKIE_SECURE=1" in dockerfile
    assert "SESSION_COOKIE_SECURE: ${SESSION_COOKIE_SECURE:-1}" in compose


def test_a_secure_cookie_app_marks_the_session_cookie_secure(database_url, factory):
    from config import TestConfig
    from webapp import create_app

    secure = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SESSION_COOKIE_SECURE": True},
                        config_class=TestConfig)
    client = secure.test_client()
    response = client.get("/login", base_url="https://shop.example")
    assert "Secure" in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]
