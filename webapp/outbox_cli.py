"""`flask outbox`: print unsent messages (and mark them sent): a look at the outbox without SMTP."""
from __future__ import annotations

import click
from sqlalchemy import text

from webapp.extensions import db


@click.command("outbox")
@click.option("--limit", default=100, show_default=True, help="Messages per run.")
@click.option("--keep", is_flag=True, help="Print only; leave the messages unsent.")
def outbox_command(limit: int, keep: bool) -> None:
    """Print the e-mail outbox (what a mail sender would deliver) and mark it sent."""
    from webapp.services.messaging import mail, outbox

    messages = outbox.take_unsent(db.session, limit=limit)
    for m in messages:
        mail.render_into(db.session, m)
        click.echo(f"--- message {m.id} · {m.created_at:%Y-%m-%d %H:%M:%S %Z}")
        click.echo(f"To: {m.recipient}")
        click.echo(f"Subject: {m.subject}")
        click.echo("")
        click.echo(m.body.rstrip())
        click.echo("")
        if not keep:
            m.sent_at = text("now()")
    db.session.commit()
    click.echo(f"{len(messages)} message(s) {'shown' if keep else 'sent'}.")
