"""The simulated payment gateway.

A real module with the interface a real provider gives, in two steps as a
card payment is really made:

- `authorise` asks the issuer to approve and reserve the amount (idempotent
  on our key: a repeated key gets the first answer back);
- `capture` takes the money of an authorisation; `void` releases it instead;
- `void` works on our key, not the provider's reference, so it can be sent
  while the authorisation is still in flight (a "technical cancel"): once a
  key is voided, an authorisation that turns up under it later is refused.
  That makes "void" a definitive answer at any moment, which is what lets
  reconciliation say "nothing was charged" truthfully;
- `retrieve` answers "what happened under that key?" (None: no record yet,
  which is NOT a decline: the authorisation may still be on its way);
- `refund` gives back a captured charge, or voids one never captured; with
  an idempotency key it gives back that amount once per key (partial
  refunds: see services/money/refunds.py);
- `uncaptured` lists authorisations left uncaptured (the sweep's safety net).

A provider may also answer an authorisation with "requires action" (3-D
Secure): the buyer's browser finishes it with the provider, and until then
`retrieve` has no definitive answer (None), as for one still in flight.
`StripeGateway` (stripe_gateway.py) is the real provider behind the same
interface, chosen by `PAYMENT_GATEWAY=stripe`.

Deterministic test cards choose the issuer's answer:

    4242 4242 4242 4242  approved
    4000 0000 0000 0002  declined (card_declined)
    4000 0000 0000 9995  declined (insufficient_funds)
    4000 0000 0000 0077  approved after a slow authorisation

Any other number that passes the Luhn check is approved.

The provider's ledger lives in `gateway_charges`, written on its own
connection and committed at once, exactly as a remote provider would keep it
whatever becomes of our own transaction. A slow authorisation writes its row
only when it is done, so until then `retrieve` has no record of it.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Protocol

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Engine, text

APPROVED = "approved"
CARD_DECLINED = "card_declined"
INSUFFICIENT_FUNDS = "insufficient_funds"
INVALID_CARD = "invalid_card"

# Where the money of a charge stands.
AUTHORISED = "authorised"
CAPTURED = "captured"
VOIDED = "voided"
DECLINED = "declined"
# The buyer must finish the authorisation with the provider (3-D Secure); not definitive.
REQUIRES_ACTION = "requires_action"
AUTHENTICATION_FAILED = "authentication_failed"

# Lazy: said in the language of the payment's request (the buyer's), and kept with the attempt so.
DECLINE_MESSAGES = {
    CARD_DECLINED: _l("Your card was declined by the issuer."),
    INSUFFICIENT_FUNDS: _l("Your card has insufficient funds."),
    INVALID_CARD: _l("The card details are not valid."),
    AUTHENTICATION_FAILED: _l("Your bank could not confirm the payment was yours (3-D Secure failed)."),
    VOIDED: _l("The payment did not go through. Nothing was charged."),
}

TEST_CARDS = {
    "4242424242424242": APPROVED,
    "4000000000000002": CARD_DECLINED,
    "4000000000009995": INSUFFICIENT_FUNDS,
    "4000000000000077": "slow",
}


class GatewayUnavailable(RuntimeError):
    """The provider gave no answer (timeout, connection lost, 5xx): nothing is known, so nothing is settled."""


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
class PaymentMethodId:
    """A card the buyer's browser gave to the provider itself (Stripe.js): we only ever see its id."""

    id: str
    last4: str = ""


@dataclass(frozen=True)
class ChargeResult:
    outcome: str  # the issuer's answer (or "voided": the key was voided before any authorisation came)
    reference: str
    status: str  # authorised, captured, voided, declined (or requires_action, from authorise only)
    # For requires_action: what the provider's script in the browser needs to finish it.
    client_secret: str | None = None
    # The card's fingerprint, where the provider gives one (Stripe): the same card across accounts.
    instrument: str | None = None

    @property
    def approved(self) -> bool:
        """The money is reserved or taken: an order may be made of it."""
        return self.status in (AUTHORISED, CAPTURED)

    @property
    def message(self) -> str:
        if self.approved:
            return _("Payment approved.")
        if self.status == VOIDED:
            return str(DECLINE_MESSAGES[VOIDED])
        return str(DECLINE_MESSAGES.get(self.outcome, _l("Payment failed.")))


class RefundRefused(Exception):
    """A definitive no from the provider: the charge cannot give back this amount (retrying will not help)."""


class PaymentGateway(Protocol):
    def authorise(self, *, idempotency_key: str, amount_minor: int, currency: str,
                  card: Card | PaymentMethodId) -> ChargeResult: ...

    def capture(self, reference: str) -> ChargeResult: ...

    def void(self, idempotency_key: str) -> ChargeResult: ...

    def retrieve(self, idempotency_key: str) -> ChargeResult | None: ...

    def refund(self, reference: str, amount_minor: int, *, idempotency_key: str | None = None) -> None: ...

    def uncaptured(self, *, older_than_seconds: float, limit: int) -> list[tuple[str, str]]: ...


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

    def _decide(self, card: Card | PaymentMethodId) -> str:
        if isinstance(card, PaymentMethodId) or not luhn_valid(card.number):
            return INVALID_CARD
        outcome = TEST_CARDS.get(card.number, APPROVED)
        if outcome == "slow":
            time.sleep(self.slow_seconds)
            return APPROVED
        return outcome

    def authorise(self, *, idempotency_key: str, amount_minor: int, currency: str,
                  card: Card | PaymentMethodId) -> ChargeResult:
        """Ask the issuer once per key; a repeated (or voided) key gets the ledger's answer."""
        outcome = self._decide(card)
        status = AUTHORISED if outcome == APPROVED else DECLINED
        with self.engine.begin() as conn:
            row = conn.execute(
                text(
                    "INSERT INTO gateway_charges"
                    " (idempotency_key, reference, amount_minor, currency, card_last4, outcome, status)"
                    " VALUES (:k, :r, :a, :c, :l, :o, :s)"
                    # A key already used, or voided while this was in flight: the ledger's row stands.
                    " ON CONFLICT (idempotency_key) DO NOTHING RETURNING reference, outcome, status"
                ),
                {"k": idempotency_key, "r": "ch_" + secrets.token_hex(12), "a": amount_minor, "c": currency,
                 "l": card.last4, "o": outcome, "s": status},
            ).first()
        if row is None:
            result = self.retrieve(idempotency_key)
            assert result is not None
            return result
        return ChargeResult(outcome=row.outcome, reference=row.reference, status=row.status)

    def capture(self, reference: str) -> ChargeResult:
        """Take an authorisation's money; capturing twice takes it once. A voided one stays voided."""
        with self.engine.begin() as conn:
            row = conn.execute(
                text(
                    "UPDATE gateway_charges SET status = 'captured', captured_at = coalesce(captured_at, now())"
                    " WHERE reference = :r AND status IN ('authorised', 'captured')"
                    " RETURNING reference, outcome, status"
                ),
                {"r": reference},
            ).first()
            if row is None:
                row = conn.execute(
                    text("SELECT reference, outcome, status FROM gateway_charges WHERE reference = :r"),
                    {"r": reference},
                ).first()
        if row is None:
            raise LookupError(f"no charge {reference}")
        return ChargeResult(outcome=row.outcome, reference=row.reference, status=row.status)

    def void(self, idempotency_key: str) -> ChargeResult:
        """Release whatever is authorised under this key, now or when it arrives.

        Returns the charge as it then stands: voided, or captured (void cannot
        undo a capture: refund it), or declined.
        """
        with self.engine.begin() as conn:
            row = conn.execute(
                text(
                    "INSERT INTO gateway_charges"
                    " (idempotency_key, reference, amount_minor, currency, card_last4, outcome, status, voided_at)"
                    " VALUES (:k, :r, 0, '', '', 'voided', 'voided', now())"
                    " ON CONFLICT (idempotency_key) DO UPDATE SET status = 'voided', voided_at = now()"
                    " WHERE gateway_charges.status = 'authorised'"
                    " RETURNING reference, outcome, status"
                ),
                {"k": idempotency_key, "r": "vd_" + secrets.token_hex(12)},
            ).first()
        if row is None:  # captured, declined or voided already
            result = self.retrieve(idempotency_key)
            assert result is not None
            return result
        return ChargeResult(outcome=row.outcome, reference=row.reference, status=row.status)

    def retrieve(self, idempotency_key: str) -> ChargeResult | None:
        """The charge under this key, or None: no record YET (not a decline)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                text("SELECT reference, outcome, status FROM gateway_charges WHERE idempotency_key = :k"),
                {"k": idempotency_key},
            ).first()
        return ChargeResult(outcome=row.outcome, reference=row.reference, status=row.status) if row else None

    def refund(self, reference: str, amount_minor: int, *, idempotency_key: str | None = None) -> None:
        """Give back money of an approved charge.

        Without a key: give back up to `amount_minor` in all, or void an
        authorisation never captured; repeating it gives back nothing more.
        With a key: give back `amount_minor` once per key (a repeated key
        gives back nothing more). An authorisation never captured is voided
        when the refund is for all of it, else captured and then refunded in
        part. Raises RefundRefused for more than is left to give back.
        """
        if idempotency_key is None:
            self._refund_all(reference, amount_minor)
            return
        with self.engine.begin() as conn:
            # The charge's lock: a capture (the checkout's, the sweep's) waits
            # for this decision, and the decision sees the status as it stands.
            charge = conn.execute(
                text("SELECT status, amount_minor, refunded_minor FROM gateway_charges"
                     " WHERE reference = :r AND outcome = 'approved' FOR UPDATE"),
                {"r": reference},
            ).first()
            if charge is None:
                raise LookupError(f"no approved charge {reference}")
            if conn.execute(text("SELECT 1 FROM gateway_refunds WHERE idempotency_key = :k"),
                            {"k": idempotency_key}).first():
                return
            left = charge.amount_minor - charge.refunded_minor if charge.status in (AUTHORISED, CAPTURED) else 0
            if not 0 < amount_minor <= left:
                raise RefundRefused(f"{reference} has {left} to give back, not {amount_minor}")
            if charge.status == AUTHORISED and amount_minor == charge.amount_minor:
                conn.execute(text("UPDATE gateway_charges SET status = 'voided', voided_at = now()"
                                  " WHERE reference = :r"), {"r": reference})
            else:
                conn.execute(text("UPDATE gateway_charges SET status = 'captured', captured_at ="
                                  " coalesce(captured_at, now()), refunded_minor = refunded_minor + :a"
                                  " WHERE reference = :r"), {"a": amount_minor, "r": reference})
            conn.execute(text("INSERT INTO gateway_refunds (idempotency_key, reference, amount_minor)"
                              " VALUES (:k, :r, :a)"), {"k": idempotency_key, "r": reference, "a": amount_minor})

    def _refund_all(self, reference: str, amount_minor: int) -> None:
        with self.engine.begin() as conn:
            updated = conn.execute(
                text(
                    # SET reads the row as it was: an authorised charge is voided, a captured one refunded.
                    "UPDATE gateway_charges SET"
                    " refunded_minor = CASE WHEN status = 'captured' THEN LEAST(amount_minor, :a)"
                    "  ELSE refunded_minor END,"
                    " status = CASE WHEN status = 'authorised' THEN 'voided' ELSE status END,"
                    " voided_at = CASE WHEN status = 'authorised' THEN now() ELSE voided_at END"
                    " WHERE reference = :r AND outcome = 'approved'"
                ),
                {"a": amount_minor, "r": reference},
            ).rowcount
        if updated != 1:
            raise LookupError(f"no approved charge {reference}")

    def uncaptured(self, *, older_than_seconds: float, limit: int) -> list[tuple[str, str]]:
        """(key, reference) of authorisations older than this and still neither captured nor voided."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT idempotency_key, reference FROM gateway_charges WHERE status = 'authorised'"
                    " AND created_at < now() - make_interval(secs => :s) ORDER BY created_at LIMIT :n"
                ),
                {"s": older_than_seconds, "n": limit},
            ).all()
        return [(r.idempotency_key, r.reference) for r in rows]


def payment_gateway() -> PaymentGateway:
    """The current app's gateway."""
    from flask import current_app

    return current_app.extensions["payment_gateway"]
