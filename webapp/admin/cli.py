"""`flask export-attendees`: the admin CSV export from the command line (same streaming code)."""
from __future__ import annotations

import sys

import click

from webapp.extensions import db


@click.command("export-attendees")
@click.argument("event_id", type=int)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="File to write; stdout if absent.")
def export_attendees_command(event_id: int, output: str | None) -> None:
    """Write EVENT_ID's attendee CSV, streamed in batches (memory stays flat)."""
    from webapp.models import Event
    from webapp.services.admin import export

    if db.session.get(Event, event_id) is None:
        raise click.BadParameter(f"No event {event_id}.", param_hint="event_id")
    db.session.remove()
    out = open(output, "w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        for chunk in export.attendee_csv(db.engine, event_id):
            out.write(chunk)
    finally:
        if output:
            out.close()
