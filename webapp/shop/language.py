"""The language switcher: the buyer's choice, kept in a cookie for a year, then back to their page.

A plain form per language in every buyer page's header (base.html), so it
works without JavaScript. Nothing on the server changes: a hold, a basket,
a place in the waiting room live in the database or in their own cookies,
so the page the buyer comes back to is the one they left, in the new language.
"""
from __future__ import annotations

from flask import current_app, request

from webapp.auth.views import safe_next
from webapp.htmx import redirect_to
from webapp.i18n import LANGUAGE_COOKIE, LANGUAGES
from webapp.shop import bp

ONE_YEAR = 365 * 24 * 3600


@bp.post("/language")
def choose_language():
    back = redirect_to(safe_next(request.form.get("next")))
    chosen = request.form.get("lang", "")
    if chosen in LANGUAGES:
        back.set_cookie(LANGUAGE_COOKIE, chosen, max_age=ONE_YEAR, samesite="Lax", httponly=True,
                        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))
    return back
