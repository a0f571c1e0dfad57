"""The language a page, mail or PDF speaks: Flask-Babel's catalogs, chosen per request.

The choice, first that applies: the buyer's own (the switcher's cookie),
then what the browser asks for (`Accept-Language`), then the organiser's
default when the view knows whose page it is (`g.organiser_locale`), then
the install's `DEFAULT_LOCALE`. Flask-Babel asks only when a string is
translated or a value formatted, and once per request.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from babel import support
from babel.core import Locale, negotiate_locale
from flask import Flask, current_app, g, has_request_context, request

# The app context's own variable: `g` without the proxy (see page_locale).
from flask.globals import _cv_app
from flask_babel import Babel, get_locale, get_translations
from jinja2 import pass_eval_context
from jinja2.nodes import EvalContext
from markupsafe import Markup, escape

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
    # Flask-Babel's own template callables find the catalog anew for every
    # string, through two layers of Jinja's context calls: about 15-25 µs a
    # string, measured, and a page says a hundred. These keep the catalog for
    # the request (while the language stays the same: force_locale) and do
    # what Jinja's newstyle gettext does (escape the values, then format).
    app.jinja_env.globals.update(_=_page_gettext, gettext=_page_gettext, ngettext=_page_ngettext)


def page_locale() -> Locale | None:
    """Flask-Babel's `get_locale()`, read without its proxies once chosen.

    Through `g` it costs several microseconds on this machine, and templates
    ask for every string, price and date; the chosen (or forced) locale sits
    on the app context's globals, where Flask-Babel keeps it.
    """
    try:
        kept = vars(_cv_app.get().g)
    except LookupError:
        return None
    locale = getattr(kept.get("_flask_babel"), "babel_locale", None)
    return locale if locale is not None else get_locale()


def _catalog() -> support.NullTranslations:
    locale = page_locale()
    kept = vars(_cv_app.get().g)
    page = kept.get("_page_catalog")
    if page is None or page[0] is not locale:
        page = kept["_page_catalog"] = (locale, get_translations())
    return page[1]


@pass_eval_context
def _page_gettext(eval_ctx: EvalContext, string: str, /, **variables: Any) -> str:
    said = _catalog().ugettext(string)
    if not variables and "%" not in said:
        return Markup(said) if eval_ctx.autoescape else said  # what formatting would give, sooner
    return _format(eval_ctx, said, variables)


@pass_eval_context
def _page_ngettext(eval_ctx: EvalContext, singular: str, plural: str, num: int, /, **variables: Any) -> str:
    variables.setdefault("num", num)
    said = _catalog().ungettext(singular, plural, num)
    return _format(eval_ctx, said, variables)


def _format(eval_ctx: EvalContext, said: str, variables: dict[str, Any]) -> str:
    """`Markup(said) % variables`, as Jinja's newstyle gettext does, with the values escaped once, in C."""
    if not eval_ctx.autoescape:
        return said % variables
    return Markup(said % {name: value if isinstance(value, (int, float)) else escape(value)
                          for name, value in variables.items()})


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
