"""Admin: webhook endpoints (register, remove), each one's delivery log with the last answer, and redelivery."""
from __future__ import annotations

from flask import flash, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from webapp.admin import bp
from webapp.extensions import db
from webapp.htmx import redirect_to
from webapp.parsing import parse_id
from webapp.services.admin import reports as admin_reports
from webapp.services.errors import InvalidRequest
from webapp.services.messaging import webhooks


def _page(status: int = 200, **extra):
    return render_template("admin/webhooks.html", endpoints=webhooks.endpoints(db.session),
                           events=admin_reports.all_events(db.session), types=webhooks.EVENT_TYPES,
                           **extra), status


@bp.get("/webhooks")
def webhooks_page():
    return _page()


@bp.post("/webhooks")
def webhook_create():
    raw_event = request.form.get("event", "")
    event_id = parse_id(raw_event) if raw_event else None
    try:
        if raw_event and event_id is None:
            raise InvalidRequest(gettext("Pick an event from the list, or all events."))
        endpoint = webhooks.create_endpoint(db.session, actor_id=current_user.id, url=request.form.get("url", ""),
                                            event_id=event_id, event_types=request.form.getlist("type"))
    except InvalidRequest as refused:
        db.session.rollback()
        return _page(400, error=refused.message, url=request.form.get("url", "")[:500])
    # The secret is shown once, on this answer: the receiver needs it to check signatures.
    page, status = _page(new=endpoint)
    return page, status, {"Cache-Control": "no-store"}


@bp.post("/webhooks/<int:endpoint_id>/delete")
def webhook_delete(endpoint_id: int):
    webhooks.delete_endpoint(db.session, actor_id=current_user.id, endpoint_id=endpoint_id)
    flash(gettext("The webhook was removed."), "success")
    return redirect_to(url_for("admin.webhooks_page"))


@bp.get("/webhooks/<int:endpoint_id>")
def webhook_log(endpoint_id: int):
    endpoint = webhooks.get_endpoint(db.session, endpoint_id)
    return render_template("admin/webhook_log.html", endpoint=endpoint,
                           deliveries=webhooks.deliveries(db.session, endpoint.id))


@bp.post("/webhooks/deliveries/<int:delivery_id>/redeliver")
def webhook_redeliver(delivery_id: int):
    delivery = webhooks.redeliver(db.session, actor_id=current_user.id, delivery_id=delivery_id)
    flash(gettext("Delivery #%(id)s goes out again on the worker's next pass.", id=delivery.id), "success")
    return redirect_to(url_for("admin.webhook_log", endpoint_id=delivery.endpoint_id))
