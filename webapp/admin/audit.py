"""Admin: the audit log (who did what, when, before and after), by event and action."""
from __future__ import annotations

from flask import render_template, request

from webapp.admin import bp
from webapp.extensions import db
from webapp.services import audit
from webapp.services.admin import reports as admin_reports


@bp.get("/audit")
def audit_log():
    event_id = request.args.get("event", type=int)
    page = max(1, request.args.get("page", 1, type=int))
    action = request.args.get("action", "").strip()[:60]
    rows, total = audit.entries(db.session, event_id=event_id, action=action, page=page)
    event = admin_reports.event_with_tiers(db.session, event_id) if event_id else None
    return render_template("admin/audit.html", entries=rows, total=total, page=page, event=event, action=action,
                           pages=max(1, -(-total // audit.PAGE_SIZE)))
