"""The language a page, mail or PDF speaks: Flask-Babel's catalogs, chosen per request.

The choice, first that applies: the buyer's own (the switcher's cookie),
then what the browser asks for (`Accept-Language`), then the organiser's
default when the view knows whose page it is (`g.organiser_locale`), then
the install's `DEFAULT_LOCALE`. Flask-Babel asks only when a string is
translated or a value formatted, and once per request.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from babel import support
from babel.core import Locale, negotiate_locale
from flask import Flask, current_app, g, has_request_context, request

# The app context's own variable: `g` without the proxy (see page_locale).
from flask.globals import _cv_app
from flask_babel import Babel, get_locale, get_translations
from flask_babel.speaklater import LazyString
from jinja2 import pass_eval_context
from jinja2.nodes import EvalContext
from markupsafe import Markup, escape
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
# The languages the shop speaks in full; their catalogs are in TRANSLATIONS.
LANGUAGES: dict[str, str] = {"en": "English", "de": "Deutsch", "es": "Español"}
LANGUAGE_COOKIE = "tb_lang"

babel = Babel()


def init_app(app: Flask) -> None:
    app.config.setdefault("DEFAULT_LOCALE", "en")
    app.config["BABEL_DEFAULT_LOCALE"] = app.config["DEFAULT_LOCALE"]
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    # A Locale object, kept per language: Flask-Babel then parses nothing per request.
    babel.init_app(app, locale_selector=lambda: _locale_object(select_locale()))
    # Flask-Babel's own template callables find the catalog anew for every
    # string, through two layers of Jinja's context calls: about 15-25 µs a
    # string, measured, and a page says a hundred. These keep the catalog for
    # the request (while the language stays the same: force_locale) and do
    # what Jinja's newstyle gettext does (escape the values, then format).
    app.jinja_env.globals.update(_=_page_gettext, gettext=_page_gettext, ngettext=_page_ngettext)
    app.before_request(_lend_wtforms_its_catalog)


class _WTFormsCatalog:
    """WTForms' own messages in the request's language, each language's catalog read from disk once.

    Flask-WTF reads it from disk for every request whose form has a field
    without a label (a hidden one: the hold page's every view), about 0.3 ms;
    it first looks for one on the request, where this lends it.
    """

    def ugettext(self, string: str) -> str:
        return _wtforms_catalog(page_locale() or _locale_object("en")).ugettext(string)

    def ungettext(self, singular: str, plural: str, n: int) -> str:
        return _wtforms_catalog(page_locale() or _locale_object("en")).ungettext(singular, plural, n)


_WTFORMS = _WTFormsCatalog()


def _lend_wtforms_its_catalog() -> None:
    request.wtforms_translations = _WTFORMS  # type: ignore[attr-defined]


@lru_cache(maxsize=16)
def _wtforms_catalog(locale: Locale) -> support.NullTranslations:
    from wtforms.i18n import messages_path

    return support.Translations.load(messages_path(), [locale], domain="wtforms")


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


def page_gettext(string: str, /, **variables: Any) -> str:
    """`flask_babel.gettext` by the page's kept catalog (for strings drawn a thousand times: a seat's name)."""
    said = _catalog().ugettext(string)
    return said % variables if variables else said


def lazy_gettext(string: str, /, **variables: Any) -> LazyString:
    """`flask_babel.lazy_gettext` by the page's kept catalog: a form's labels and messages, made into text
    each time a page draws them (about 1 µs each, against 9 µs through Flask-Babel's full lookup)."""
    return LazyString(page_gettext, string, **variables)


_NO_CATALOG = support.NullTranslations()


# Each language's catalog, as Flask-Babel loads it (its own cache is process-wide too).
_CATALOGS: dict[Locale, support.NullTranslations] = {}


def _catalog() -> support.NullTranslations:
    locale = page_locale()
    if locale is None:
        return _NO_CATALOG  # no app context: English, as Flask-Babel does
    found = _CATALOGS.get(locale)
    if found is None:
        found = _CATALOGS[locale] = get_translations()
    return found


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
    return _choose(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("Accept-Language", ""),
                   g.get("organiser_locale"), current_app.config["DEFAULT_LOCALE"])


# The same few combinations come with every request: each is worked out once.
@lru_cache(maxsize=1024)
def _choose(cookie: str | None, accept_language: str, organisers: str | None, default: str) -> str:
    if cookie in LANGUAGES:
        return cookie
    # Babel's negotiation, not werkzeug's best_match: "es-MX;q=0.8, en;q=0.5"
    # means Spanish, where an exact match of a worse choice would win there.
    asked_for = parse_accept_header(accept_language, LanguageAccept)
    asked = negotiate_locale([tag for tag, _ in asked_for], list(LANGUAGES), sep="-")
    if asked:
        return asked
    if organisers in LANGUAGES:
        return organisers
    return default


@lru_cache(maxsize=16)
def _locale_object(code: str) -> Locale:
    return Locale.parse(code)


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
