"""End-to-end fixtures: the app served by gunicorn, as in production, and
Debian's Chromium driven by Playwright.

The server and the sweep run as subprocesses against the same throwaway
database as the rest of the suite; tests create their data with the factory.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from e2e.helpers import secrets_in_log
from tests.support import free_port
from webapp.launcher import ROOT, gunicorn_command, wait_until_healthy

ARTIFACTS = ROOT / "artifacts"


def chromium_path() -> str:
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/lib/chromium/chromium", "/usr/bin/chromium",
                      shutil.which("chromium") or None):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("Chromium is missing: ./run-tests installs Debian's chromium package.")


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def dev_mail_dir(tmp_path_factory):
    """Where the e2e stack's SMTP catcher keeps what it receives."""
    return tmp_path_factory.mktemp("caught-mail")


@pytest.fixture(scope="session")
def live_server(app, database_url, dev_mail_dir):
    """gunicorn (2 gthread workers), the sweep, and mail: the worker sending to a local catcher."""
    port, smtp_port = free_port(), free_port()
    env = dict(
        os.environ, DATABASE_URL=database_url, SECRET_KEY="e2e-secret-key", FLASK_APP="wsgi.py",
        # Logged as production logs (JSON lines at INFO, gunicorn's access log too): searched for secrets below.
        RATELIMIT_ENABLED="0", GATEWAY_SLOW_SECONDS="2", LOG_LEVEL="INFO",
        SMTP_URL=f"smtp://127.0.0.1:{smtp_port}", DEV_MAIL_DIR=str(dev_mail_dir),
        PUBLIC_URL=f"http://127.0.0.1:{port}",
    )
    log = open(ARTIFACTS.mkdir(exist_ok=True) or ARTIFACTS / "e2e-server.log", "w")
    web = subprocess.Popen(gunicorn_command("127.0.0.1", port, workers=2, threads=4, access_log=True), cwd=ROOT,
                           env=env, stdout=log, stderr=subprocess.STDOUT)
    sweep = subprocess.Popen([sys.executable, "-m", "flask", "sweep", "--interval", "0.5"], cwd=ROOT, env=env,
                             stdout=log, stderr=subprocess.STDOUT)
    catcher = subprocess.Popen([sys.executable, "-m", "webapp.mailcatcher", "--port", str(smtp_port),
                                "--dir", str(dev_mail_dir)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    mailer = subprocess.Popen([sys.executable, "-m", "flask", "deliver-mail", "--interval", "0.5"], cwd=ROOT,
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        # Generous: on a busy shared runner the workers' start (imports, catalogs) can take most of a minute;
        # a healthy server answers at once, so this only decides how long a broken one takes to be reported.
        if not wait_until_healthy(base + "/healthz", timeout=120):
            pytest.fail(f"live server did not start; see {ARTIFACTS / 'e2e-server.log'}")
        yield base
    finally:
        for proc in (web, sweep, catcher, mailer):
            proc.terminate()
        for proc in (web, sweep, catcher, mailer):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
    # Everything the end-to-end tests typed, paid with and were sent went through these processes.
    if leaked := secrets_in_log(server_log()):
        pytest.fail(f"the e2e server's log holds secrets: {leaked}")


def server_log() -> str:
    return (ARTIFACTS / "e2e-server.log").read_text(errors="replace")


@pytest.fixture(scope="session")
def base_url(live_server):
    return live_server


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": chromium_path(),
        "args": [*browser_type_launch_args.get("args", []), "--disable-gpu", "--disable-quic",
                 "--disable-dev-shm-usage"],
    }


@pytest.fixture
def shot(page, request):
    """Save a named screenshot under artifacts/screenshots/."""
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)

    def take(name: str, target=None, full_page: bool = True):
        path = folder / f"{name}.png"
        (target or page).screenshot(path=str(path), **({"full_page": full_page} if target is None else {}))
        return path

    return take


@pytest.fixture(autouse=True)
def _no_csp_violations(request):
    """Every browser test fails on a Content-Security-Policy violation in its page's console."""
    if "page" not in request.fixturenames:
        yield
        return
    page = request.getfixturevalue("page")
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    yield
    assert not violations, violations
