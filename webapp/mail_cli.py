"""`flask deliver-mail`: the SMTP delivery worker. Any number may run at once."""
from __future__ import annotations

import logging
import signal
import time

import click
from flask import current_app

from webapp.extensions import db

log = logging.getLogger("webapp.mail")


@click.command("deliver-mail")
@click.option("--once", is_flag=True, help="One pass, then exit.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between passes when nothing is due.")
@click.option("--batch", default=50, show_default=True, help="Messages taken per pass.")
def deliver_mail_command(once: bool, interval: float, batch: int) -> None:
    """Send the outbox over SMTP_URL: retried with backoff, permanent failures kept for admins."""
    from webapp.services import delivery

    if not current_app.config.get("SMTP_URL"):
        raise click.UsageError("SMTP_URL is not set (e.g. smtp+starttls://user:password@mail.example.com:587).")
    delivery.parse_smtp_url(current_app.config["SMTP_URL"])  # a typo fails now, not on every pass
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        result = None
        try:
            result = delivery.deliver_once(db.session, limit=batch)
            if result.sent or result.retried or result.failed:
                log.info("mail.pass", extra={"sent": result.sent, "retried": result.retried,
                                             "failed": result.failed})
                if once:
                    click.echo(f"{result.sent} sent, {result.retried} to retry, {result.failed} failed.")
        except Exception:  # a failed pass (database away) is logged; the next one retries
            db.session.rollback()
            log.exception("mail.pass_failed")
        if once or stopping:
            break
        # A full batch means more is waiting: go again at once.
        busy = result is not None and (result.sent + result.retried + result.failed) >= batch
        deadline = time.monotonic() + (0 if busy else interval)
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.1)
    db.session.remove()
