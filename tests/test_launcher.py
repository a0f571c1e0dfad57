"""The start-up script that the container runs (and ./run-app wraps), exercised outside Docker."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

import psutil
import pytest
from sqlalchemy import create_engine, text

from tests.support import free_port
from webapp.launcher import ROOT, wait_until_healthy

pytestmark = pytest.mark.slow


def start(mode: str, url: str, port: int, *extra: str, **settings: str) -> subprocess.Popen:
    # The dev stack's mail catcher defaults to the web port + 25, which may be
    # taken on a busy machine: a port of its own, found free like the web's.
    env = dict(os.environ, DATABASE_URL=url.replace("postgresql+psycopg2://", "postgresql://"),
               SECRET_KEY="launcher-test-secret", LOG_LEVEL="WARNING", DEV_SMTP_PORT=str(free_port()), **settings)
    return subprocess.Popen(
        [sys.executable, "-m", "webapp.launcher", mode, "--port", str(port), "--workers", "1", "--threads", "2",
         *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def stop(proc: subprocess.Popen, sig: int) -> str:
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=30)
    return output


def test_entrypoint_migrates_an_empty_database_then_serves(empty_database):
    port = free_port()
    proc = start("serve", empty_database, port)
    try:
        assert wait_until_healthy(f"http://127.0.0.1:{port}/healthz", timeout=60)
        engine = create_engine(empty_database)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            assert conn.execute(text("SELECT count(*) FROM events")).scalar_one() == 0  # no demo data in production
        engine.dispose()
    finally:
        stop(proc, signal.SIGTERM)
    assert proc.returncode == 0


def test_dev_stack_seeds_demo_data_and_stops_cleanly_on_ctrl_c(empty_database):
    port = free_port()
    proc = start("dev", empty_database, port)
    try:
        assert wait_until_healthy(f"http://127.0.0.1:{port}/healthz", timeout=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            page = response.read().decode()
        assert "Vienna Philharmonic" in page and "Riverside Summer Festival" in page
    finally:
        output = stop(proc, signal.SIGINT)
    assert proc.returncode == 0, output
    assert "Demo buyer: buyer@example.com" in output
    # Every child (gunicorn master and workers, the sweep) is gone.
    bind = f"127.0.0.1:{port}"
    leftover = [p.pid for p in psutil.process_iter(["cmdline"]) if bind in " ".join(p.info["cmdline"] or [])]
    assert leftover == []


def _raw(port: int, head: bytes) -> tuple[int, str, str]:
    """Send a request head as it is; (status, content type, body) of the answer."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head_text, _, body = answer.partition(b"\r\n\r\n")
    lines = head_text.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    return int(lines[0].split()[1]), content_type, body.decode("utf-8", "replace")


def test_gunicorn_lets_the_app_answer_an_oversized_head_as_problem_details(database_url):
    """The launcher's gunicorn limits sit above the app's, so an API client gets problem details, not HTML."""
    from webapp.launcher import gunicorn_command
    from webapp.parsing import MAX_HEADER_BYTES, MAX_HEADER_FIELDS, MAX_TARGET_BYTES

    port = free_port()
    env = dict(os.environ, DATABASE_URL=database_url, SECRET_KEY="launcher-test-secret", LOG_LEVEL="WARNING")
    proc = subprocess.Popen(gunicorn_command("127.0.0.1", port, 1, 2), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until_healthy(f"http://127.0.0.1:{port}/healthz", timeout=60)

        def get(target: str, *headers: str) -> tuple[int, str, str]:
            lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers]
            return _raw(port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

        # Past the app's limits, within gunicorn's: the app's refusal, in the API's terms.
        for answer, status in ((get("/api/v1/events?q=" + "x" * MAX_TARGET_BYTES), 414),
                               (get("/api/v1/events", "X-Big: " + "x" * MAX_HEADER_BYTES), 431),
                               (get("/api/v1/events", *(f"X-H{i}: 1" for i in range(MAX_HEADER_FIELDS))), 431)):
            assert answer[:2] == (status, "application/problem+json"), answer
            assert json.loads(answer[2])["status"] == status
        # Past gunicorn's own (docs/design.md, "Security"): gunicorn answers before there is a request.
        assert get("/api/v1/events?q=" + "x" * 8200)[:2] == (414, "text/html")
        assert get("/api/v1/events", "X-Bad: a\x01b")[:2] == (400, "text/html")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def _wrong_logins_and_sign_ups(launcher_pid: int, port: int) -> tuple[set[int], list[int], list[int]]:
    """Browsers on connections held by at least two web workers, taking turns: 30 wrong logins, 15 bad sign-ups."""
    from tests.load.client import Browser
    from tests.load.harness import HIDDEN_CSRF

    def workers_holding_a_connection() -> set[int]:
        pids = set()
        for process in psutil.Process(launcher_pid).children(recursive=True):
            try:
                if any(c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
                       for c in process.net_connections("tcp")):
                    pids.add(process.pid)
            except psutil.Error:
                pass
        return pids

    browsers: list[Browser] = []
    workers: set[int] = set()
    while len(workers) < 2 and len(browsers) < 30:
        browser = Browser("127.0.0.1", port)
        browser.csrf = HIDDEN_CSRF.search((await browser.get("/login")).text).group(1)
        browsers.append(browser)
        workers |= workers_holding_a_connection()
    logins, sign_ups = [], []
    for n in range(30):
        browser = browsers[n % len(browsers)]
        logins.append((await browser.post("/login", {"email": "nobody@example.com", "password": "wrong-password-1",
                                                      "csrf_token": browser.csrf}, htmx=False)).status)
    for n in range(15):
        browser = browsers[n % len(browsers)]
        sign_ups.append((await browser.post("/register", {"name": "Ann", "email": f"ann{n}@example.com",
                                                          "password": "short", "csrf_token": browser.csrf},
                                            htmx=False)).status)
    for browser in browsers:
        await browser.close()
    return workers, logins, sign_ups


def test_the_dev_stack_counts_rate_limits_across_its_workers(empty_database):
    """./run-app starts a private Redis: 10 logins and 5 sign-ups a minute hold for all its workers together."""
    import asyncio
    import concurrent.futures
    import re

    port = free_port()
    proc = start("dev", empty_database, port, "--workers", "3", "--no-seed",
                 LOGIN_RATE_LIMIT="10 per minute", REGISTER_RATE_LIMIT="5 per minute", RATELIMIT_ENABLED="1")
    try:
        assert wait_until_healthy(f"http://127.0.0.1:{port}/healthz", timeout=60)
        # On a thread of its own: the end-to-end tests' Playwright, when they ran first in this
        # session, leaves an event loop marked running on the main thread.
        with concurrent.futures.ThreadPoolExecutor(1) as thread:
            workers, logins, sign_ups = thread.submit(asyncio.run, _wrong_logins_and_sign_ups(proc.pid, port)
                                                      ).result()
    finally:
        output = stop(proc, signal.SIGINT)
    assert proc.returncode == 0, output
    assert len(workers) >= 2, "every connection went to one worker: the test proves nothing"
    assert logins == [400] * 10 + [429] * 20
    assert sign_ups == [400] * 5 + [429] * 10
    # Its Redis stopped with it.
    redis_port = re.search(r"private Redis at redis://127\.0\.0\.1:(\d+)/", output).group(1)
    leftover = [p.pid for p in psutil.process_iter(["cmdline"])
                if f"redis-server 127.0.0.1:{redis_port}" in " ".join(p.info["cmdline"] or [])]
    assert leftover == []
