"""A development checkout finds its own database: `flask …` works with no settings.

`./run-app` keeps its embedded PostgreSQL, secret key and caught mail in
`.devdata/`. When `DATABASE_URL` is not set and this is such a checkout
(pgserver, a development-only package, is installed), `create_app` joins
that same embedded server (starting it if `./run-app` is not running), so
`flask create-admin`, `flask seed-demo` and the rest act on the data the dev
app shows. A container has no pgserver and still insists on DATABASE_URL.

`./run-app` also starts a private Redis when `redis-server` is installed, so
that its gunicorn workers count rate limits together, as production's do.
"""
from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Overridable so a test can use a folder of its own.
DEVDATA = Path(os.environ.get("TICKETBOOTH_DEVDATA") or ROOT / ".devdata")
DEV_SMTP_PORT = 8025


def is_dev_checkout() -> bool:
    return (ROOT / "run-app").exists() and importlib.util.find_spec("pgserver") is not None


def secret_key() -> str:
    DEVDATA.mkdir(exist_ok=True)
    path = DEVDATA / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def mail_settings(smtp_port: int = DEV_SMTP_PORT) -> dict[str, str]:
    """Where the dev stack's mail goes: the local catcher, and the folder it writes."""
    return {"SMTP_URL": f"smtp://127.0.0.1:{smtp_port}", "DEV_MAIL_DIR": str(DEVDATA / "mail")}


def configure() -> dict[str, str]:
    """Settings for a `flask` command run in a dev checkout without DATABASE_URL."""
    from webapp import embedded_pg

    server = embedded_pg.start(DEVDATA / "pg")
    url = embedded_pg.create_database(embedded_pg.url_of(server), "tickets")
    # Keep the handle: the server stops when the last process holding it exits.
    configure.server = server  # type: ignore[attr-defined]
    settings = {"SQLALCHEMY_DATABASE_URI": url}
    if not os.environ.get("SECRET_KEY"):
        settings["SECRET_KEY"] = secret_key()
    for key, value in mail_settings().items():
        if not os.environ.get(key):
            settings[key] = value
    return settings


def start_redis(directory: Path, timeout: float = 10) -> tuple[subprocess.Popen, str] | None:
    """A private redis-server on 127.0.0.1 and its URL, or None when none is installed or it does not start.

    Only for rate limits: nothing is saved, and it stops with the dev stack.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    directory.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly",
                                "no", "--dir", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None and time.monotonic() < deadline:
            try:
                client.ping()
                return process, f"redis://127.0.0.1:{port}/0"
            except redis.exceptions.ConnectionError:
                time.sleep(0.1)
    finally:
        client.close()
    process.kill()
    process.wait()
    return None


FAKE_STRIPE_WEBHOOK_SECRET = "whsec_dev_ticketbooth"


def fake_stripe_settings(port: int) -> dict[str, str]:
    """The Stripe settings of `./run-app --stripe`: the fake Stripe on loopback, test keys, a dev webhook secret."""
    base = f"http://127.0.0.1:{port}"
    return {"PAYMENT_GATEWAY": "stripe", "STRIPE_SECRET_KEY": "sk_test_dev", "STRIPE_PUBLISHABLE_KEY": "pk_test_dev",
            "STRIPE_API_BASE": base, "STRIPE_JS_URL": f"{base}/js.stripe.com/v3/",
            "STRIPE_WEBHOOK_SECRET": FAKE_STRIPE_WEBHOOK_SECRET}


def register_fake_stripe_webhook(port: int, url: str, timeout: float = 90) -> None:
    """Tell the fake Stripe to send its events to our endpoint, as a live account's webhook settings do."""
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.post(f"http://127.0.0.1:{port}/_config/webhooks/ticketbooth",
                          data={"url": url, "secret": FAKE_STRIPE_WEBHOOK_SECRET}, timeout=5).raise_for_status()
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
