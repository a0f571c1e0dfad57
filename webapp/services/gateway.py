"""The simulated payment gateway.

A real module with the interface a real provider would get: `charge` is
idempotent on its key, `retrieve` answers "what happened to that charge?"
(used to settle payments whose confirmation was interrupted), `refund`
returns money. Deterministic test cards choose the outcome:

    4242 4242 4242 4242  approved
    4000 0000 0000 0002  declined (card_declined)
    4000 0000 0000 9995  declined (insufficient_funds)
    4000 0000 0000 0077  approved after a slow authorisation

Any other number that passes the Luhn check is approved.

The provider's ledger lives in `gateway_charges`, written on its own
connection and committed at once, exactly as a remote provider would keep it
whatever becomes of our own transaction.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine, text

APPROVED = "approved"
CARD_DECLINED = "card_declined"
INSUFFICIENT_FUNDS = "insufficient_funds"
INVALID_CARD = "invalid_card"

DECLINE_MESSAGES = {
    CARD_DECLINED: "Your card was declined by the issuer.",
    INSUFFICIENT_FUNDS: "Your card has insufficient funds.",
    INVALID_CARD: "The card details are not valid.",
}

TEST_CARDS = {
    "4242424242424242": APPROVED,
    "4000000000000002": CARD_DECLINED,
    "4000000000009995": INSUFFICIENT_FUNDS,
    "4000000000000077": "slow",
}


@dataclass(frozen=True)
class Card:
    number: str
    exp_month: int
    exp_year: int
    cvc: str

    @property
    def last4(self) -> str:
        return self.number[-4:]


@dataclass(frozen=True)
class ChargeResult:
    outcome: str
    reference: str

    @property
    def approved(self) -> bool:
        return self.outcome == APPROVED

    @property
    def message(self) -> str:
        return "Payment approved." if self.approved else DECLINE_MESSAGES.get(self.outcome, "Payment failed.")


class PaymentGateway(Protocol):
    def charge(self, *, idempotency_key: str, amount_minor: int, currency: str, card: Card) -> ChargeResult: ...

    def retrieve(self, idempotency_key: str) -> ChargeResult | None: ...

    def refund(self, reference: str, amount_minor: int) -> None: ...


def luhn_valid(number: str) -> bool:
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


class SimulatedGateway:
    def __init__(self, engine: Engine, slow_seconds: float = 4.0):
        self.engine = engine
        self.slow_seconds = slow_seconds

    def _decide(self, card: Card) -> str:
        if not luhn_valid(card.number):
            return INVALID_CARD
        outcome = TEST_CARDS.get(card.number, APPROVED)
        if outcome == "slow":
            time.sleep(self.slow_seconds)
            return APPROVED
        return outcome

    def charge(self, *, idempotency_key: str, amount_minor: int, currency: str, card: Card) -> ChargeResult:
        """Charge once per key; a repeated key gets the first answer back."""
        existing = self.retrieve(idempotency_key)
        if existing is not None:
            return existing
        outcome = self._decide(card)
        reference = "ch_" + secrets.token_hex(12)
        with self.engine.begin() as conn:
            row = conn.execute(
                text(
                    "INSERT INTO gateway_charges"
                    " (idempotency_key, reference, amount_minor, currency, card_last4, outcome)"
                    " VALUES (:k, :r, :a, :c, :l, :o)"
                    " ON CONFLICT (idempotency_key) DO NOTHING RETURNING reference, outcome"
                ),
                {"k": idempotency_key, "r": reference, "a": amount_minor, "c": currency,
                 "l": card.last4, "o": outcome},
            ).first()
        if row is None:  # a concurrent request with the same key won
            result = self.retrieve(idempotency_key)
            assert result is not None
            return result
        return ChargeResult(outcome=row.outcome, reference=row.reference)

    def retrieve(self, idempotency_key: str) -> ChargeResult | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                text("SELECT reference, outcome FROM gateway_charges WHERE idempotency_key = :k"),
                {"k": idempotency_key},
            ).first()
        return ChargeResult(outcome=row.outcome, reference=row.reference) if row else None

    def refund(self, reference: str, amount_minor: int) -> None:
        """Refund up to the charged amount; repeating it refunds nothing more."""
        with self.engine.begin() as conn:
            updated = conn.execute(
                text(
                    "UPDATE gateway_charges SET refunded_minor = LEAST(amount_minor, :a)"
                    " WHERE reference = :r AND outcome = 'approved'"
                ),
                {"a": amount_minor, "r": reference},
            ).rowcount
        if updated != 1:
            raise LookupError(f"no approved charge {reference}")


def init_app(app) -> None:
    """Build the app's gateway once, in the app factory."""
    from webapp.extensions import db

    with app.app_context():
        app.extensions["payment_gateway"] = SimulatedGateway(db.engine, slow_seconds=app.config["GATEWAY_SLOW_SECONDS"])


def payment_gateway() -> PaymentGateway:
    """The current app's gateway."""
    from flask import current_app

    return current_app.extensions["payment_gateway"]
