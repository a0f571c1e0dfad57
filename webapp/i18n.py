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
from flask_babel import Babel

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


def select_locale() -> str:
    if not has_request_context():
        # A command or the worker: no buyer to ask (a mail forces its own with force_locale).
        return g.get("organiser_locale") or current_app.config["DEFAULT_LOCALE"]
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
