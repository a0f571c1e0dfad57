"""`flask deliver-webhooks`: the webhook delivery worker. Any number may run at once."""
from __future__ import annotations

import logging

import click

from webapp.extensions import db
from webapp.worker import run_passes

log = logging.getLogger("webapp.webhooks")


@click.command("deliver-webhooks")
@click.option("--once", is_flag=True, help="One pass, then exit.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between passes when nothing is due.")
@click.option("--batch", default=50, show_default=True, help="Deliveries taken per pass.")
def deliver_webhooks_command(once: bool, interval: float, batch: int) -> None:
    """POST due webhook deliveries, signed; retried with backoff until WEBHOOK_MAX_ATTEMPTS."""
    from webapp.services.messaging import webhooks

    def one_pass() -> bool:
        result = webhooks.deliver_once(db.session, limit=batch)
        if once:
            click.echo(f"{result.delivered} delivered, {result.retried} to retry, {result.failed} failed.")
        return (result.delivered + result.retried + result.failed) >= batch

    run_passes(one_pass, once=once, interval=interval, failure="webhook.pass_failed", log=log)
