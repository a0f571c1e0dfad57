"""The app's gateway under Stripe: each call goes to the Stripe account of the organiser whose payment it is.

Every gateway call names a checkout key or a Stripe intent; our own rows say
which account: the one an intent was made in (`stripe_intents.account`,
noted when it was made), else, for a checkout not yet at Stripe, its
organiser's account now (payment_attempts -> events -> organisers). One
indexed read beside a call to Stripe that costs far more; and an organiser
changing accounts leaves its older payments where they were made.
An organiser without an account of its own is served by the install's
(services/money/payment_settings.py). The StripeGateway objects kept per
secret key are HTTP sessions, not a source of truth: every answer still
comes from Stripe and our rows.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, text

from webapp.services.money.gateway import Card, ChargeResult, PaymentMethodId
from webapp.services.money.stripe_gateway import StripeGateway

# The account a key's intent was made in once it was (the organiser may have changed accounts since),
# else its organiser's account now.
_ACCOUNT_OF_KEY = text(
    "SELECT s.idempotency_key IS NOT NULL AS noted, s.account, o.stripe_secret_key_env FROM payment_attempts p"
    " JOIN events e ON e.id = p.event_id JOIN organisers o ON o.id = e.organiser_id"
    " LEFT JOIN stripe_intents s ON s.idempotency_key = p.idempotency_key WHERE p.idempotency_key = :k")
_ACCOUNT_OF_INTENT = text("SELECT account FROM stripe_intents WHERE intent_id = :i")


class StripeAccounts:
    def __init__(self, engine: Engine, config: Mapping[str, Any], environ: Mapping[str, str] = os.environ):
        self.engine = engine
        self.config = config
        self.environ = environ
        self.install = StripeGateway.from_config(engine, config)
        self._gateways: dict[str, StripeGateway] = {}
        self._lock = threading.Lock()  # guards the dict of HTTP sessions only

    def _by_env(self, env_name: str | None) -> StripeGateway:
        if not env_name:
            return self.install
        with self._lock:
            found = self._gateways.get(env_name)
            secret = self.environ.get(env_name, "")
            if found is None or found.secret_key != secret:
                found = self._gateways[env_name] = StripeGateway(
                    self.engine, secret_key=secret, api_base=self.config["STRIPE_API_BASE"], account=env_name,
                    timeout=(self.config["STRIPE_CONNECT_TIMEOUT_SECONDS"], self.config["STRIPE_READ_TIMEOUT_SECONDS"]))
            return found

    def for_key(self, idempotency_key: str) -> StripeGateway:
        """The gateway of the organiser whose checkout this key is (the install's for a key of no checkout)."""
        with self.engine.connect() as conn:
            found = conn.execute(_ACCOUNT_OF_KEY, {"k": idempotency_key}).first()
        if found is None:
            return self.install
        return self._by_env(found.account if found.noted else found.stripe_secret_key_env)

    def for_intent(self, intent_id: str) -> StripeGateway:
        """The gateway of the account the intent was made in."""
        with self.engine.connect() as conn:
            return self._by_env(conn.execute(_ACCOUNT_OF_INTENT, {"i": intent_id}).scalar())

    # --- the gateway interface, each call routed ---

    def authorise(self, *, idempotency_key: str, amount_minor: int, currency: str,
                  card: Card | PaymentMethodId) -> ChargeResult:
        return self.for_key(idempotency_key).authorise(idempotency_key=idempotency_key, amount_minor=amount_minor,
                                                       currency=currency, card=card)

    def capture(self, reference: str) -> ChargeResult:
        return self.for_intent(reference).capture(reference)

    def void(self, idempotency_key: str) -> ChargeResult:
        return self.for_key(idempotency_key).void(idempotency_key)

    def retrieve(self, idempotency_key: str) -> ChargeResult | None:
        return self.for_key(idempotency_key).retrieve(idempotency_key)

    def refund(self, reference: str, amount_minor: int, *, idempotency_key: str | None = None) -> None:
        self.for_intent(reference).refund(reference, amount_minor, idempotency_key=idempotency_key)

    def uncaptured(self, *, older_than_seconds: float, limit: int) -> list[tuple[str, str]]:
        """Each account's leftovers: an intent is asked of the account it was made in."""
        found = []
        for key, intent_id, account in self.install.open_intents_with_accounts(
                older_than_seconds=older_than_seconds, limit=limit):
            if self._by_env(account).intent_status(intent_id) == "requires_capture":
                found.append((key, intent_id))
        return found
