"""Wallet passes, built with generated test certificates: the .pkpass's manifest hashes and its PKCS#7 signature
(checked by openssl against the test root), the Google save link's JWT (checked with the test key), the update
service's token and its void pass after a refund or a transfer, and nothing offered when not configured."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import zipfile
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from tests.support import buy, cancel, login
from webapp.models import Ticket
from webapp.services.messaging import wallet
from webapp.services.selling import transfers


def _cert(name: str, key, issuer_name: str, issuer_key, *, ca: bool) -> x509.Certificate:
    now = datetime.now(timezone.utc)
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256()))


def _pem(path, cert) -> str:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


@pytest.fixture
def configured(app, tmp_path, monkeypatch):
    """A test root standing for Apple's, a WWDR intermediate under it, a pass certificate under that; and a
    Google service account's key."""
    keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(4)]
    root = _cert("Test Root", keys[0], "Test Root", keys[0], ca=True)
    wwdr = _cert("Test WWDR", keys[1], "Test Root", keys[0], ca=True)
    leaf = _cert("Pass Type ID: pass.test.ticketbooth", keys[2], "Test WWDR", keys[1], ca=False)
    (tmp_path / "pass.key").write_bytes(keys[2].private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret")))
    account = {"client_email": "wallet@test.iam.example.com", "private_key_id": "k1",
               "private_key": keys[3].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()).decode()}
    (tmp_path / "account.json").write_text(json.dumps(account))
    settings = {"APPLE_PASS_CERT": _pem(tmp_path / "pass.pem", leaf), "APPLE_PASS_KEY": str(tmp_path / "pass.key"),
                "APPLE_PASS_KEY_PASSWORD": "s3cret", "APPLE_WWDR_CERT": _pem(tmp_path / "wwdr.pem", wwdr),
                "APPLE_PASS_TYPE_ID": "pass.test.ticketbooth", "APPLE_TEAM_ID": "TEAM123456",
                "GOOGLE_WALLET_SERVICE_ACCOUNT": str(tmp_path / "account.json"),
                "GOOGLE_WALLET_ISSUER_ID": "3388000000000000000"}
    for name, value in settings.items():
        monkeypatch.setitem(app.config, name, value)
    return {"root": _pem(tmp_path / "root.pem", root), "google_public": keys[3].public_key(), "dir": tmp_path}


def _open(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_a_pass_has_true_manifest_hashes_and_a_signature_that_verifies(client, session, factory, configured):
    event = factory.ga_event(capacity=5, title="Night Market")
    buyer = factory.user()
    order = buy(session, event, buyer)
    ticket = order.tickets[0]
    login(client, buyer.email)
    assert "Add to Apple Wallet" in client.get(f"/orders/{order.id}").get_data(as_text=True)
    # The confirmation mail offers both, per ticket.
    from webapp.models import OutboxMessage
    from webapp.services.messaging import mail

    message = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "order_confirmation")).one()
    _, text_body, html_body = mail.render(session, message.template, message.params)
    assert f"/tickets/{ticket.id}/wallet.pkpass" in text_body and "Save to Google Wallet" in html_body
    response = client.get(f"/tickets/{ticket.id}/wallet.pkpass")
    assert response.status_code == 200 and response.mimetype == "application/vnd.apple.pkpass"
    files = _open(response.data)
    manifest = json.loads(files["manifest.json"])
    assert set(manifest) == {"pass.json", "icon.png", "icon@2x.png"}
    assert all(hashlib.sha1(files[name]).hexdigest() == digest for name, digest in manifest.items())
    pass_json = json.loads(files["pass.json"])
    assert pass_json["barcodes"][0]["message"] == ticket.code and pass_json["voided"] is False
    assert pass_json["passTypeIdentifier"] == "pass.test.ticketbooth" and pass_json["teamIdentifier"] == "TEAM123456"
    folder = configured["dir"]
    (folder / "manifest.json").write_bytes(files["manifest.json"])
    (folder / "signature").write_bytes(files["signature"])
    verified = subprocess.run(
        ["openssl", "smime", "-verify", "-binary", "-inform", "DER", "-in", str(folder / "signature"),
         "-content", str(folder / "manifest.json"), "-CAfile", configured["root"], "-purpose", "any",
         "-out", "/dev/null"], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    # A manifest changed after signing no longer verifies: the check is real.
    (folder / "manifest.json").write_bytes(files["manifest.json"].replace(b'"', b"'", 1))
    tampered = subprocess.run(
        ["openssl", "smime", "-verify", "-binary", "-inform", "DER", "-in", str(folder / "signature"),
         "-content", str(folder / "manifest.json"), "-CAfile", configured["root"], "-purpose", "any",
         "-out", "/dev/null"], capture_output=True, text=True)
    assert tampered.returncode != 0


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_the_google_link_is_a_jwt_signed_with_the_service_accounts_key(client, session, factory, configured):
    event = factory.ga_event(capacity=5)
    buyer = factory.user()
    ticket = buy(session, event, buyer).tickets[0]
    login(client, buyer.email)
    response = client.get(f"/tickets/{ticket.id}/google-wallet")
    assert response.status_code == 303
    token = response.headers["Location"].removeprefix("https://pay.google.com/gp/v/save/")
    header, claims, signature = token.split(".")
    configured["google_public"].verify(_b64(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(),
                                       hashes.SHA256())
    body = json.loads(_b64(claims))
    assert json.loads(_b64(header))["alg"] == "RS256"
    assert body["iss"] == "wallet@test.iam.example.com" and body["typ"] == "savetowallet"
    [item] = body["payload"]["eventTicketObjects"]
    assert item["barcode"]["value"] == ticket.code and item["state"] == "ACTIVE"


def test_the_update_service_voids_a_refunded_or_passed_on_ticket_and_wants_the_token(client, session, factory,
                                                                                    configured, gateway):
    event = factory.ga_event(capacity=5)
    buyer = factory.user()
    refunded = buy(session, event, buyer)
    passed = buy(session, event, buyer).tickets[0]
    old_code = passed.code
    secret = client.application.config["SECRET_KEY"]

    def latest(ticket_id: int, holder_id: int, token: str | None = None):
        serial = f"t{ticket_id}h{holder_id}"
        return client.get(f"/wallet/v1/passes/pass.test.ticketbooth/{serial}", headers={
            "Authorization": f"ApplePass {token or wallet.auth_token(secret, serial)}"})

    assert latest(passed.id, buyer.id, token="wrong").status_code == 401
    assert json.loads(_open(latest(passed.id, buyer.id).data)["pass.json"])["voided"] is False
    cancel(session, gateway, refunded)
    void = json.loads(_open(latest(refunded.tickets[0].id, buyer.id).data)["pass.json"])
    assert void["voided"] is True and void["barcodes"] == []
    offered = transfers.offer(session, ticket_id=passed.id, user_id=buyer.id, to_email="new@example.com")
    recipient = factory.user("new@example.com")
    transfers.accept(session, token=offered.token, user_id=recipient.id)
    session.commit()
    old = json.loads(_open(latest(passed.id, buyer.id).data)["pass.json"])
    new = json.loads(_open(latest(passed.id, recipient.id).data)["pass.json"])
    assert old["voided"] is True and old["barcodes"] == []
    session.expire_all()
    assert new["voided"] is False and new["barcodes"][0]["message"] == session.get(Ticket, passed.id).code != old_code
    # The old holder cannot fetch a pass for it any more; the recipient can.
    login(client, buyer.email)
    assert client.get(f"/tickets/{passed.id}/wallet.pkpass").status_code == 404


def test_nothing_is_offered_when_wallets_are_not_configured(client, session, factory):
    event = factory.ga_event(capacity=5)
    buyer = factory.user()
    order = buy(session, event, buyer)
    login(client, buyer.email)
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "Apple Wallet" not in page and "Google Wallet" not in page
    from sqlalchemy import select

    from webapp.models import OutboxMessage
    from webapp.services.messaging import mail

    message = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "order_confirmation")).one()
    assert "Wallet" not in mail.render(session, message.template, message.params)[1]
    assert client.get(f"/tickets/{order.tickets[0].id}/wallet.pkpass").status_code == 404
    assert client.get(f"/tickets/{order.tickets[0].id}/google-wallet").status_code == 404
    assert client.get("/wallet/v1/passes/x/t1h1").status_code == 404
