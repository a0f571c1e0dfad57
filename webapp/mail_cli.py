"""`flask deliver-mail`: the SMTP delivery worker. Any number may run at once."""
from __future__ import annotations

import logging

import click
from flask import current_app

from webapp.extensions import db
from webapp.worker import run_passes, stop_requested

log = logging.getLogger("webapp.mail")


@click.command("deliver-mail")
@click.option("--once", is_flag=True, help="One pass, then exit.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between passes when nothing is due.")
@click.option("--batch", default=50, show_default=True, help="Messages taken per pass.")
def deliver_mail_command(once: bool, interval: float, batch: int) -> None:
    """Send the outbox over SMTP_URL: retried with backoff, permanent failures kept for admins."""
    from webapp.services.messaging import delivery

    if not current_app.config.get("SMTP_URL"):
        raise click.UsageError("SMTP_URL is not set (e.g. smtp+starttls://user:password@mail.example.com:587).")
    delivery.parse_smtp_url(current_app.config["SMTP_URL"])  # a typo fails now, not on every pass

    def one_pass() -> bool:
        result = delivery.deliver_once(db.session, limit=batch, stop=stop_requested)
        if result.sent or result.retried or result.failed:
            log.info("mail.pass", extra={"sent": result.sent, "retried": result.retried, "failed": result.failed})
            if once:
                click.echo(f"{result.sent} sent, {result.retried} to retry, {result.failed} failed.")
        # A full batch means more is waiting: go again at once.
        return (result.sent + result.retried + result.failed) >= batch

    run_passes(one_pass, once=once, interval=interval, failure="mail.pass_failed", log=log)
