"""deploy/nginx/ticketbooth.conf in front of the app, with Debian's nginx: the waiting room's crowd answered from
its one-second cache, the crowd's own requests on the room's app processes, the people let in on the shop's.

nginx runs as the site file says, with only the upstreams' ports, its two servers' addresses, a self-signed
certificate and the cache's folder put in for the test (`tests.load.harness.Nginx`, by deploy/cluster/cluster.py's
own rendering; the benchmark's `--nginx` runs use it too). The same site answers over TLS, with HSTS, and tells the
app the request came over https.
"""
from __future__ import annotations

import asyncio
import os
import ssl
import time
import urllib.error
import urllib.request

import pytest

from tests.load.client import Browser
from tests.load.harness import Data, Nginx, Stack, minted_browsers, nginx_binary
from webapp.security import HSTS

pytestmark = pytest.mark.slow

def _needs_nginx() -> None:
    """Skip where nginx is not installed; in CI a missing nginx is a broken install step, never a skip."""
    if nginx_binary() is None:
        message = "nginx is not installed (./run-tests installs Debian's nginx)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def behind_nginx(app, database_url, tmp_path, monkeypatch):
    _needs_nginx()
    monkeypatch.setenv("ACCESS_LOG", "1")  # gunicorn's command line: which processes served what
    stack = Stack(database_url, workers=1, threads=4, sweep=False, room_pool=True, log_dir=tmp_path / "logs",
                  env={"PROXY_FIX_HOPS": "1"}).start()
    nginx = Nginx(stack, tmp_path / "nginx", connections=256).start()
    data = Data(database_url, stack.secret_key)
    yield stack, data, nginx.port, nginx.tls_port, nginx.certificate
    nginx.stop()
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
    # The waiting room's page came from its own processes; the one now.json that reached the app (the cache's
    # refresh) and the event page (a redirect to the waiting room) from the shop's, never queued behind the
    # crowd's joins; gunicorn's access lines say which served what.
    assert seen["page"].status == 200 and "waiting-room-status" in seen["page"].text
    assert seen["event"].status == 303
    # gunicorn writes an access line after its answer has gone: give the last one a moment to land.
    for _ in range(50):
        room_log, shop_log = stack.room.log_path.read_text(), stack.instances[0].log_path.read_text()
        if f"GET /events/{event_id} HTTP" in shop_log:
            break
        time.sleep(0.1)
    assert shop_log.count(f"/events/{event_id}/waiting-room/now.json") == 1 and "now.json" not in room_log
    assert f"GET /events/{event_id}/waiting-room HTTP" in room_log
    assert f"GET /events/{event_id}/waiting-room HTTP" not in shop_log
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


def test_what_the_people_let_in_ask_goes_to_the_shops_processes_and_the_crowds_joins_to_the_rooms(behind_nginx):
    stack, data, port, _, _ = behind_nginx
    event_id, _ = data.ga_event(10, title="Routed by who asks")
    data.waiting_room(event_id, rate=60)
    base = f"/events/{event_id}/waiting-room"

    logs = {"room": stack.room.log_path, "shop": stack.instances[0].log_path}

    def access_lines() -> dict[str, int]:
        return {pool: sum(1 for line in path.read_text().splitlines() if "/waiting-room" in line)
                for pool, path in logs.items()}

    async def served_by(ask) -> str:
        # One request at a time; its access line says which pool answered (the lines carry no query string:
        # a query may hold a secret, webapp/gunicorn_conf.py).
        before = access_lines()
        await ask
        for _ in range(50):
            grew = [pool for pool, count in access_lines().items() if count > before[pool]]
            if grew:
                return "+".join(grew)
            await asyncio.sleep(0.1)
        return "nobody"

    async def visit() -> dict[str, str]:
        crowd, let_in = Browser("127.0.0.1", port), Browser("127.0.0.1", port)
        let_in.cookies[f"tb_pass_{event_id}"] = "a-pass"  # which process serves it is not a check of the pass
        seen = {
            "a page asking for its number": await served_by(crowd.get(f"{base}/status", htmx=True)),
            "a page whose number came up": await served_by(crowd.get(f"{base}/status?turn=7", htmx=True)),
            "a page holding a pass": await served_by(let_in.get(base)),
            "a join holding a pass": await served_by(let_in.post(f"{base}/join", {})),
            "the mailed link": await served_by(crowd.get(f"{base}/turn/a-mailed-link")),
        }
        await crowd.close()
        await let_in.close()
        return seen

    assert asyncio.run(visit()) == {
        "a page asking for its number": "room",
        "a page whose number came up": "shop",
        "a page holding a pass": "shop",
        "a join holding a pass": "room",  # a join is the crowd's, whatever it holds
        "the mailed link": "shop",
    }


def test_a_burst_of_joins_waits_in_nginx_at_the_rooms_pace_and_past_the_line_is_told_to_come_back(app, database_url,
                                                                                                 tmp_path):
    _needs_nginx()
    stack = Stack(database_url, workers=1, threads=4, sweep=False, room_pool=True, log_dir=tmp_path / "logs",
                  env={"PROXY_FIX_HOPS": "1"}).start()
    # Five joins a second, three may wait: eight at once.
    nginx = Nginx(stack, tmp_path / "nginx", connections=256, join_pace=(5, 3)).start()
    data = Data(database_url, stack.secret_key)
    try:
        event_id, _ = data.ga_event(10, title="A burst of joins")
        data.waiting_room(event_id, rate=60)

        async def join(browser: Browser) -> tuple[float, object]:
            started = time.monotonic()
            answer = await browser.post(f"/events/{event_id}/waiting-room/join", {}, htmx=True)
            await browser.close()
            return time.monotonic() - started, answer

        buyers = minted_browsers([("127.0.0.1", nginx.port)], data.minted_sessions(data.create_buyers(8, "burst")))

        async def burst():
            return await asyncio.gather(*(join(browser) for browser in buyers))

        answers = asyncio.run(burst())
        passed = sorted(seconds for seconds, a in answers if a.status == 200)
        told = [a for _, a in answers if a.status == 503]
        # One at once and three held back, a fifth of a second apart: none lost, none a 502 or 504.
        assert len(passed) == 4 and len(told) == 4
        assert passed[-1] >= 3 * 0.2 - 0.05
        for answer in told:
            assert answer.headers["retry-after"] == "10" and "try again in a few seconds" in answer.text
        # Each join that went through has its place; the ones told to come back have none.
        assert len(data.waiting_room_places(event_id)) == 4
    finally:
        nginx.stop()
        data.dispose()
        stack.stop()
