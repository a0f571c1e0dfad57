"""Admin: organisers (a platform administrator makes them and acts for any), switching, and the team."""
from __future__ import annotations

from flask import abort, current_app, flash, render_template, request, session, url_for
from flask_babel import gettext
from flask_login import current_user

from webapp import organiser_guard
from webapp.admin import bp
from webapp.extensions import db
from webapp.htmx import redirect_to
from webapp.i18n import LANGUAGES
from webapp.parsing import parse_id
from webapp.services.admin import reports as admin_reports
from webapp.services.errors import InvalidRequest
from webapp.services.people import organisers


def _organisers_page(status: int = 200, **extra):
    return render_template("admin/organisers.html", organisers=organisers.all_organisers(db.session),
                           **extra), status


@bp.get("/organisers")
def organisers_page():
    return _organisers_page()


@bp.post("/organisers")
def organiser_create():
    try:
        made = organisers.create(db.session, slug=request.form.get("slug", ""), name=request.form.get("name", ""),
                                 actor_id=current_user.id)
    except InvalidRequest as refused:
        db.session.rollback()
        return _organisers_page(400, error=refused.message, slug=request.form.get("slug", "")[:60],
                                name=request.form.get("name", "")[:120])
    flash(gettext("Organiser “%(name)s” was created.", name=made.name), "success")
    return redirect_to(url_for("admin.organisers_page"))


@bp.post("/organisers/switch")
def organiser_switch():
    wanted = parse_id(request.form.get("organiser", ""))
    if wanted is None:
        abort(404)
    actor = organisers.acting(db.session, user_id=current_user.id, is_admin=current_user.is_admin, wanted=wanted)
    if actor is None or actor.organiser_id != wanted:
        # Not a member there: as if it did not exist.
        abort(404)
    if actor.platform_admin:
        organisers.switch(db.session, actor_id=current_user.id, organiser_id=wanted)
    session[organiser_guard.CHOSEN] = wanted
    return redirect_to(url_for("admin.events"))


def _team_page(status: int = 200, **extra):
    acting = organiser_guard.acting()
    return render_template("admin/team.html", members=organisers.members(db.session, acting.organiser_id),
                           roles=list(organisers.CAPABILITIES), events=admin_reports.all_events(db.session),
                           invitations=organisers.pending_invitations(
                               db.session, acting.organiser_id,
                               max_age=current_app.config["INVITATION_MAX_AGE_SECONDS"]),
                           organiser=organisers.by_id(db.session, acting.organiser_id), languages=LANGUAGES,
                           **extra), status


@bp.get("/team")
def team_page():
    return _team_page()


@bp.post("/team")
def team_member_set():
    acting = organiser_guard.acting()
    picked = [parse_id(raw) for raw in request.form.getlist("events")]
    try:
        if None in picked:
            raise InvalidRequest(gettext("Pick the events from the list, or none for all of them."))
        organisers.set_member(db.session, organiser_id=acting.organiser_id, email=request.form.get("email", ""),
                              role=request.form.get("role", ""), actor_id=current_user.id,
                              event_ids=[p for p in picked if p is not None] or None)
    except InvalidRequest as refused:
        db.session.rollback()
        return _team_page(400, error=refused.message)
    flash(gettext("The team was updated."), "success")
    return redirect_to(url_for("admin.team_page"))


@bp.post("/team/language")
def organiser_language():
    """The organiser's default language: its buyer pages speak it to a buyer who chose none (webapp/i18n.py)."""
    try:
        organisers.set_default_locale(db.session, organiser_id=organiser_guard.acting().organiser_id,
                                      locale=request.form.get("locale", ""), languages=LANGUAGES,
                                      actor_id=current_user.id)
    except InvalidRequest as refused:
        db.session.rollback()
        return _team_page(400, language_error=refused.message)
    flash(gettext("The default language of your pages was saved."), "success")
    return redirect_to(url_for("admin.team_page"))


@bp.post("/team/invite")
def team_invite():
    acting = organiser_guard.acting()
    email = request.form.get("email", "")
    try:
        organisers.invite(db.session, organiser_id=acting.organiser_id, email=email,
                          role=request.form.get("role", ""), actor_id=current_user.id)
    except InvalidRequest as refused:
        db.session.rollback()
        return _team_page(400, error=refused.message)
    flash(gettext("An invitation was mailed to %(email)s.", email=email.strip().lower()), "success")
    return redirect_to(url_for("admin.team_page"))


@bp.post("/team/<int:user_id>/remove")
def team_member_remove(user_id: int):
    # Another organiser's member is a NotFound (404) from the service: it removes only from this one.
    organisers.remove_member(db.session, organiser_id=organiser_guard.acting().organiser_id, user_id=user_id,
                             actor_id=current_user.id)
    flash(gettext("The member was removed; their sessions have ended."), "success")
    return redirect_to(url_for("admin.team_page"))


@bp.post("/team/invitations/<int:invitation_id>/revoke")
def team_invitation_revoke(invitation_id: int):
    email = organisers.revoke_invitation(db.session, organiser_id=organiser_guard.acting().organiser_id,
                                         invitation_id=invitation_id, actor_id=current_user.id)
    flash(gettext("The invitation to %(email)s was withdrawn; its link no longer works.", email=email), "success")
    return redirect_to(url_for("admin.team_page"))


@bp.post("/team/mail-sender")
def team_mail_sender():
    """The organiser's name and Reply-To on its mail (owners only: the route needs `settings`)."""
    try:
        organisers.set_mail_sender(db.session, organiser_id=organiser_guard.acting().organiser_id,
                                   from_name=request.form.get("mail_from_name", ""),
                                   reply_to=request.form.get("mail_reply_to", ""), actor_id=current_user.id)
    except InvalidRequest as refused:
        db.session.rollback()
        return _team_page(400, sender_error=refused.message)
    flash(gettext("Mail about your events now goes out under this name."), "success")
    return redirect_to(url_for("admin.team_page"))
