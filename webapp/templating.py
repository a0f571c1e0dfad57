"""Jinja filters and globals shared by every template."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Flask

from webapp.models import SEAT_PROPERTIES
from webapp.timezones import localise

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}


def money(amount_minor: int | None, currency: str = "EUR") -> str:
    if amount_minor is None:
        return ""
    symbol = CURRENCY_SYMBOLS.get(currency)
    value = f"{amount_minor / 100:,.2f}"
    return f"{symbol}{value}" if symbol else f"{value} {currency}"


def when(value: datetime | None, fmt: str = "%a %d %b %Y, %H:%M", tz: str | None = None) -> str:
    """A moment as people read it, with its zone's abbreviation whenever a clock time is shown.

    `tz` converts to that IANA zone first (a venue's); without it the value's
    own zone is used: an event's `starts_at` is already in its venue's zone,
    and the database's other times are UTC and say so.
    """
    if not value:
        return ""
    if tz:
        value = localise(value, tz)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    if "%H" in fmt and "%Z" not in fmt:
        fmt += " %Z"
    return value.strftime(fmt)


def register(app: Flask) -> None:
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["when"] = when
    # How the map, its legend and the hold page say a seat's properties.
    app.jinja_env.globals["seat_property_words"] = SEAT_PROPERTIES
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
