"""The app's payment gateway, chosen once by PAYMENT_GATEWAY: "simulated" (the default) or "stripe"."""
from __future__ import annotations

from webapp.services.money.gateway import SimulatedGateway
from webapp.services.money.stripe_accounts import StripeAccounts


def init_app(app) -> None:
    """Build the app's gateway once, in the app factory (read back by gateway.payment_gateway)."""
    from webapp.extensions import db

    with app.app_context():
        if app.config["PAYMENT_GATEWAY"] == "stripe":
            # Each organiser's payments in its own Stripe account, or the install's (stripe_accounts.py).
            app.extensions["payment_gateway"] = StripeAccounts(db.engine, app.config)
        elif app.config["PAYMENT_GATEWAY"] == "simulated":
            app.extensions["payment_gateway"] = SimulatedGateway(
                db.engine, slow_seconds=app.config["GATEWAY_SLOW_SECONDS"])
        else:
            raise RuntimeError(f"PAYMENT_GATEWAY must be simulated or stripe, not {app.config['PAYMENT_GATEWAY']!r}.")
