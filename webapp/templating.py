"""Jinja filters and globals shared by every template."""
from __future__ import annotations

from datetime import datetime

from flask import Flask

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}


def money(amount_minor: int | None, currency: str = "EUR") -> str:
    if amount_minor is None:
        return ""
    symbol = CURRENCY_SYMBOLS.get(currency)
    value = f"{amount_minor / 100:,.2f}"
    return f"{symbol}{value}" if symbol else f"{value} {currency}"


def when(value: datetime | None, fmt: str = "%a %d %b %Y, %H:%M") -> str:
    return value.strftime(fmt) if value else ""


def register(app: Flask) -> None:
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["when"] = when
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
