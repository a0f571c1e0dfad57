"""Admin: the disputes (chargebacks) Stripe reported; they are answered in Stripe's dashboard."""
from __future__ import annotations

from flask import render_template

from webapp.admin import bp
from webapp.extensions import db
from webapp.services.admin import disputes as admin_disputes


@bp.get("/disputes")
def disputes_page():
    return render_template("admin/disputes.html", disputes=admin_disputes.recent_disputes(db.session))
