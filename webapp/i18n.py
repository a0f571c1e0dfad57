"""The language a page, mail or PDF speaks: Flask-Babel's catalogs, chosen per request.

The choice, first that applies: the buyer's own (the switcher's cookie),
then what the browser asks for (`Accept-Language`), then the organiser's
default when the view knows whose page it is (`g.organiser_locale`), then
the install's `DEFAULT_LOCALE`. Flask-Babel asks only when a string is
translated or a value formatted, and once per request.
"""
from __future__ import annotations

from pathlib import Path

from babel.core import negotiate_locale
from flask import Flask, current_app, g, has_request_context, request
from flask_babel import Babel, get_translations

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
# The languages the shop speaks in full; their catalogs are in TRANSLATIONS.
LANGUAGES: dict[str, str] = {"en": "English", "de": "Deutsch", "es": "Español"}
LANGUAGE_COOKIE = "tb_lang"

babel = Babel()


def init_app(app: Flask) -> None:
    app.config.setdefault("DEFAULT_LOCALE", "en")
    app.config["BABEL_DEFAULT_LOCALE"] = app.config["DEFAULT_LOCALE"]
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    babel.init_app(app, locale_selector=select_locale)
    # Templates call gettext dozens of times a page: each call finds the request's catalog through
    # _request_translations, not Flask-Babel's full lookup (nine context-local reads a call, ~50 µs on a
    # busy host; measured with tests/measure_door_verdict.py, docs/performance.md).
    app.jinja_env.install_gettext_callables(
        lambda string: _request_translations().ugettext(string),
        lambda singular, plural, n: _request_translations().ungettext(singular, plural, n),
        pgettext=lambda context, string: _request_translations().upgettext(context, string),
        npgettext=lambda context, singular, plural, n: _request_translations().unpgettext(context, singular, plural, n),
        newstyle=True,
    )


def select_locale() -> str:
    if not has_request_context():
        # A command or the mail worker: what it renders says its language
        # (services/messaging/language.py), else the install's.
        return current_app.config["DEFAULT_LOCALE"]
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    # Babel's negotiation, not werkzeug's best_match: "es-MX;q=0.8, en;q=0.5"
    # means Spanish, where an exact match of a worse choice would win there.
    asked = negotiate_locale([tag for tag, _ in request.accept_languages], list(LANGUAGES), sep="-")
    if asked:
        return asked
    organisers = g.get("organiser_locale")
    if organisers in LANGUAGES:
        return organisers
    return current_app.config["DEFAULT_LOCALE"]


def _request_translations():
    """The catalog of the request's language, kept beside the locale Flask-Babel chose for it.

    Kept in Flask-Babel's own per-request namespace and valid only for the locale
    object it was found for: `force_locale` (a mail in the buyer's language)
    refreshes that locale, and the next call looks the catalog up again.
    """
    ctx = g.get("_flask_babel")
    kept = getattr(ctx, "tb_translations", None) if ctx is not None else None
    if kept is not None and kept[0] is getattr(ctx, "babel_locale", None):
        return kept[1]
    found = get_translations()
    ctx = g.get("_flask_babel")
    if ctx is not None:
        ctx.tb_translations = (getattr(ctx, "babel_locale", None), found)
    return found


def compile_catalogs() -> list[Path]:
    """Build the `.mo` files the app reads from the `.po` files kept in the repo.

    Run by ./bootstrap.sh and the image build (`python -m webapp.i18n`);
    only a catalog newer than its `.mo` is compiled again. Fuzzy entries are
    left out, as `pybabel compile` does: a guess is not a translation.
    """
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    built = []
    for po in sorted(TRANSLATIONS.glob("*/LC_MESSAGES/*.po")):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as source:
            catalog = read_po(source, locale=po.parent.parent.name)
        with mo.open("wb") as target:
            write_mo(target, catalog)
        built.append(mo)
    return built


if __name__ == "__main__":
    for path in compile_catalogs():
        print(f"compiled {path.relative_to(TRANSLATIONS)}")
