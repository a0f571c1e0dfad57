"""Stripe behind the gateway interface: PaymentIntents with manual capture, over plain HTTP.

- `authorise`: create the intent (unconfirmed, `capture_method=manual`,
  our key in its metadata), note its id against our key in
  `stripe_intents` (own connection, committed at once), then confirm it.
  Money can only move at the confirm, and the confirm is only sent once the
  note is committed: so `retrieve` always finds every intent that could
  have charged, even if our process died between Stripe's answer and our
  own commit. Stripe's search API is not used for this: its index lags
  behind by up to a minute, and a lag would read as "no record".
- Every POST carries an `Idempotency-Key` made of our checkout key (one per
  step: create, confirm, capture, cancel, refund), so a retried call makes
  no second intent and takes no money twice.
- `void` cancels the key's intent, or, if none was made yet, marks the key so
  that an intent made under it later is cancelled instead of confirmed.
- `retrieve` maps the intent's status: requires_capture is authorised,
  succeeded captured, canceled voided, a failed confirm declined; anything
  still moving (requires_action, processing, not yet confirmed) is None.
- Card details never reach us: the browser gives Stripe the card (Stripe.js)
  and we get a PaymentMethod id (`PaymentMethodId`).

Stripe answering 5xx, 429 or not at all raises `GatewayUnavailable`; the
checkout's attempt then stays pending and the sweep settles it by `retrieve`.
"""
from __future__ import annotations

import logging
from typing import Any

import requests
from sqlalchemy import Engine, text

from webapp.models.provider import FINAL_INTENT_STATUSES
from webapp.services.money.gateway import (
    APPROVED,
    AUTHENTICATION_FAILED,
    AUTHORISED,
    CAPTURED,
    CARD_DECLINED,
    DECLINE_MESSAGES,
    DECLINED,
    INVALID_CARD,
    REQUIRES_ACTION,
    VOIDED,
    Card,
    ChargeResult,
    GatewayUnavailable,
    PaymentMethodId,
    RefundRefused,
)

log = logging.getLogger(__name__)

# The API version our code reads; Stripe answers in the account's default otherwise.
STRIPE_VERSION = "2024-06-20"
KEY_METADATA = "ticketbooth_key"
# The confirm and every GET of an intent bring its PaymentMethod along, for the card's fingerprint (the
# per-instrument limit) without a round trip of its own.
_EXPANDED = {"expand[]": "payment_method"}
REFUND_METADATA = "ticketbooth_refund"  # a refund row's key, on the Stripe refund it made


class StripeError(RuntimeError):
    """Stripe refused the request (4xx) with this error object."""

    def __init__(self, status: int, error: dict[str, Any]):
        super().__init__(f"Stripe {status}: {error.get('message', '')}")
        self.status = status
        self.error = error


def fingerprint_of(intent: dict[str, Any]) -> str | None:
    """The card's fingerprint, from the intent's PaymentMethod when it came expanded (see `_EXPANDED`)."""
    method = intent.get("payment_method")
    fingerprint = ((method.get("card") or {}).get("fingerprint")) if isinstance(method, dict) else None
    return str(fingerprint)[:64] if fingerprint else None


def result_of(intent: dict[str, Any]) -> ChargeResult | None:
    """What an intent's status says about its money; None while it is still moving."""
    status, reference = intent.get("status"), intent.get("id", "")
    if status == "requires_capture":
        return ChargeResult(APPROVED, reference, AUTHORISED, instrument=fingerprint_of(intent))
    if status == "succeeded":
        return ChargeResult(APPROVED, reference, CAPTURED, instrument=fingerprint_of(intent))
    if status == "canceled":
        return ChargeResult(VOIDED, reference, VOIDED)
    if status == "requires_action":
        return ChargeResult(REQUIRES_ACTION, reference, REQUIRES_ACTION, client_secret=intent.get("client_secret"))
    error = intent.get("last_payment_error")
    if status == "requires_payment_method" and error:
        return ChargeResult(decline_code(error), reference, DECLINED)
    return None  # requires_confirmation, processing, or not confirmed yet


def decline_code(error: dict[str, Any]) -> str:
    """Our word for Stripe's reason (the messages are ours: Stripe's are not meant for buyers)."""
    if error.get("code") == "payment_intent_authentication_failure":
        return AUTHENTICATION_FAILED
    code = error.get("decline_code") or error.get("code") or CARD_DECLINED
    return code if code in DECLINE_MESSAGES else CARD_DECLINED


class StripeGateway:
    def __init__(self, engine: Engine, *, secret_key: str, api_base: str = "https://api.stripe.com",
                 timeout: tuple[float, float] = (3.0, 20.0), http: requests.Session | None = None,
                 account: str | None = None):
        if not secret_key:
            raise RuntimeError("PAYMENT_GATEWAY=stripe needs STRIPE_SECRET_KEY.")
        self.engine = engine
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        self.secret_key = secret_key
        self.account = account  # noted on each intent made (stripe_intents.account): stripe_accounts.py
        self.http = http or requests.Session()
        self.http.headers.update({"Authorization": f"Bearer {secret_key}", "Stripe-Version": STRIPE_VERSION})

    @classmethod
    def from_config(cls, engine: Engine, config) -> StripeGateway:
        return cls(engine, secret_key=config["STRIPE_SECRET_KEY"], api_base=config["STRIPE_API_BASE"],
                   timeout=(config["STRIPE_CONNECT_TIMEOUT_SECONDS"], config["STRIPE_READ_TIMEOUT_SECONDS"]))

    # --- HTTP ---

    def _call(self, method: str, path: str, data: dict[str, Any] | None = None, *,
              idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        try:
            answer = self.http.request(method, self.api_base + path, data=data, headers=headers,
                                       timeout=self.timeout)
        except requests.RequestException as lost:
            raise GatewayUnavailable(f"Stripe {method} {path}: {lost}") from lost
        if answer.status_code >= 500 or answer.status_code == 429:
            raise GatewayUnavailable(f"Stripe {method} {path}: {answer.status_code}")
        try:
            body = answer.json()
        except ValueError as garbled:
            raise GatewayUnavailable(f"Stripe {method} {path}: not JSON") from garbled
        if answer.status_code >= 400:
            raise StripeError(answer.status_code, body.get("error") or {})
        return body

    def _intent(self, intent_id: str) -> dict[str, Any]:
        intent = self._call("GET", f"/v1/payment_intents/{intent_id}?expand[]=payment_method")
        self._note_status(intent)
        return intent

    # --- our note of key -> intent ---

    def _note(self, sql: str, **params) -> Any:
        with self.engine.begin() as conn:
            result = conn.execute(text(sql), params)
            return result.first() if result.returns_rows else None

    def _note_status(self, intent: dict[str, Any]) -> None:
        self._note("UPDATE stripe_intents SET last_status = :s WHERE intent_id = :i AND last_status <> :s",
                   s=intent.get("status", ""), i=intent.get("id", ""))

    # --- the interface ---

    def authorise(self, *, idempotency_key: str, amount_minor: int, currency: str,
                  card: Card | PaymentMethodId) -> ChargeResult:
        if not isinstance(card, PaymentMethodId):
            # Card numbers go to Stripe from the buyer's browser, never through us.
            return ChargeResult(INVALID_CARD, "", DECLINED)
        seen = self._note(
            "INSERT INTO stripe_intents (idempotency_key, account) VALUES (:k, :a) ON CONFLICT (idempotency_key)"
            " DO UPDATE SET idempotency_key = excluded.idempotency_key RETURNING intent_id, voided",
            k=idempotency_key, a=self.account)
        if seen.voided and seen.intent_id is None:
            return ChargeResult(VOIDED, "", VOIDED)
        intent_id = seen.intent_id
        if intent_id is None:
            try:
                intent = self._call("POST", "/v1/payment_intents", {
                    "amount": amount_minor, "currency": currency.lower(), "capture_method": "manual",
                    "payment_method": card.id, "payment_method_types[]": "card",
                    f"metadata[{KEY_METADATA}]": idempotency_key,
                }, idempotency_key=f"{idempotency_key}-create")
            except StripeError as refused:
                # Refused before anything was made (no such PaymentMethod, a bad amount): definitive.
                log.warning("stripe.create_refused", extra={"status": refused.status,
                                                             "code": refused.error.get("code")})
                return ChargeResult(INVALID_CARD, "", DECLINED)
            intent_id = intent["id"]
            noted = self._note(
                "UPDATE stripe_intents SET intent_id = :i, last_status = :s WHERE idempotency_key = :k"
                " RETURNING voided", i=intent_id, s=intent.get("status", ""), k=idempotency_key)
            if noted.voided:  # voided while Stripe was making it: it must never be confirmed
                return self._cancel(intent_id, idempotency_key)
        else:
            intent = self._intent(intent_id)
        if intent.get("status") == "requires_confirmation":
            try:
                intent = self._call("POST", f"/v1/payment_intents/{intent_id}/confirm", _EXPANDED,
                                    idempotency_key=f"{idempotency_key}-confirm")
            except StripeError as refused:
                if refused.status != 402:
                    # Not a decline, and the intent's state is Stripe's to tell: the sweep will ask.
                    raise GatewayUnavailable(f"confirm of {intent_id}: {refused}") from refused
                # A decline: the intent is back to requires_payment_method with the error on it.
                intent = refused.error.get("payment_intent") or self._call("GET", f"/v1/payment_intents/{intent_id}")
                if not intent.get("last_payment_error"):
                    intent = {**intent, "last_payment_error": refused.error}
            self._note_status(intent)
        result = result_of(intent)
        if result is None:
            raise GatewayUnavailable(f"intent {intent_id} is {intent.get('status')} after its confirm")
        return result

    def capture(self, reference: str) -> ChargeResult:
        """Take an authorisation's money; capturing twice takes it once."""
        try:
            intent = self._call("POST", f"/v1/payment_intents/{reference}/capture", {},
                                idempotency_key=f"capture-{reference}")
            self._note_status(intent)
        except StripeError:
            intent = self._intent(reference)  # captured already, or cancelled: say which
        result = result_of(intent)
        if result is None:
            raise LookupError(f"intent {reference} is {intent.get('status')}: nothing to capture")
        return result

    def _cancel(self, intent_id: str, idempotency_key: str) -> ChargeResult:
        try:
            intent = self._call("POST", f"/v1/payment_intents/{intent_id}/cancel", {},
                                idempotency_key=f"{idempotency_key}-cancel")
            self._note_status(intent)
        except StripeError:
            intent = self._intent(intent_id)  # captured (refund it) or cancelled already
        result = result_of(intent)
        if result is None or result.status in (DECLINED, REQUIRES_ACTION):
            raise GatewayUnavailable(f"intent {intent_id} is {intent.get('status')} after its cancel")
        return result

    def void(self, idempotency_key: str) -> ChargeResult:
        """Release whatever is authorised under this key, now or when it arrives (see the module docstring)."""
        seen = self._note(
            "INSERT INTO stripe_intents (idempotency_key, voided, last_status, account)"
            " VALUES (:k, true, 'canceled', :a)"
            " ON CONFLICT (idempotency_key) DO UPDATE SET voided = true RETURNING intent_id",
            k=idempotency_key, a=self.account)
        if seen.intent_id is None:
            return ChargeResult(VOIDED, "", VOIDED)
        intent = self._intent(seen.intent_id)
        if intent.get("status") == "requires_payment_method" and intent.get("last_payment_error"):
            return ChargeResult(decline_code(intent["last_payment_error"]), seen.intent_id, DECLINED)
        if intent.get("status") in FINAL_INTENT_STATUSES:
            result = result_of(intent)
            assert result is not None
            return result
        return self._cancel(seen.intent_id, idempotency_key)

    def retrieve(self, idempotency_key: str) -> ChargeResult | None:
        """The intent under this key, or None: nothing definitive YET (not a decline)."""
        with self.engine.connect() as conn:
            seen = conn.execute(text("SELECT intent_id, voided FROM stripe_intents WHERE idempotency_key = :k"),
                                {"k": idempotency_key}).first()
        if seen is None:
            return None
        if seen.intent_id is None:
            return ChargeResult(VOIDED, "", VOIDED) if seen.voided else None
        result = result_of(self._intent(seen.intent_id))
        return None if result is None or result.status == REQUIRES_ACTION else result

    def refund(self, reference: str, amount_minor: int, *, idempotency_key: str | None = None) -> None:
        """Give back money of an intent, as the gateway interface says.

        Without a key: make the intent's refunded total `amount_minor` (Stripe caps it at the captured
        amount), or cancel an intent never captured; the Stripe key names the total aimed at, so a retry
        refunds nothing twice. With a key (a refund row's): give back `amount_minor` once per key. Our key
        rides in the refund's metadata as well as in Stripe's Idempotency-Key, and the intent's refunds are
        read first, so a retry finds the refund it made even where the server forgets keys. An intent never
        captured is cancelled for a refund of all of it, else captured and then refunded in part.
        RefundRefused: more than is left to give back.
        """
        intent = self._intent(reference)
        if idempotency_key is None:
            self._refund_total(reference, intent, amount_minor)
            return
        if self._refund_made(reference, idempotency_key):
            return
        if intent.get("status") == "requires_capture":
            if amount_minor >= int(intent.get("amount") or 0):
                key = (intent.get("metadata") or {}).get(KEY_METADATA) or reference
                self._cancel(reference, key)
                return
            self.capture(reference)
            intent = self._intent(reference)
        captured, refunded = self._charged(intent)
        if not 0 < amount_minor <= captured - refunded:
            raise RefundRefused(f"{reference} has {captured - refunded} to give back, not {amount_minor}")
        self._call("POST", "/v1/refunds", {"payment_intent": reference, "amount": amount_minor,
                                           f"metadata[{REFUND_METADATA}]": idempotency_key},
                   idempotency_key=idempotency_key)

    def _refund_made(self, reference: str, idempotency_key: str) -> bool:
        made = self._call("GET", f"/v1/refunds?payment_intent={reference}&limit=100")
        return any((r.get("metadata") or {}).get(REFUND_METADATA) == idempotency_key
                   for r in made.get("data") or [])

    def _charged(self, intent: dict[str, Any]) -> tuple[int, int]:
        """What the intent's charge took and what was given back of it."""
        charge = intent.get("latest_charge")
        if isinstance(charge, str):
            charge = self._call("GET", f"/v1/charges/{charge}")
        charge = charge or {}
        # amount_captured is newer than some Stripe-compatible servers: a captured charge took its amount.
        captured = int(charge.get("amount_captured") or (charge.get("amount") if charge.get("captured") else 0) or 0)
        return captured, int(charge.get("amount_refunded") or 0)

    def _refund_total(self, reference: str, intent: dict[str, Any], amount_minor: int) -> None:
        if intent.get("status") != "succeeded":
            if intent.get("status") != "canceled":
                key = (intent.get("metadata") or {}).get(KEY_METADATA) or reference
                self._cancel(reference, key)
            return
        captured, refunded = self._charged(intent)
        wanted = min(amount_minor, captured) - refunded
        if wanted <= 0:
            return
        self._call("POST", "/v1/refunds", {"payment_intent": reference, "amount": wanted},
                   idempotency_key=f"refund-{reference}-to-{amount_minor}")

    def uncaptured(self, *, older_than_seconds: float, limit: int) -> list[tuple[str, str]]:
        """(key, intent id) of intents older than this that Stripe holds authorised and uncaptured."""
        return [(key, intent_id) for key, intent_id in self.open_intents(older_than_seconds=older_than_seconds,
                                                                         limit=limit)
                if self.intent_status(intent_id) == "requires_capture"]

    def open_intents(self, *, older_than_seconds: float, limit: int) -> list[tuple[str, str]]:
        """(key, intent id) of our intents older than this whose last status we saw was not final."""
        return [(key, intent_id) for key, intent_id, _ in self.open_intents_with_accounts(
            older_than_seconds=older_than_seconds, limit=limit)]

    def open_intents_with_accounts(self, *, older_than_seconds: float, limit: int
                                   ) -> list[tuple[str, str, str | None]]:
        """The same, with the account each was made in (stripe_intents.account)."""
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(
                "SELECT idempotency_key, intent_id, account FROM stripe_intents WHERE intent_id IS NOT NULL"
                " AND last_status NOT IN ('succeeded', 'canceled', 'requires_payment_method')"
                " AND created_at < now() - make_interval(secs => :s) ORDER BY created_at LIMIT :n"),
                {"s": older_than_seconds, "n": limit}).all()]

    def intent_status(self, intent_id: str) -> str:
        """Stripe's status of the intent now (and noted)."""
        return str(self._intent(intent_id).get("status") or "")
