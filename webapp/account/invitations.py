"""An invitation to an organiser's team: seen, then accepted, by the account it was mailed to."""
from __future__ import annotations

from flask import current_app, render_template, session, url_for
from flask_login import current_user, login_required

from webapp import organiser_guard
from webapp.account import bp
from webapp.extensions import db
from webapp.htmx import redirect_to
from webapp.services.errors import InvalidRequest
from webapp.services.people import organisers


def _max_age() -> int:
    return current_app.config["INVITATION_MAX_AGE_SECONDS"]


@bp.get("/account/invitations/<token>")
@login_required
def invitation(token: str):
    try:
        offered = organisers.read_invitation(db.session, token, max_age=_max_age())
    except InvalidRequest as refused:
        return render_template("account/invitation.html", error=refused.message, token=None), refused.status_code
    return render_template("account/invitation.html", invitation=offered, token=token,
                           mine=offered.email == current_user.email)


@bp.post("/account/invitations/<token>")
@login_required
def invitation_accept(token: str):
    try:
        organiser = organisers.accept_invitation(db.session, token, user_id=current_user.id, max_age=_max_age())
    except InvalidRequest as refused:
        db.session.rollback()
        return render_template("account/invitation.html", error=refused.message, token=None), refused.status_code
    session[organiser_guard.CHOSEN] = organiser.id
    session["_in_a_team"] = True
    return redirect_to(url_for("admin.events"))
