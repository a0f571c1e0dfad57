"""Webhooks with a real HTTP receiver on 127.0.0.1: signed, retried, at least once, never for a rollback."""
from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import text

from tests.support import race, reserve_general
from webapp.models import WebhookDelivery
from webapp.services.admin import checkin
from webapp.services.admin import events as admin_events
from webapp.services.admin import orders as admin_orders
from webapp.services.errors import InvalidRequest
from webapp.services.messaging import webhooks
from webapp.services.money.gateway import payment_gateway
from webapp.services.people import api_tokens


class Receiver:
    """An HTTP server that records every request and answers from a script of statuses (then 200)."""

    def __init__(self, tls=None):
        self.requests: list[dict] = []
        self.script: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                with receiver.lock:
                    receiver.requests.append({"headers": dict(self.headers), "body": body})
                    status = receiver.script.pop(0) if receiver.script else 200
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(f"answer {status}".encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(app):
    found = Receiver()
    saved = app.config["WEBHOOK_ALLOWED_HOSTS"]
    app.config["WEBHOOK_ALLOWED_HOSTS"] = ("127.0.0.1",)
    yield found
    app.config["WEBHOOK_ALLOWED_HOSTS"] = saved
    found.close()


def _endpoint(session, admin, url, types=webhooks.EVENT_TYPES, event_id=None):
    endpoint = webhooks.create_endpoint(session, actor_id=admin.id, url=url, event_id=event_id,
                                        event_types=list(types))
    session.commit()
    return endpoint


def test_a_purchase_is_delivered_signed(client, factory, session, receiver):
    admin = factory.user(is_admin=True)
    token = api_tokens.create(session, user_id=admin.id, is_admin=True, name="hooks", scope="admin").secret
    session.commit()
    made = client.post("/api/v1/admin/webhooks", json={"url": receiver.url, "event_types": ["order.confirmed"]},
                       headers={"Authorization": f"Bearer {token}"})
    assert made.status_code == 201, made.get_data(as_text=True)
    secret = made.get_json()["secret"]
    event = factory.ga_event(5)
    order = factory.order(event, factory.user())
    assert webhooks.deliver_once(session).delivered == 1
    [request] = receiver.requests
    body, headers = request["body"], request["headers"]
    assert webhooks.verify(secret, headers["Ticketbooth-Signature"], body)
    assert not webhooks.verify(secret, headers["Ticketbooth-Signature"], body.replace("confirmed", "cancelled"))
    assert not webhooks.verify("whsec_other", headers["Ticketbooth-Signature"], body)
    sent = json.loads(body)
    assert sent["type"] == "order.confirmed" and headers["Ticketbooth-Event"] == "order.confirmed"
    assert sent["data"]["order_id"] == order.id and sent["data"]["total_minor"] == order.total_minor
    log = client.get(f"/api/v1/admin/webhooks/{made.get_json()['id']}/deliveries",
                     headers={"Authorization": f"Bearer {token}"}).get_json()["deliveries"]
    assert log[0]["last_status"] == 200 and log[0]["last_response"] == "answer 200" and log[0]["delivered_at"]
    # Nothing more to send, and a receiver's old signature is refused (replay).
    assert webhooks.deliver_once(session).delivered == 0
    timestamp = int(headers["Ticketbooth-Signature"].split(",")[0][2:])
    assert not webhooks.verify(secret, headers["Ticketbooth-Signature"], body, now=timestamp + 3600)


def test_a_receiver_that_fails_twice_gets_it_on_the_third_try(factory, session, receiver):
    _endpoint(session, factory.user(is_admin=True), receiver.url, ["order.confirmed"])
    receiver.script = [500, 503]
    factory.order(factory.ga_event(2), factory.user())
    first = webhooks.deliver_once(session)
    assert (first.delivered, first.retried) == (0, 1)
    row = session.execute(text("SELECT attempts, last_status, last_response FROM webhook_deliveries")).one()
    assert tuple(row) == (1, 500, "answer 500")
    assert webhooks.deliver_once(session).retried == 1
    assert webhooks.deliver_once(session).delivered == 1
    assert [r["headers"]["Ticketbooth-Delivery"] for r in receiver.requests] == [str(row_id := _only_id(session))] * 3
    assert session.get(WebhookDelivery, row_id).attempts == 3


def _only_id(session) -> int:
    return session.execute(text("SELECT id FROM webhook_deliveries")).scalar_one()


def test_backoff_doubles_and_the_last_attempt_fails_for_good(app, factory, session, receiver):
    _endpoint(session, factory.user(is_admin=True), receiver.url, ["order.confirmed"])
    factory.order(factory.ga_event(2), factory.user())
    receiver.script = [500] * 10
    saved = app.config["WEBHOOK_RETRY_BASE_SECONDS"], app.config["WEBHOOK_MAX_ATTEMPTS"]
    app.config["WEBHOOK_RETRY_BASE_SECONDS"], app.config["WEBHOOK_MAX_ATTEMPTS"] = 30, 3
    try:
        webhooks.deliver_once(session)
        wait = session.execute(text("SELECT extract(epoch FROM next_attempt_at - now()) FROM webhook_deliveries")
                               ).scalar_one()
        assert 25 < wait <= 30
        for expected in (60, 120):
            session.execute(text("UPDATE webhook_deliveries SET next_attempt_at = now()"))
            session.commit()
            result = webhooks.deliver_once(session)
            if expected == 60:
                wait = session.execute(text(
                    "SELECT extract(epoch FROM next_attempt_at - now()) FROM webhook_deliveries")).scalar_one()
                assert result.retried == 1 and 55 < wait <= 60
            else:
                assert result.failed == 1
    finally:
        app.config["WEBHOOK_RETRY_BASE_SECONDS"], app.config["WEBHOOK_MAX_ATTEMPTS"] = saved
    failed = session.execute(text("SELECT failed_at IS NOT NULL, attempts FROM webhook_deliveries")).one()
    assert tuple(failed) == (True, 3)
    # Redelivery makes it due again, and it goes out.
    delivery_id = _only_id(session)
    webhooks.redeliver(session, actor_id=None, delivery_id=delivery_id)
    session.commit()
    receiver.script = []
    assert webhooks.deliver_once(session).delivered == 1


def test_nothing_is_sent_for_a_rolled_back_transaction(factory, session, receiver):
    admin = factory.user(is_admin=True)
    _endpoint(session, admin, receiver.url)
    event = factory.ga_event(3)
    order = factory.order(event, factory.user())
    webhooks.deliver_once(session)
    receiver.requests.clear()
    # A check-in, a refund and an event cancel, each rolled back before commit.
    code = order.tickets[0].code
    assert checkin.check_in(session, event_id=event.id, code=code, staff_id=admin.id).admitted
    admin_orders.cancel_order(session, payment_gateway(), actor_id=admin.id, order_id=order.id, reason="oops",
                              refund=True)
    admin_events.cancel_event(session, payment_gateway(), actor_id=admin.id, event_id=event.id, reason="oops")
    assert session.execute(text("SELECT count(*) FROM webhook_deliveries WHERE delivered_at IS NULL")).scalar() > 0
    session.rollback()
    assert session.execute(text("SELECT count(*) FROM webhook_deliveries WHERE delivered_at IS NULL")).scalar() == 0
    assert webhooks.deliver_once(session).delivered == 0
    assert receiver.requests == []


def test_each_kind_of_event_reaches_the_endpoints_that_asked(factory, session, receiver):
    admin = factory.user(is_admin=True)
    event, other = factory.ga_event(1), factory.ga_event(1)
    everything = _endpoint(session, admin, receiver.url)
    just_other = _endpoint(session, admin, receiver.url + "?other", ["order.confirmed"], event_id=other.id)
    first, waiting = factory.user(), factory.user()
    order = factory.order(event, first)
    factory.waitlist_entry(event, waiting, tier_id=event.tiers[0].id)
    assert checkin.check_in(session, event_id=event.id, code=order.tickets[0].code, staff_id=admin.id).admitted
    session.commit()
    admin_orders.cancel_order(session, payment_gateway(), actor_id=admin.id, order_id=order.id, reason="x",
                              refund=True)  # the place is offered to the line
    session.commit()
    admin_events.cancel_event(session, payment_gateway(), actor_id=admin.id, event_id=event.id, reason="storm")
    session.commit()
    kinds = session.execute(text("SELECT endpoint_id, event_type FROM webhook_deliveries ORDER BY id")).all()
    assert [k for e, k in kinds if e == everything.id] == [
        "order.confirmed", "ticket.checked_in", "order.refunded", "waitlist.offered", "refund.succeeded",
        "event.cancelled"]
    assert [k for e, k in kinds if e == just_other.id] == []
    webhooks.deliver_once(session)
    assert len(receiver.requests) == 6


def test_four_workers_deliver_each_event_once(app, factory, session, receiver):
    admin = factory.user(is_admin=True)
    for _ in range(3):
        _endpoint(session, admin, receiver.url, ["order.confirmed"])
    event = factory.ga_event(20)
    for user in factory.users(20):
        factory.order(event, user)

    def work(i):
        from webapp.extensions import db

        sent = []
        while (result := webhooks.deliver_once(db.session, limit=2)).delivered:
            sent += result.ids_delivered
        return sent

    sent = race(app, 4, work)
    ids = [r["headers"]["Ticketbooth-Delivery"] for r in receiver.requests]
    assert len(set(ids)) == 60 and len(ids) == 60
    assert sorted(sum(sent, [])) == sorted(int(i) for i in ids)


@pytest.mark.parametrize("url, words", [
    ("http://hooks.example.com/x", "https://"),
    ("https://127.0.0.1/x", "not a public address"),
    ("https://10.1.2.3/x", "not a public address"),
    ("https://[::1]/x", "not a public address"),
    ("https://user:pw@hooks.example.com/x", "no user or password"),
    ("not a url", "full https://"),
])
def test_urls_must_be_https_to_public_addresses(app_ctx, url, words):
    with pytest.raises(InvalidRequest, match=words.replace("(", r"\(").replace(")", r"\)").replace("/", "/")):
        webhooks.check_url(url)


def test_the_allow_list_lets_a_test_receiver_through(app, app_ctx):
    saved = app.config["WEBHOOK_ALLOWED_HOSTS"]
    app.config["WEBHOOK_ALLOWED_HOSTS"] = ("127.0.0.1:9999",)
    try:
        assert webhooks.check_url("http://127.0.0.1:9999/hook")
        with pytest.raises(InvalidRequest):
            webhooks.check_url("http://127.0.0.1:9998/hook")
    finally:
        app.config["WEBHOOK_ALLOWED_HOSTS"] = saved


def test_a_buyer_reserve_fires_no_webhook_work(factory, session, receiver):
    """The offer trigger's WHEN clause keeps ordinary holds out of it."""
    _endpoint(session, factory.user(is_admin=True), receiver.url)
    event = factory.ga_event(5)
    reserve_general(session, user_id=factory.user().id, event_id=event.id, quantities={event.tiers[0].id: 1})
    session.commit()
    assert session.execute(text("SELECT count(*) FROM webhook_deliveries")).scalar() == 0


def test_the_admin_page_registers_shows_the_log_and_redelivers(client, factory, session, receiver):
    import re

    from tests.support import admin_client

    client, admin, token = admin_client(client, factory)
    page = client.post("/admin/webhooks", data={"url": receiver.url, "event": "", "type": ["order.confirmed"],
                                                "csrf_token": token})
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    secret = re.search(r'value="(whsec_[A-Za-z0-9_-]+)"', page.get_data(as_text=True)).group(1)
    refused = client.post("/admin/webhooks", data={"url": "https://192.168.1.5/x", "type": ["order.confirmed"],
                                                   "csrf_token": token})
    assert refused.status_code == 400 and "private" in refused.get_data(as_text=True)
    receiver.script = [500]
    factory.order(factory.ga_event(2), factory.user())
    webhooks.deliver_once(session)
    endpoint_id = session.execute(text("SELECT id FROM webhook_endpoints")).scalar_one()
    log = client.get(f"/admin/webhooks/{endpoint_id}").get_data(as_text=True)
    assert "answer 500" in log and "next try" in log
    delivery_id = _only_id(session)
    assert client.post(f"/admin/webhooks/deliveries/{delivery_id}/redeliver",
                       data={"csrf_token": token}).status_code == 303
    assert webhooks.deliver_once(session).delivered == 1
    assert webhooks.verify(secret, receiver.requests[-1]["headers"]["Ticketbooth-Signature"],
                           receiver.requests[-1]["body"])
    assert "delivered" in client.get(f"/admin/webhooks/{endpoint_id}").get_data(as_text=True)


# Every form of an address that is not public, as a URL's host would give it.
NOT_PUBLIC = [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.5", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "240.0.0.1", "255.255.255.255",
    "224.0.0.1", "239.255.255.250",  # multicast: `is_global` alone says yes
    "::1", "::", "fc00::1", "fe80::1", "fec0::1", "ff02::1",
    "::127.0.0.1", "::10.0.0.1",  # IPv4-compatible
    "::ffff:127.0.0.1", "::ffff:10.0.0.1",  # IPv4-mapped
    "2002:7f00:1::", "2002:c0a8:105::1",  # 6to4 of 127.0.0.1 and 192.168.1.5
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, its client 127.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
]
PUBLIC = ["93.184.215.14", "2606:4700::1111", "2002:5db8:d70e::1"]  # the last: 6to4 of 93.184.215.14


def _literal_url(address: str) -> str:
    return f"https://[{address}]:8443/hook" if ":" in address else f"https://{address}:8443/hook"


def test_public_means_the_whole_classification_and_the_ipv4_inside():
    import ipaddress

    assert [a for a in NOT_PUBLIC if webhooks.is_public(ipaddress.ip_address(a))] == []
    assert [a for a in PUBLIC if not webhooks.is_public(ipaddress.ip_address(a))] == []


@pytest.fixture
def dns(monkeypatch):
    """Names resolve to what the test says, and no connection leaves the machine (each is recorded, then refused)."""
    names: dict[str, list[str]] = {}
    looked_up: list[str] = []
    connected: list[tuple] = []

    def resolve(host, port):
        looked_up.append(host)
        return names.get(host, [host])

    def connect(address, timeout=None, *args):
        connected.append(address)
        raise ConnectionRefusedError("refused by the test")

    monkeypatch.setattr(webhooks, "resolve", resolve)
    monkeypatch.setattr(webhooks.socket, "create_connection", connect)
    return names, looked_up, connected


def test_an_address_that_is_not_public_is_refused_at_save_on_the_page_and_the_api(client, factory, session, dns):
    from tests.support import admin_client

    names, _, connected = dns
    client, admin, token = admin_client(client, factory)
    secret = api_tokens.create(session, user_id=admin.id, is_admin=True, name="hooks", scope="admin").secret
    session.commit()
    for address in NOT_PUBLIC:
        names["hooks.example.com"] = ["93.184.215.14", address]
        for url in (_literal_url(address), "https://hooks.example.com/hook"):
            page = client.post("/admin/webhooks", data={"url": url, "type": ["order.confirmed"], "csrf_token": token})
            assert page.status_code == 400 and "not a public address" in page.get_data(as_text=True), url
            api = client.post("/api/v1/admin/webhooks", json={"url": url, "event_types": ["order.confirmed"]},
                              headers={"Authorization": f"Bearer {secret}"})
            assert api.status_code == 400 and api.mimetype == "application/problem+json", url
            assert "not a public address" in api.get_json()["detail"], url
    assert session.execute(text("SELECT count(*) FROM webhook_endpoints")).scalar_one() == 0
    assert connected == []


def test_every_delivery_resolves_again_and_connects_only_to_what_it_checked(factory, session, dns):
    names, looked_up, connected = dns
    names["hooks.example.com"] = ["93.184.215.14"]
    _endpoint(session, factory.user(is_admin=True), "https://hooks.example.com/hook", ["order.confirmed"])
    factory.order(factory.ga_event(2), factory.user())
    for address in NOT_PUBLIC:
        # The name now points inside (DNS rebinding): refused after the lookup, before any connection.
        names["hooks.example.com"] = [address]
        looked_up.clear()
        session.execute(text("UPDATE webhook_deliveries SET next_attempt_at = now(), attempts = 0"))
        session.commit()
        assert webhooks.deliver_once(session).retried == 1
        error = session.execute(text("SELECT last_error FROM webhook_deliveries")).scalar_one()
        assert "not a public address" in error and address in error, (address, error)
        assert looked_up == ["hooks.example.com"] and connected == [], address
    # A public answer: the connection goes to that very address, with no second lookup that could differ.
    names["hooks.example.com"] = ["93.184.215.14"]
    looked_up.clear()
    session.execute(text("UPDATE webhook_deliveries SET next_attempt_at = now(), attempts = 0"))
    session.commit()
    assert webhooks.deliver_once(session).retried == 1
    assert looked_up == ["hooks.example.com"] and connected == [("93.184.215.14", 443)]
    assert "refused by the test" in session.execute(text("SELECT last_error FROM webhook_deliveries")).scalar_one()


def test_a_delivery_connects_to_the_address_resolved_and_names_the_host(app, factory, session, receiver,
                                                                         monkeypatch):
    port = receiver.server.server_port
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_HOSTS", (f"receiver.test:{port}",))
    monkeypatch.setattr(webhooks, "resolve", lambda host, port: ["127.0.0.1"] if host == "receiver.test" else [])
    _endpoint(session, factory.user(is_admin=True), f"http://receiver.test:{port}/hook?x=1", ["order.confirmed"])
    factory.order(factory.ga_event(2), factory.user())
    assert webhooks.deliver_once(session).delivered == 1
    assert receiver.requests[0]["headers"]["Host"] == f"receiver.test:{port}"


def test_tls_is_checked_against_the_name_while_connecting_to_the_address_checked(app, factory, session, tmp_path,
                                                                                  monkeypatch):
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        # In CI a missing tool is a broken install, never a silent skip (as for nginx and redis-server).
        if os.environ.get("CI"):
            pytest.fail("openssl is not installed")
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=receiver.test", "-addext", "subjectAltName=DNS:receiver.test", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    found = Receiver(tls=server_side)
    try:
        port = found.server.server_port
        trusting = ssl.create_default_context
        monkeypatch.setattr(webhooks.ssl, "create_default_context", lambda: trusting(cafile=str(cert)))
        monkeypatch.setattr(webhooks, "resolve", lambda host, port: ["127.0.0.1"])
        monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_HOSTS", (f"receiver.test:{port}", f"other.test:{port}"))
        admin = factory.user(is_admin=True)
        _endpoint(session, admin, f"https://receiver.test:{port}/hook", ["order.confirmed"])
        _endpoint(session, admin, f"https://other.test:{port}/hook", ["order.confirmed"])
        factory.order(factory.ga_event(2), factory.user())
        result = webhooks.deliver_once(session)
        assert (result.delivered, result.retried) == (1, 1)
        assert found.requests[0]["headers"]["Host"] == f"receiver.test:{port}"
        error = session.execute(text("SELECT last_error FROM webhook_deliveries WHERE delivered_at IS NULL")
                                ).scalar_one()
        assert "SSLCertVerificationError" in error  # the certificate is for receiver.test, not other.test
    finally:
        found.close()
