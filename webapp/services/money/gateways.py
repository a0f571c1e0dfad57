"""The app's payment gateway, chosen once by PAYMENT_GATEWAY: "simulated" (the default) or "stripe"."""
from __future__ import annotations

from webapp.services.money.gateway import SimulatedGateway
from webapp.services.money.stripe_gateway import StripeGateway


def init_app(app) -> None:
    """Build the app's gateway once, in the app factory (read back by gateway.payment_gateway)."""
    from webapp.extensions import db

    with app.app_context():
        if app.config["PAYMENT_GATEWAY"] == "stripe":
            app.extensions["payment_gateway"] = StripeGateway.from_config(db.engine, app.config)
        elif app.config["PAYMENT_GATEWAY"] == "simulated":
            app.extensions["payment_gateway"] = SimulatedGateway(
                db.engine, slow_seconds=app.config["GATEWAY_SLOW_SECONDS"])
        else:
            raise RuntimeError(f"PAYMENT_GATEWAY must be simulated or stripe, not {app.config['PAYMENT_GATEWAY']!r}.")
