"""Register, log in, log out."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from webapp import session_user
from webapp.auth import bp
from webapp.auth.forms import LoginForm, RegisterForm
from webapp.extensions import db, limiter, login_manager
from webapp.htmx import redirect_to
from webapp.services.people import account_tokens, accounts


def safe_next(target: str | None) -> str:
    """Only same-site paths: never send a user on to another host."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//") \
                and "\\" not in target:
            return target
    return url_for("shop.index")


@login_manager.unauthorized_handler
def unauthorized():
    """Send the visitor to log in, then back to the page they were on.

    An htmx request (a countdown poll after the session ended, say) must move
    the whole page, not swap a login form into a fragment; a POST cannot be
    replayed, so it returns to the page that made it.
    """
    if request.method == "GET" and request.headers.get("HX-Request") != "true":
        back = request.full_path.rstrip("?")
    else:
        current = request.headers.get("HX-Current-URL") or request.referrer or ""
        parts = urlsplit(current)
        back = parts.path + (f"?{parts.query}" if parts.query else "") if parts.netloc == request.host else ""
    flash(_("Please log in to continue."), "info")
    return redirect_to(url_for("auth.login_get", next=safe_next(back) if back else None))


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _register_limit() -> str:
    return current_app.config["REGISTER_RATE_LIMIT"]


def _register_check_limit() -> str:
    return current_app.config["REGISTER_CHECK_RATE_LIMIT"]


@bp.get("/login")
def login_get():
    form = LoginForm(next=request.args.get("next", ""))
    return render_template("auth/login.html", form=form)


@bp.post("/login")
@limiter.limit(_login_limit, methods=["POST"])
def login_post():
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(db.session, form.email.data, form.password.data)
        if user is not None:
            login_user(user, remember=False)
            return redirect(safe_next(form.next.data), code=303)
        form.password.errors.append(_("Wrong e-mail or password."))
    return render_template("auth/login.html", form=form), 400


@bp.get("/register")
def register_get():
    form = RegisterForm(next=request.args.get("next", ""))
    return render_template("auth/register.html", form=form)


@bp.post("/register")
@limiter.limit(_register_limit, methods=["POST"])
def register_post():
    form = RegisterForm()
    if form.validate_on_submit():
        user = accounts.register(db.session, email=form.email.data, password=form.password.data,
                                 name=form.name.data)
        account_tokens.send_verification(db.session, user)
        login_user(user)
        flash(_("Welcome, %(name)s! Your account is ready. We sent a link to confirm your e-mail address.",
                name=user.name),
              "success")
        return redirect(safe_next(form.next.data), code=303)
    return render_template("auth/register.html", form=form), 400


@bp.post("/register/validate/<field>")
@limiter.limit(_register_check_limit)
def register_validate(field: str):
    """Inline validation: the submit path's form, checking one field (but never whether an e-mail is taken)."""
    form = RegisterForm()
    form.check_taken = False
    if field not in ("email", "password", "name"):
        return "", 404
    form.validate()
    errors = getattr(form, field).errors
    return render_template("auth/_field_errors.html", errors=errors, field=field)


@bp.post("/logout")
@login_required
def logout():
    # Server-side: every copy of this user's session cookie stops working.
    session_user.end_all_sessions(db.session, current_user.id)
    logout_user()
    session.clear()
    session_user.forget_csrf_token()
    flash(_("You are logged out."), "info")
    return redirect(url_for("shop.index"), code=303)
