"""Admin: an event's invoices and credit notes, listed and exported as CSV."""
from __future__ import annotations

from flask import render_template, stream_with_context
from flask_login import current_user
from werkzeug.wrappers import Response

from webapp.admin import bp, load_event
from webapp.extensions import db
from webapp.services.admin import export
from webapp.services.money import invoices as money_invoices


@bp.get("/events/<int:event_id>/invoices")
def invoices(event_id: int):
    event = load_event(event_id)
    return render_template("admin/invoices.html", event=event,
                           documents=money_invoices.documents_of_event(db.session, event.id))


@bp.get("/events/<int:event_id>/invoices.csv")
def export_invoices(event_id: int):
    event = load_event(event_id)
    export.record_export(db.session, actor_id=current_user.id, event_id=event.id)
    return Response(
        stream_with_context(export.invoice_csv(db.engine, event.id)), mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="invoices-event-{event.id}.csv"',
                 "Cache-Control": "no-store"},
    )
