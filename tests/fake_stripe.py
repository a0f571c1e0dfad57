"""The fake Stripe the Stripe tests run against, and a proxy in front of it that can be told to misbehave.

`fake_stripe` starts `python -m webapp.fakestripe` (localstripe) on loopback
once per test session, as the e2e tests start the SMTP catcher. `StripeProxy`
forwards to it and records what it was sent; a test can make it hold an
answer back (Stripe slow), answer 500 without forwarding (Stripe down), or
forward and then drop the connection without answering (Stripe charged, we
never heard).
"""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "sk_test_ticketbooth"
PUBLISHABLE_KEY = "pk_test_ticketbooth"


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the fake Stripe exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("the fake Stripe did not start")


@pytest.fixture(scope="session")
def fake_stripe(tmp_path_factory):
    """The fake Stripe's base URL (http://127.0.0.1:<port>)."""
    port = free_port()
    log = (tmp_path_factory.mktemp("fake-stripe") / "localstripe.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "webapp.fakestripe", "--port", str(port)], cwd=ROOT,
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def payment_method(base: str, number: str = "4242424242424242") -> str:
    """A PaymentMethod made as the buyer's browser makes it (Stripe.js, publishable key); its id."""
    answer = requests.post(f"{base}/v1/payment_methods", data={
        "key": PUBLISHABLE_KEY, "type": "card", "card[number]": number, "card[exp_month]": "12",
        "card[exp_year]": "2039", "card[cvc]": "123"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["id"]


def intent(base: str, intent_id: str) -> dict:
    """The intent as Stripe has it, its latest charge expanded."""
    answer = requests.get(f"{base}/v1/payment_intents/{intent_id}", params={"expand[]": "latest_charge"},
                          auth=(SECRET_KEY, ""), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


class StripeProxy:
    """Loopback HTTP proxy to the fake Stripe; `fault(path_part, mode, seconds)` makes matching calls misbehave.

    Modes: "slow" (forward, answer after `seconds`), "500" (answer 500, never forward), "drop" (forward, then
    close the connection with no answer). A fault applies once.
    """

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.seen: list[tuple[str, str, str | None]] = []  # (method, path, Idempotency-Key)
        self.bearers: list[tuple[str, str]] = []  # (path, the secret key it was sent with)
        self.faults: list[tuple[str, str, float]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy.seen.append((self.command, self.path, self.headers.get("Idempotency-Key")))
                proxy.bearers.append((self.path, self.headers.get("Authorization", "").removeprefix("Bearer ")))
                fault = proxy._take_fault(self.path)
                if fault and fault[1] == "500":
                    self._answer(500, b'{"error": {"type": "api_error", "message": "boom"}}')
                    return
                answer = requests.request(self.command, proxy.upstream + self.path, data=body, timeout=30,
                                          headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
                if fault and fault[1] == "slow":
                    time.sleep(fault[2])
                if fault and fault[1] == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self._answer(answer.status_code, answer.content)

            def _answer(self, status: int, body: bytes):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _take_fault(self, path: str):
        for fault in self.faults:
            if fault[0] in path:
                self.faults.remove(fault)
                return fault
        return None

    def fault(self, path_part: str, mode: str, seconds: float = 0) -> None:
        self.faults.append((path_part, mode, seconds))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stripe_proxy(fake_stripe):
    proxy = StripeProxy(fake_stripe)
    yield proxy
    proxy.close()
