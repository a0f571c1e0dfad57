"""Jinja filters and globals shared by every template.

`money` and `when` speak the request's language (Babel's CLDR data, chosen
by webapp/i18n.py); outside a request, or under `flask_babel.force_locale`,
the forced language or English. They run a thousand times on a seat map, so
the parsed Babel patterns are cached per language and format.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache

from babel import Locale
from babel.dates import DateTimePattern
from babel.dates import parse_pattern as parse_date_pattern
from babel.numbers import NumberPattern
from flask import Flask
from flask.globals import _cv_request

from webapp.i18n import LANGUAGES, page_locale
from webapp.models import SEAT_PROPERTIES
from webapp.timezones import localise

ENGLISH = Locale("en")
DEFAULT_WHEN = "%a %d %b %Y, %H:%M"
# The default moment per language, in CLDR's letters: English as it always read
# ("Sat 12 Dec 2026, 19:30"), the others as their own shops write a date.
DEFAULT_WHEN_PATTERNS = {"en": "EEE dd MMM y, HH:mm", "de": "EEE, d. MMM y, HH:mm", "es": "EEE, d MMM y, HH:mm"}
# strftime's directives as CLDR pattern letters, for the formats templates pass.
_STRFTIME_TO_CLDR = {"a": "EEE", "A": "EEEE", "d": "dd", "b": "MMM", "B": "MMMM", "m": "MM", "Y": "y",
                     "H": "HH", "M": "mm", "S": "ss", "%": "%"}


def current_locale() -> Locale:
    """The language of what is being drawn: forced (a mail, a PDF), else the request's, else English."""
    return page_locale() or ENGLISH


@lru_cache(maxsize=64)
def _currency_pattern(locale: Locale) -> NumberPattern:
    return locale.currency_formats["standard"]


def money(amount_minor: int | None, currency: str = "EUR") -> str:
    if amount_minor is None:
        return ""
    return _money_in(amount_minor, currency, current_locale())


# A page shows the same few prices many times (every seat names its tier's):
# each is formatted once per language.
@lru_cache(maxsize=4096)
def _money_in(amount_minor: int, currency: str, locale: Locale) -> str:
    # The shop's amounts are in cents whatever the currency: two digits, always.
    return _currency_pattern(locale).apply(Decimal(amount_minor).scaleb(-2), locale, currency=currency,
                                           currency_digits=False)


@lru_cache(maxsize=64)
def _decimal_pattern(locale: Locale) -> NumberPattern:
    return locale.decimal_formats[None]


def number(value: int | float | None) -> str:
    """A count as the language writes it: 12,345 / 12.345."""
    if value is None:
        return ""
    return _number_in(value, current_locale())


@lru_cache(maxsize=4096)
def _number_in(value: int | float, locale: Locale) -> str:
    return _decimal_pattern(locale).apply(value, locale)


@lru_cache(maxsize=256)
def _when_pattern(fmt: str, language: str) -> DateTimePattern:
    """A strftime format as a parsed CLDR pattern; letters outside directives are quoted text."""
    if fmt == DEFAULT_WHEN and language in DEFAULT_WHEN_PATTERNS:
        return parse_date_pattern(DEFAULT_WHEN_PATTERNS[language])
    parts = []
    for directive, text in re.findall(r"%(.)|([^%]+)", fmt):
        if directive:
            parts.append(_STRFTIME_TO_CLDR.get(directive, ""))
        elif text:
            parts.append("'" + text.replace("'", "''") + "'" if re.search(r"[A-Za-z']", text) else text)
    return parse_date_pattern("".join(parts))


def when(value: datetime | None, fmt: str = DEFAULT_WHEN, tz: str | None = None) -> str:
    """A moment as people read it, with its zone's abbreviation whenever a clock time is shown.

    `tz` converts to that IANA zone first (a venue's); without it the value's
    own zone is used: an event's `starts_at` is already in its venue's zone,
    and the database's other times are UTC and say so. Names of days and
    months are the request's language (Babel); the zone's abbreviation is the
    time zone database's own ("CET"), the same in every language.
    """
    if not value:
        return ""
    if tz:
        value = localise(value, tz)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return _when_in(value, fmt, current_locale())


# The same moments come back on every page (an event's start): each is written once per format and language.
@lru_cache(maxsize=4096)
def _when_in(value: datetime, fmt: str, locale: Locale) -> str:
    text = _when_pattern(fmt.replace(" %Z", ""), locale.language).apply(value, locale)
    if "%H" in fmt or "%Z" in fmt:
        text += " " + value.strftime("%Z")
    return text


def _luminance(colour: str) -> float:
    """WCAG's relative luminance of a "#rrggbb" colour."""
    def channel(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    """WCAG's contrast ratio of two "#rrggbb" colours (1 to 21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def ink(colour: str) -> str:
    """Black or white, whichever reads better on this background: the text and marks on a tier's colour.

    An admin may pick any tier colour; the one of the two with the higher
    contrast always reaches 4.5:1 (the worse case, a mid grey, still gives
    about 4.6:1), so a seat's number is readable whatever was picked.
    """
    return "#000000" if contrast(colour, "#000000") >= contrast(colour, "#ffffff") else "#ffffff"


# The values an address kept by `_kept_url_for` may be built from: each builds one way only
# (a bool would share a key with 1 and build as "True").
_KEYABLE = (str, int, type(None))
_MOST_KEPT = 4096


def _kept_url_for(app: Flask):
    """Flask's `url_for` for templates, each address built once per process, in a request.

    A build through werkzeug's routing costs about 7 µs, and base.html asks
    for fifteen on every page, the waiting room's status six; the address
    depends only on the endpoint, its values and the request's adapter
    (script root, host, scheme), which make the key. Anything else (an
    external or anchored address, a relative endpoint, a value of another
    type, no request, a `url_defaults` function) is Flask's own call.
    """
    kept: dict[tuple, str] = {}
    build = app.url_for

    def url_for(endpoint: str, /, **values) -> str:
        context = _cv_request.get(None)
        adapter = context.url_adapter if context is not None else None
        if (adapter is None or endpoint[:1] == "." or app.url_default_functions
                or any(name[:1] == "_" or type(value) not in _KEYABLE for name, value in values.items())):
            return build(endpoint, **values)
        key = (endpoint, adapter.script_name, adapter.server_name, adapter.subdomain, adapter.url_scheme,
               *values.items())
        found = kept.get(key)
        if found is None:
            found = build(endpoint, **values)
            if len(kept) >= _MOST_KEPT:
                kept.clear()  # ids in addresses (a hold's) come and go: start again rather than grow
            kept[key] = found
        return found

    return url_for


def register(app: Flask) -> None:
    app.jinja_env.globals["url_for"] = _kept_url_for(app)
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["ink"] = ink
    app.jinja_env.filters["when"] = when
    app.jinja_env.filters["number"] = number
    # The switcher's languages, each named in itself, and the page's own (<html lang>).
    app.jinja_env.globals.update(languages=LANGUAGES, page_language=lambda: current_locale().language)
    # The attendee fields' names, spelt once (services/selling/attendees.py) for forms and their checks.
    from webapp.services.selling.attendees import order_field, ticket_field

    app.jinja_env.globals.update(order_field=order_field, ticket_field=ticket_field)
    # How the map, its legend and the hold page say a seat's properties.
    app.jinja_env.globals["seat_property_words"] = SEAT_PROPERTIES
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
