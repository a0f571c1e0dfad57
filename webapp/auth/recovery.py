"""Forgotten passwords and e-mail verification: the routes behind the links we mail.

(Registering sends the first verification mail, in `views.register_post`;
every order confirmation to an unverified account carries a fresh link.)

Asking for a reset answers the same page whether or not the address has an
account, and is rate limited per client and per address asked about. The
link is single-use and expires (`webapp/services/people/account_tokens.py`);
using it ends every other session of the account and revokes its API tokens.
"""
from __future__ import annotations

import logging

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import login_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from webapp.auth import bp
from webapp.extensions import db, limiter
from webapp.services.people import account_tokens, accounts
from webapp.services.people.account_tokens import TokenRefused

log = logging.getLogger(__name__)


class ForgotForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=254)])


class ResetForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField(_l("Repeat it"), validators=[DataRequired(),
                                                     EqualTo("password", message=_l("The two passwords differ."))])


def _reset_limit() -> str:
    return current_app.config["RESET_RATE_LIMIT"]


def _per_address_limit() -> str:
    return current_app.config["RESET_PER_ADDRESS_RATE_LIMIT"]


def _address_asked() -> str:
    return "reset:" + (request.form.get("email") or "").strip().lower()


@bp.get("/password/forgot")
def forgot_password_get():
    return render_template("auth/forgot.html", form=ForgotForm())


@bp.post("/password/forgot")
@limiter.limit(_reset_limit, methods=["POST"])
@limiter.limit(_per_address_limit, methods=["POST"], key_func=_address_asked)
def forgot_password_post():
    form = ForgotForm()
    if not form.validate_on_submit():
        return render_template("auth/forgot.html", form=form), 400
    account_tokens.request_reset(db.session, form.email.data)
    # The same words for every address: whether it has an account stays private.
    return render_template("auth/forgot_sent.html", email=form.email.data.strip().lower())


@bp.get("/password/reset/<token>")
def reset_password_get(token: str):
    try:
        account_tokens.user_for_reset(db.session, token)
    except TokenRefused as refused:
        db.session.rollback()
        return render_template("auth/reset_refused.html", message=refused.message), 400
    db.session.rollback()
    return render_template("auth/reset.html", form=ResetForm(), token=token)


@bp.post("/password/reset/<token>")
@limiter.limit(_reset_limit, methods=["POST"])
def reset_password_post(token: str):
    form = ResetForm()
    try:
        user = account_tokens.user_for_reset(db.session, token)
    except TokenRefused as refused:
        db.session.rollback()
        return render_template("auth/reset_refused.html", message=refused.message), 400
    problem = accounts.password_problem(form.password.data or "", user.email)
    if not form.validate_on_submit() or problem:
        db.session.rollback()
        if problem:
            form.password.errors = [*form.password.errors, problem]
        return render_template("auth/reset.html", form=form, token=token), 400
    reset = account_tokens.reset_password(db.session, token, form.password.data)
    log.info("account.password_reset", extra={"user_id": reset.user.id,
                                               "api_tokens_revoked": reset.api_tokens_revoked})
    login_user(reset.user)
    flash(_reset_done(reset.api_tokens_revoked), "success")
    return redirect(url_for("shop.index"), code=303)


def _reset_done(tokens_revoked: int) -> str:
    if not tokens_revoked:
        return _("Your password is changed. Every other browser signed in to your account is logged out.")
    return ngettext("Your password is changed. Every other browser signed in to your account is logged out,"
                    " and your API token was revoked: make new ones on your account's API tokens page.",
                    "Your password is changed. Every other browser signed in to your account is logged out,"
                    " and your %(num)s API tokens were revoked: make new ones on your account's API tokens page.",
                    tokens_revoked)


@bp.get("/verify/<token>")
def verify_email(token: str):
    try:
        account_tokens.verify_email(db.session, token)
    except TokenRefused as refused:
        db.session.rollback()
        return render_template("auth/reset_refused.html", message=refused.message, verifying=True), 400
    flash(_("Thank you: your e-mail address is confirmed."), "success")
    return redirect(url_for("shop.index"), code=303)
