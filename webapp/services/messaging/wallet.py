"""Wallet passes for a ticket: an Apple Wallet `.pkpass` and a Google Wallet "save" link, when configured.

Apple: a zip of `pass.json`, `manifest.json` (the SHA-1 of every other file)
and `signature`, a detached PKCS#7 signature of the manifest made with the
operator's pass certificate and key and carrying Apple's WWDR intermediate
(APPLE_PASS_CERT, APPLE_PASS_KEY, APPLE_WWDR_CERT, APPLE_PASS_TYPE_ID,
APPLE_TEAM_ID). The pass names our web service (`webServiceURL`) and a
per-pass token, so Wallet can ask for the latest version: a pass whose
ticket was refunded, or passed on to someone else since, comes back void.

Google: a JWT signed (RS256) with the service account's key
(GOOGLE_WALLET_SERVICE_ACCOUNT, a JSON key file; GOOGLE_WALLET_ISSUER_ID)
carrying the event ticket object; the link is `https://pay.google.com/gp/v/save/<jwt>`.

`cryptography` does the signing (docs/design.md, "Libraries and why").
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import time
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from webapp.models import Order, Ticket, TicketStatus
from webapp.services.messaging import language

APPLE_SETTINGS = ("APPLE_PASS_CERT", "APPLE_PASS_KEY", "APPLE_WWDR_CERT", "APPLE_PASS_TYPE_ID", "APPLE_TEAM_ID")
GOOGLE_SETTINGS = ("GOOGLE_WALLET_SERVICE_ACCOUNT", "GOOGLE_WALLET_ISSUER_ID")


@dataclass(frozen=True)
class PassTicket:
    """What a pass shows of a ticket, and whether it still admits its holder."""

    ticket_id: int
    holder_id: int  # whose pass this is: the serial names them, so a passed-on ticket's old pass goes void
    code: str
    event_title: str
    venue: str
    starts_at_iso: str
    place: str
    tier: str
    attendee: str | None
    void: bool
    locale: str = "en"  # the buyer's, from the order: the pass's labels speak it

    @property
    def serial(self) -> str:
        return f"t{self.ticket_id}h{self.holder_id}"


def pass_ticket(session: Session, ticket_id: int) -> PassTicket | None:
    """The ticket as its pass shows it, for whoever holds it now."""
    ticket = session.scalars(select(Ticket).where(Ticket.id == ticket_id).options(
        joinedload(Ticket.order).joinedload(Order.event), joinedload(Ticket.unit), joinedload(Ticket.tier))).first()
    if ticket is None:
        return None
    event = ticket.order.event
    return PassTicket(ticket.id, ticket.holder_id or ticket.order.user_id, ticket.code, event.title, event.venue,
                      event.starts_at.isoformat(), ticket.unit.place_label, ticket.tier.name, ticket.attendee_name,
                      void=ticket.status != TicketStatus.VALID, locale=ticket.order.locale)


@lru_cache(maxsize=1)
def icon_png() -> bytes:
    """The pass's icon (Wallet requires one): a plain square in the app's colour, drawn once."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (58, 58), (31, 27, 77)).save(buffer, format="PNG")
    return buffer.getvalue()


def apple_configured(config: Any) -> bool:
    return all(config.get(name) for name in APPLE_SETTINGS)


def google_configured(config: Any) -> bool:
    return all(config.get(name) for name in GOOGLE_SETTINGS)


def parse_serial(serial: str) -> tuple[int, int] | None:
    """(ticket id, holder id) from a serial number, or None."""
    head, _, holder = serial.partition("h")
    if not head.startswith("t") or not head[1:].isascii() or not head[1:].isdigit() \
            or not holder.isascii() or not holder.isdigit() or len(serial) > 40:
        return None
    return int(head[1:]), int(holder)


def auth_token(secret: str, serial: str) -> str:
    """The pass's token for our web service: derived, so nothing needs storing."""
    return hmac.new(hashlib.sha256(b"wallet:" + secret.encode()).digest(), serial.encode(),
                    hashlib.sha256).hexdigest()


def pass_json(ticket: PassTicket, config: Any) -> dict[str, Any]:
    with language.speaking(ticket.locale):
        # Wallet shows field labels in capitals by convention; upper() keeps "ß" and "Ñ" right.
        fields = {
            "primaryFields": [{"key": "event", "label": _("Event").upper(), "value": ticket.event_title}],
            "secondaryFields": [{"key": "place", "label": _("Place").upper(), "value": ticket.place},
                                {"key": "tier", "label": _("Ticket").upper(), "value": ticket.tier}],
            "auxiliaryFields": [{"key": "starts", "label": _("Doors").upper(), "value": ticket.starts_at_iso,
                                 "dateStyle": "PKDateStyleMedium", "timeStyle": "PKDateStyleShort"}],
            "backFields": [{"key": "venue", "label": _("Venue"), "value": ticket.venue}],
        }
        if ticket.attendee:
            fields["secondaryFields"].append({"key": "attendee", "label": _("Attendee").upper(),
                                              "value": ticket.attendee})
    return {
        "formatVersion": 1, "passTypeIdentifier": config["APPLE_PASS_TYPE_ID"],
        "teamIdentifier": config["APPLE_TEAM_ID"],
        "serialNumber": ticket.serial, "organizationName": "Ticketbooth", "description": ticket.event_title,
        "webServiceURL": config["PUBLIC_URL"].rstrip("/") + "/wallet/",
        "authenticationToken": auth_token(config["SECRET_KEY"], ticket.serial),
        "relevantDate": ticket.starts_at_iso, "voided": ticket.void,
        "barcodes": [] if ticket.void else [
            {"format": "PKBarcodeFormatQR", "message": ticket.code, "messageEncoding": "iso-8859-1",
             "altText": ticket.code}],
        "eventTicket": fields,
    }


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def sign_manifest(manifest: bytes, config: Any) -> bytes:
    """The detached PKCS#7 (DER) signature Wallet checks: the pass certificate's, with the WWDR certificate."""
    cert = x509.load_pem_x509_certificate(_read(config["APPLE_PASS_CERT"]))
    wwdr = x509.load_pem_x509_certificate(_read(config["APPLE_WWDR_CERT"]))
    password = config.get("APPLE_PASS_KEY_PASSWORD")
    key = serialization.load_pem_private_key(_read(config["APPLE_PASS_KEY"]),
                                             password.encode() if password else None)
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ValueError("The pass key must be an RSA or EC key.")
    return (pkcs7.PKCS7SignatureBuilder().set_data(manifest)
            .add_signer(cert, key, hashes.SHA256())
            .add_certificate(wwdr)
            .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]))


def apple_pass(ticket: PassTicket, config: Any) -> bytes:
    """The `.pkpass` file: pass.json, an icon, manifest.json and its signature, zipped."""
    files = {"pass.json": json.dumps(pass_json(ticket, config), indent=1).encode(), "icon.png": icon_png(),
             "icon@2x.png": icon_png()}
    manifest = json.dumps({name: hashlib.sha1(data).hexdigest() for name, data in files.items()},
                          sort_keys=True).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("manifest.json", manifest)
        archive.writestr("signature", sign_manifest(manifest, config))
    return buffer.getvalue()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def google_save_link(ticket: PassTicket, config: Any, *, now: float | None = None) -> str:
    """A "Save to Google Wallet" link: the ticket object in a JWT signed with the service account's key."""
    account = json.loads(_read(config["GOOGLE_WALLET_SERVICE_ACCOUNT"]))
    key = serialization.load_pem_private_key(account["private_key"].encode(), None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("The service account's key must be an RSA key.")
    issuer = config["GOOGLE_WALLET_ISSUER_ID"]
    header = {"alg": "RS256", "typ": "JWT", "kid": account.get("private_key_id", "")}
    claims = {
        "iss": account["client_email"], "aud": "google", "typ": "savetowallet", "iat": int(now or time.time()),
        "origins": [config["PUBLIC_URL"]],
        "payload": {"eventTicketObjects": [{
            "id": f"{issuer}.{ticket.serial}", "classId": f"{issuer}.ticketbooth",
            "state": "INACTIVE" if ticket.void else "ACTIVE",
            "barcode": {"type": "QR_CODE", "value": ticket.code, "alternateText": ticket.code},
            "ticketHolderName": ticket.attendee or "",
            "seatInfo": {"seat": {"defaultValue": {"language": ticket.locale, "value": ticket.place}}},
            "ticketType": {"defaultValue": {"language": ticket.locale, "value": ticket.tier}},
        }]},
    }
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"https://pay.google.com/gp/v/save/{signing_input}.{_b64url(signature)}"
