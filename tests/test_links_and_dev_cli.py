"""Behind proxies the app sees real client addresses; in a dev checkout `flask …` finds its own database."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import csrf_token, rate_limited_client
from webapp.launcher import ROOT


@pytest.fixture
def proxied_client(app, database_url):
    """An app behind one proxy hop, with a login limit of one per minute per client address."""
    with rate_limited_client(database_url, LOGIN_RATE_LIMIT="1 per minute", PROXY_FIX_HOPS=1) as client:
        yield client


def test_rate_limits_key_on_the_client_the_trusted_proxy_names(proxied_client):
    token = csrf_token(proxied_client, "/login")

    def attempt(client_address: str, forged: str = "") -> int:
        chain = f"{forged}, {client_address}" if forged else client_address
        return proxied_client.post("/login", data={"email": "x@example.com", "password": "wrong-password",
                                                   "csrf_token": token},
                                   headers={"X-Forwarded-For": chain}).status_code

    assert attempt("203.0.113.7") == 400
    assert attempt("198.51.100.9") == 400  # another client behind the same proxy: its own limit
    assert attempt("203.0.113.7") == 429
    # A client cannot escape its limit by adding its own X-Forwarded-For entry: one hop is trusted.
    assert attempt("203.0.113.7", forged="192.0.2.1") == 429


def test_flask_commands_in_a_dev_checkout_find_the_embedded_database(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY", "FLASK_APP")}
    env["TICKETBOOTH_DEVDATA"] = str(tmp_path / "devdata")

    def flask(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)

    upgraded = flask("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    made = flask("create-admin", "boss@example.com", "--password", "a-long-admin-passphrase")
    assert made.returncode == 0, made.stderr
    assert "boss@example.com is an admin." in made.stdout
    assert (tmp_path / "devdata" / "pg").is_dir() and (tmp_path / "devdata" / "secret_key").is_file()
