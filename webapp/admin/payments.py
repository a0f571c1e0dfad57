"""Admin: the organiser's payment settings, its owners' only (organiser_guard: an unlisted route needs `settings`)."""
from __future__ import annotations

from flask import current_app, flash, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from webapp import organiser_guard
from webapp.admin import bp
from webapp.extensions import db
from webapp.htmx import redirect_to
from webapp.models import Organiser
from webapp.services.errors import InvalidRequest
from webapp.services.money import payment_settings


def _page(status: int = 200, *, error: str | None = None, typed: dict | None = None):
    organiser = db.session.get(Organiser, organiser_guard.acting().organiser_id)
    shown = typed or {name: getattr(organiser, name) or "" for name in payment_settings.FIELDS}
    return render_template("admin/payment_settings.html", organiser=organiser, shown=shown, error=error,
                           stripe=current_app.config["PAYMENT_GATEWAY"] == "stripe"), status


@bp.get("/payment-settings")
def payment_settings_page():
    return _page()


@bp.post("/payment-settings")
def payment_settings_save():
    typed = {name: request.form.get(name, "")[:200] for name in payment_settings.FIELDS}
    try:
        payment_settings.update(db.session, organiser_id=organiser_guard.acting().organiser_id,
                                actor_id=current_user.id, form=typed)
    except InvalidRequest as refused:
        db.session.rollback()
        return _page(400, error=refused.message, typed=typed)
    flash(gettext("Payment settings saved."), "success")
    return redirect_to(url_for("admin.payment_settings_page"))
