"""Steps a buyer takes, shared by the end-to-end tests."""
from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.factories import PASSWORD

_seq = itertools.count(1)
README_SHOTS = Path(__file__).resolve().parent / "screenshots"

GOOD_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"


def register(page: Page, name: str = "Erin Example") -> str:
    email = f"e2e{next(_seq)}-{id(page)}@example.com"
    page.goto("/register")
    page.get_by_label("Name").fill(name)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text(f"Welcome, {name}!")).to_be_visible()
    return email


def log_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def pay(page: Page, card: str, name: str = "Erin Example") -> None:
    page.get_by_label("Name on card").fill(name)
    page.get_by_label("Card number").fill(card)
    page.get_by_label("Expiry (MM/YY)").fill("12/30")
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name="Pay").click()


def readme_shot(page: Page, name: str) -> None:
    """A small, viewport-sized screenshot for the README (committed, so only
    rewritten on request: UPDATE_README_SCREENSHOTS=1)."""
    if os.environ.get("UPDATE_README_SCREENSHOTS") == "1":
        README_SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(README_SHOTS / f"{name}.png"))


# What must never reach a log line: an API token (its shape), a link's secret (its path with anything but the
# rule's "<token>" in the secret's place), a test card number, spaced or not, and the test accounts' password.
_TOKEN_SHAPES = {
    "API token": re.compile(r"tb_[A-Za-z0-9_-]{16,}"),
    "a link's secret": re.compile(
        r"/(?:password/reset|verify|account/invitations|transfers/accept|waiting-room/turn)/(?!<token>)[^\s\"?/]+"),
}
TEST_CARDS = ("4242 4242 4242 4242", "4242 4242 4242 4241", "4000 0000 0000 0002", "4000 0000 0000 0077",
              "4000 0000 0000 0341", "4000 0025 0000 3155")


def secrets_in_log(text: str, more: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Each kind of secret found in a log, with up to two lines that hold it."""
    lines = text.splitlines()
    literal = {"password": PASSWORD, **{f"card {card}": card for card in TEST_CARDS},
               **{f"card {card} unspaced": card.replace(" ", "") for card in TEST_CARDS}, **(more or {})}
    found = {what: [line for line in lines if secret in line][:2] for what, secret in literal.items()
             if secret and secret in text}
    found.update({what: [line for line in lines if shape.search(line)][:2] for what, shape in _TOKEN_SHAPES.items()
                  if shape.search(text)})
    return found
