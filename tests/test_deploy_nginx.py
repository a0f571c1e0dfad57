"""deploy/nginx/ticketbooth.conf in front of the app, with Debian's nginx: the waiting room's crowd answered from
its one-second cache, the waiting room's URLs on their own app processes, everything else on the shop's.

nginx runs as the site file says, with only the upstreams' ports, its two servers' addresses, a self-signed
certificate and the cache's folder put in for the test (by deploy/cluster/cluster.py's own rendering). The
same site answers over TLS, with HSTS, and tells the app the request came over https.
"""
from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.load.client import Browser
from tests.load.harness import Data, Stack, free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy" / "cluster"))

import cluster  # noqa: E402

from webapp.security import HSTS  # noqa: E402


@pytest.fixture
def nginx_binary():
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None:
        message = "nginx is not installed (./run-tests installs Debian's nginx)"
        import os

        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


@pytest.fixture
def behind_nginx(app, database_url, tmp_path, nginx_binary, monkeypatch):
    monkeypatch.setenv("ACCESS_LOG", "1")  # gunicorn's command line: which processes served what
    stack = Stack(database_url, workers=1, threads=4, sweep=False, room_pool=True, log_dir=tmp_path / "logs",
                  env={"PROXY_FIX_HOPS": "1"}).start()
    port, tls_port = free_port(), free_port()
    (tmp_path / "tls").mkdir()
    certificate, key = cluster.self_signed_certificate(tmp_path / "tls", "127.0.0.1")
    site = cluster.nginx_site(shop=[f"127.0.0.1:{stack.instances[0].port}"], room=[f"127.0.0.1:{stack.room.port}"],
                              listen=f"127.0.0.1:{port}", tls_listen=f"127.0.0.1:{tls_port}",
                              certificate=str(certificate), key=str(key), cache_dir=str(tmp_path / "cache"))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(f"""
        user root;
        worker_processes 1;
        pid {tmp_path}/nginx.pid;
        error_log {tmp_path}/error.log;
        events {{ worker_connections 256; }}
        http {{
            access_log off;
            client_body_temp_path {tmp_path}/body;
            proxy_temp_path {tmp_path}/proxy;
            fastcgi_temp_path {tmp_path}/fastcgi;
            uwsgi_temp_path {tmp_path}/uwsgi;
            scgi_temp_path {tmp_path}/scgi;
            include {tmp_path}/site.conf;
        }}""")
    process = subprocess.Popen([nginx_binary, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                                "-g", "daemon off;"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not (tmp_path / "nginx.pid").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"nginx did not start: {process.stderr.read().decode()}")
        time.sleep(0.05)
    data = Data(database_url, stack.secret_key)
    yield stack, data, port, tls_port, certificate
    process.terminate()
    process.wait(timeout=10)
    data.dispose()
    stack.stop()


def test_the_crowd_is_answered_from_nginx_and_the_room_goes_to_its_own_processes(behind_nginx):
    stack, data, port, _, _ = behind_nginx
    event_id, _ = data.ga_event(10, title="Behind nginx")
    data.waiting_room(event_id, rate=60)

    async def visit() -> dict:
        browser = Browser("127.0.0.1", port)
        url = f"/events/{event_id}/waiting-room/now.json"
        first, second = await browser.get(url), await browser.get(url)
        page = await browser.get(f"/events/{event_id}/waiting-room")
        event = await browser.get(f"/events/{event_id}")
        await browser.close()
        return {"first": first, "second": second, "page": page, "event": event}

    seen = asyncio.run(visit())
    first, second = seen["first"], seen["second"]
    assert first.status == second.status == 200 and first.body == second.body
    assert first.headers["x-cache-status"] == "MISS" and second.headers["x-cache-status"] == "HIT"
    assert first.headers["cache-control"] == "public, max-age=1"
    # The waiting room's page and its one now.json came from its own processes, the event page (a redirect to
    # the waiting room) from the shop's; gunicorn's access lines say which served what.
    assert seen["page"].status == 200 and "waiting-room-status" in seen["page"].text
    assert seen["event"].status == 303
    # gunicorn writes an access line after its answer has gone: give the last one a moment to land.
    for _ in range(50):
        room_log, shop_log = stack.room.log_path.read_text(), stack.instances[0].log_path.read_text()
        if f"GET /events/{event_id} HTTP" in shop_log:
            break
        time.sleep(0.1)
    assert room_log.count(f"/events/{event_id}/waiting-room/now.json") == 1
    assert f"GET /events/{event_id}/waiting-room HTTP" in room_log and "/waiting-room" not in shop_log
    assert f"GET /events/{event_id} HTTP" in shop_log
    assert stack.server_errors() == []


def test_nginx_terminates_tls_and_tells_the_app_it_was_https(behind_nginx):
    stack, _, port, tls_port, certificate = behind_nginx
    trusted = ssl.create_default_context(cafile=str(certificate))
    with urllib.request.urlopen(f"https://127.0.0.1:{tls_port}/healthz", context=trusted, timeout=10) as answer:
        assert answer.status == 200
        # HSTS comes from the app, which adds it only when the request came over https (X-Forwarded-Proto,
        # trusted with PROXY_FIX_HOPS=1): once, nginx adding none of its own.
        assert answer.headers.get_all("Strict-Transport-Security") == [HSTS]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as plain:
        assert plain.status == 200 and plain.headers.get("Strict-Transport-Security") is None
    # Only a client that trusts the certificate gets through: it is the one nginx was given.
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(f"https://127.0.0.1:{tls_port}/healthz", context=ssl.create_default_context(),
                               timeout=10)
    assert stack.server_errors() == []
