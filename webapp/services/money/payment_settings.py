"""An organiser's payment settings: its own Stripe account, and its invoice numbering.

The secret key and the webhook secret are not stored: the organiser's owner
names the environment variables that hold them (`STRIPE_...`), and the
operator sets those on every app host, as for the install's own keys. So
no secret sits in the database, its backups or its replicas, none is shown
on a page, and rotating one is the operator's deploy, as it is for the
install's. (Encrypting them in the database would still need a key that
lives in the environment, and would put the secrets in every backup.) Only
names starting with STRIPE_ may be named, so an owner cannot have the app
send another of its secrets (SECRET_KEY, the database URL) to Stripe as a
bearer token. The publishable key is public and is stored as it is.

With no account of its own, an organiser's payments go to the install's.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from webapp.models import Organiser
from webapp.services import audit
from webapp.services.errors import InvalidRequest, NotFound

ENV_NAME = re.compile(r"^STRIPE_[A-Z0-9_]{1,57}$")
PUBLISHABLE_KEY = re.compile(r"^pk_(test|live)_[A-Za-z0-9_]{1,190}$")
PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,29}$")
FIELDS = ("stripe_publishable_key", "stripe_secret_key_env", "stripe_webhook_secret_env", "invoice_prefix",
          "credit_note_prefix")


@dataclass(frozen=True)
class StripeAccount:
    """The keys of one Stripe account; `organiser_id` None: the install's own."""

    organiser_id: int | None
    secret_key: str
    publishable_key: str
    webhook_secret: str


def install_account(config: Mapping) -> StripeAccount:
    return StripeAccount(None, config["STRIPE_SECRET_KEY"], config["STRIPE_PUBLISHABLE_KEY"],
                         config["STRIPE_WEBHOOK_SECRET"])


def account_of(organiser: Organiser | None, config: Mapping, environ: Mapping[str, str] = os.environ
               ) -> StripeAccount:
    """The account an organiser's payments go to: its own when it has one, else the install's."""
    if organiser is None or not organiser.stripe_secret_key_env:
        return install_account(config)
    return StripeAccount(organiser.id, environ.get(organiser.stripe_secret_key_env, ""),
                         organiser.stripe_publishable_key or "",
                         environ.get(organiser.stripe_webhook_secret_env or "", ""))


def update(session: Session, *, organiser_id: int, actor_id: int, form: Mapping[str, str],
           environ: Mapping[str, str] = os.environ) -> Organiser:
    """Save an organiser's payment settings (its owner only: the view's guard); the caller commits.

    All three Stripe fields together, or none (back to the install's account). A named variable must be
    set in this app's environment, so a typo is caught here rather than at a buyer's checkout.
    """
    organiser = session.get(Organiser, organiser_id)
    if organiser is None:
        raise NotFound(_("No such organiser."))
    values = {name: (form.get(name) or "").strip() for name in FIELDS}
    stripe = [values[name] for name in FIELDS[:3]]
    errors = []
    if any(stripe) and not all(stripe):
        errors.append(_("Give the publishable key and both variable names, or none of them for the install's account."))
    elif all(stripe):
        if not PUBLISHABLE_KEY.match(values["stripe_publishable_key"]):
            errors.append(_("The publishable key starts with pk_test_ or pk_live_."))
        for name in ("stripe_secret_key_env", "stripe_webhook_secret_env"):
            if not ENV_NAME.match(values[name]):
                errors.append(_("%(name)s is not a variable name starting with STRIPE_ (capitals, digits and _).",
                                name=repr(values[name][:64])))
            elif not environ.get(values[name]):
                errors.append(_("%(name)s is not set in this app's environment: the operator sets it first.",
                                name=values[name]))
        if values["stripe_publishable_key"].startswith("pk_live_") != \
                environ.get(values["stripe_secret_key_env"], "").startswith("sk_live_"):
            errors.append(_("The publishable key and the secret key must both be live keys, or both test keys."))
    for name in ("invoice_prefix", "credit_note_prefix"):
        if not PREFIX.match(values[name]):
            errors.append(_("An invoice or credit-note prefix is 1 to 30 letters, digits and - _ . /"
                            " (e.g. ACME-2026-)."))
            break
    if values["invoice_prefix"] == values["credit_note_prefix"]:
        errors.append(_("Invoices and credit notes need different prefixes."))
    if errors:
        raise InvalidRequest(" ".join(dict.fromkeys(errors)))
    before = audit.snapshot(organiser, FIELDS)
    for name, value in values.items():
        setattr(organiser, name, value or None if name.startswith("stripe_") else value)
    session.flush()
    audit.record(session, actor_id=actor_id, action="organiser.payment_settings", entity="organiser",
                 entity_id=organiser.id, organiser_id=organiser.id, before=before,
                 after=audit.snapshot(organiser, FIELDS))
    return organiser


_PUBLISHABLE_OF_EVENT = text(
    "SELECT o.stripe_publishable_key FROM events e JOIN organisers o ON o.id = e.organiser_id"
    " WHERE e.id = :e AND o.stripe_secret_key_env IS NOT NULL")


def publishable_key_of_event(session: Session | Connection, event_id: int, install_key: str) -> str:
    """The publishable key the buyer's Stripe.js uses for this event: its organiser's, else the install's."""
    return session.execute(_PUBLISHABLE_OF_EVENT, {"e": event_id}).scalar() or install_key


_WEBHOOK_ACCOUNT = text("SELECT id, stripe_webhook_secret_env FROM organisers WHERE slug = :s"
                        " AND stripe_secret_key_env IS NOT NULL")


def webhook_account(session: Session, slug: str, environ: Mapping[str, str] = os.environ) -> tuple[int | None, str]:
    """The organiser with its own Stripe account under this slug, and that account's webhook secret
    ((None, "") when there is none: nothing is accepted)."""
    found = session.execute(_WEBHOOK_ACCOUNT, {"s": slug[:60]}).first()
    if found is None:
        return None, ""
    return found.id, environ.get(found.stripe_webhook_secret_env or "", "")
