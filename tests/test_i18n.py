"""The language a request is answered in, chosen in the documented order (webapp/i18n.py)."""
from __future__ import annotations

from flask import g
from flask_babel import get_locale

from webapp.i18n import LANGUAGE_COOKIE, LANGUAGES, compile_catalogs, select_locale


def _chosen(app, headers=None, cookie=None, organiser=None):
    environ = {"HTTP_COOKIE": f"{LANGUAGE_COOKIE}={cookie}"} if cookie else None
    with app.test_request_context("/", headers=headers or {}, environ_base=environ):
        if organiser:
            g.organiser_locale = organiser
        return select_locale(), str(get_locale())


def test_the_buyers_choice_wins_over_the_browser_and_the_organiser(app):
    assert _chosen(app, {"Accept-Language": "es"}, cookie="de", organiser="es") == ("de", "de")


def test_the_browser_is_asked_next_with_its_region_ignored(app):
    assert _chosen(app, {"Accept-Language": "fr-FR, es-MX;q=0.8, en;q=0.5"}) == ("es", "es")


def test_then_the_organisers_default_then_the_installs(app):
    assert _chosen(app, {"Accept-Language": "fr"}, organiser="de")[0] == "de"
    assert _chosen(app, {"Accept-Language": "fr"})[0] == app.config["DEFAULT_LOCALE"] == "en"


def test_a_cookie_naming_a_language_we_do_not_speak_is_ignored(app):
    assert _chosen(app, {"Accept-Language": "es"}, cookie="xx")[0] == "es"


def test_every_language_but_english_has_a_compiled_catalog():
    compile_catalogs()
    from webapp.i18n import TRANSLATIONS

    for code in LANGUAGES:
        if code != "en":
            assert (TRANSLATIONS / code / "LC_MESSAGES" / "messages.mo").exists()
