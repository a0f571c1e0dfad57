"""Paying with Stripe's card element, in a real browser, against the fake Stripe (localstripe and its Stripe.js).

The app runs with PAYMENT_GATEWAY=stripe under gunicorn, beside the fake
Stripe; the card is typed into the card element's fields, which belong to
the Stripe script (our page has no card field), and our server only sees the
PaymentMethod id. A declined card first, then a good one.
"""
from __future__ import annotations

import os
import subprocess

import pytest
from playwright.sync_api import Page, expect

from e2e.conftest import ARTIFACTS, ROOT
from e2e.helpers import register
from tests.fake_stripe import PUBLISHABLE_KEY, SECRET_KEY, fake_stripe  # noqa: F401
from tests.support import free_port
from webapp.launcher import gunicorn_command, wait_until_healthy


@pytest.fixture(scope="session")
def stripe_live_server(app, database_url, fake_stripe):  # noqa: F811
    """A live server of its own, with Stripe as the gateway (the e2e stack's server keeps the simulated one)."""
    port = free_port()
    env = dict(os.environ, DATABASE_URL=database_url, SECRET_KEY="e2e-secret-key", FLASK_APP="wsgi.py",
               RATELIMIT_ENABLED="0", LOG_LEVEL="WARNING", PUBLIC_URL=f"http://127.0.0.1:{port}",
               PAYMENT_GATEWAY="stripe", STRIPE_SECRET_KEY=SECRET_KEY, STRIPE_PUBLISHABLE_KEY=PUBLISHABLE_KEY,
               STRIPE_API_BASE=fake_stripe, STRIPE_JS_URL=f"{fake_stripe}/js.stripe.com/v3/",
               STRIPE_WEBHOOK_SECRET="whsec_e2e")
    log = open(ARTIFACTS.mkdir(exist_ok=True) or ARTIFACTS / "e2e-stripe-server.log", "w")
    web = subprocess.Popen(gunicorn_command("127.0.0.1", port, workers=1, threads=4), cwd=ROOT, env=env,
                           stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_healthy(base + "/healthz", timeout=30):
            pytest.fail(f"live server did not start; see {ARTIFACTS / 'e2e-stripe-server.log'}")
        yield base
    finally:
        web.terminate()
        try:
            web.wait(timeout=10)
        except subprocess.TimeoutExpired:
            web.kill()
        log.close()


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args, stripe_live_server):
    """This module's pages open on the Stripe server (pytest-playwright's own fixture, extended)."""
    return {**browser_context_args, "base_url": stripe_live_server}


def _type_card(page: Page, number: str) -> None:
    element = page.locator("#card-element")
    element.locator("input[placeholder=number]").fill(number)
    element.locator("input[placeholder=exp_month]").fill("12")
    element.locator("input[placeholder=exp_year]").fill("39")
    element.locator("input[placeholder=cvc]").fill("123")
    element.locator("input[placeholder=postal_code]").fill("75001")


def test_pay_with_the_card_element_after_a_decline(page: Page, factory, shot):
    factory.ga_event(capacity=20, title="Stripe Night")
    register(page)
    page.goto("/")
    page.get_by_role("link", name="Stripe Night").click()
    page.get_by_label("Number of Tier 1 tickets").fill("2")
    page.get_by_role("button", name="Reserve tickets").click()
    expect(page.get_by_role("heading", name="Your reservation")).to_be_visible()
    expect(page.locator("#card-element input")).to_have_count(5)  # mounted by Stripe's script
    expect(page.locator("input[name=number]")).to_have_count(0)  # no card field of ours
    _type_card(page, "4000000000000341")
    shot("stripe-hold-page")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("alert").first).to_contain_text("declined")
    _type_card(page, "4242424242424242")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("heading", name="Order #")).to_be_visible()
    expect(page.get_by_text("Payment approved")).to_be_visible()
    shot("stripe-paid")


def test_three_d_secure_is_finished_in_the_browser_and_settled_by_the_server(page: Page, factory, shot):
    """The card asks for 3-D Secure: the hold page hands the client secret to Stripe.js, whose (fake) bank
    dialog is completed; the page then posts back and our server settles from Stripe's word."""
    factory.ga_event(capacity=20, title="Secure Night")
    register(page, name="Sam Secure")
    page.goto("/")
    page.get_by_role("link", name="Secure Night").click()
    page.get_by_label("Number of Tier 1 tickets").fill("1")
    page.get_by_role("button", name="Reserve tickets").click()
    _type_card(page, "4000002500003155")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_text("Your bank asks you to confirm this payment")).to_be_visible()
    shot("stripe-3ds")
    page.get_by_role("button", name="Complete authentication").click()
    expect(page.get_by_role("heading", name="Order #")).to_be_visible()
    expect(page.get_by_text("Payment approved")).to_be_visible()
