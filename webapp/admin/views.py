"""Admin pages. A non-admin gets 404, so the admin area cannot be discovered."""
from __future__ import annotations

from functools import wraps

from flask import abort, render_template
from flask_login import current_user

from webapp.admin import bp
from webapp.extensions import db
from webapp.models import Event
from sqlalchemy import select


def admin_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated or not current_user.is_admin:
            abort(404)
        return view(*args, **kwargs)

    return wrapped


@bp.get("/")
@admin_required
def events():
    rows = db.session.scalars(select(Event).order_by(Event.starts_at)).all()
    return render_template("admin/events.html", events=rows)
