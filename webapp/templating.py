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


def register(app: Flask) -> None:
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["ink"] = ink
    app.jinja_env.filters["when"] = when
    # The attendee fields' names, spelt once (services/selling/attendees.py) for forms and their checks.
    from webapp.services.selling.attendees import order_field, ticket_field

    app.jinja_env.globals.update(order_field=order_field, ticket_field=ticket_field)
    # How the map, its legend and the hold page say a seat's properties.
    app.jinja_env.globals["seat_property_words"] = SEAT_PROPERTIES
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
