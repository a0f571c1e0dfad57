"""Untrusted text to values, in one place: what every view and form parses with.

The fuzzed 500s all came from a few Python conveniences that accept more than
PostgreSQL or the standard library will: `str.isdigit()` is true for
superscript digits that `int()` rejects, `Decimal` parses `sNaN` and
`Infinity`, `date` goes to year 9999 where `+ timedelta(days=1)` overflows,
and Python ints have no bigint limit. A NUL character passes everything and
psycopg2 then refuses the whole statement. These helpers accept only what
the database and the rest of the code can carry, and say no with a 400.
"""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation

from flask import Flask, request
from flask import Request as FlaskRequest
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import BadRequest, RequestHeaderFieldsTooLarge, RequestURITooLarge
from werkzeug.routing import IntegerConverter
from wtforms import DecimalField

# Table ids are PostgreSQL `integer`; counts and page numbers fit in it too.
INT_MAX = 2**31 - 1
# ASCII only: `\d` and `isdigit()` both accept digits int() or Postgres refuse.
_INT = re.compile(r"[+-]?[0-9]{1,10}")
# Years a date filter may ask for; anything outside finds no event anyway.
MIN_YEAR, MAX_YEAR = 1900, 2999
# The request's head. gunicorn can only refuse in HTML, with no word of what
# was wrong: its limits (launcher.gunicorn_command) sit above these, so the app
# answers first, as a page or as problem details on /api/.
MAX_TARGET_BYTES = 4096  # path and query, as sent
MAX_HEADER_BYTES = 8190  # one field, "Name: value", gunicorn's default
MAX_HEADER_FIELDS = 100


class BadInput(BadRequest):
    """A value that cannot be what it claims to be: a 400 with a plain message."""


def parse_int(raw: str | None, *, minimum: int = -INT_MAX, maximum: int = INT_MAX) -> int | None:
    """An ASCII whole number within [minimum, maximum], or None."""
    if raw is None:
        return None
    text = raw.strip()
    if not _INT.fullmatch(text):
        return None
    value = int(text)
    return value if minimum <= value <= maximum else None


def parse_id(raw: str | None) -> int | None:
    """A table id (positive `integer`), or None."""
    return parse_int(raw, minimum=1)


def parse_date(raw: str | None) -> date | None:
    """An ISO date in a sane range of years, or None."""
    if not raw:
        return None
    try:
        value = date.fromisoformat(raw.strip())
    except ValueError:
        return None
    return value if MIN_YEAR <= value.year <= MAX_YEAR else None


def parse_decimal(raw: str | None) -> Decimal | None:
    """A finite decimal (no NaN, sNaN or Infinity), or None."""
    if raw is None:
        return None
    try:
        value = Decimal(raw.strip())
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def attendee_fields() -> dict[str, list[str]]:
    """The request form's attendee fields (services/selling/attendees.py names them), and nothing else of it."""
    return {key: request.form.getlist(key)[:50] for key in request.form if key.startswith(("ticket-", "order-"))}


def like_pattern(text: str) -> str:
    """`%text%` for LIKE/ILIKE with `\\`, `%` and `_` taken literally (escape='\\')."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class FiniteDecimalField(DecimalField):
    """WTForms' DecimalField, refusing NaN, sNaN and Infinity (which break every comparison after)."""

    def process_formdata(self, valuelist):
        if valuelist and valuelist[0].strip():
            self.data = parse_decimal(valuelist[0])
            if self.data is None:
                self.data = None
                raise ValueError(self.gettext("Enter a number, e.g. 12.50."))


class BoundedIntConverter(IntegerConverter):
    """`<int:...>` in routes, capped at the `integer` range: a huge id is a 404, not a DataError."""

    def __init__(self, map, *args, **kwargs):  # noqa: A002 - werkzeug's signature
        kwargs.setdefault("max", INT_MAX)
        super().__init__(map, *args, **kwargs)


class _Parameters(ImmutableMultiDict):
    """Query and form parameters whose `.get(key, type=int)` is `parse_int`.

    Views read numbers with `request.args.get("page", 1, type=int)`; builtin
    `int` would take superscripts (no: it raises, and the value is dropped)
    and numbers past bigint (yes: then PostgreSQL raises). Bounding it here
    fixes every such read at once.
    """

    def get(self, key, default=None, type=None):  # noqa: A002 - MultiDict's signature
        if type is int:
            value = parse_int(super().get(key))
            return default if value is None else value
        return super().get(key, default, type)


class Request(FlaskRequest):
    parameter_storage_class = _Parameters


def _refuse_oversized_head() -> None:
    environ = request.environ
    target = environ.get("RAW_URI") or environ.get("PATH_INFO", "") + "?" + environ.get("QUERY_STRING", "")
    if len(target) > MAX_TARGET_BYTES:
        raise RequestURITooLarge(f"This address is too long: the limit is {MAX_TARGET_BYTES} characters "
                                 "of path and query.")
    fields = 0
    for key, value in environ.items():
        # The WSGI environ keeps headers as HTTP_* (and these two unprefixed).
        if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            fields += 1
            if len(key) + 2 + len(value) > MAX_HEADER_BYTES:
                raise RequestHeaderFieldsTooLarge(
                    f"The header {key.removeprefix('HTTP_').replace('_', '-').title()} is too large: "
                    f"the limit is {MAX_HEADER_BYTES} bytes.")
    if fields > MAX_HEADER_FIELDS:
        raise RequestHeaderFieldsTooLarge(f"Too many headers: the limit is {MAX_HEADER_FIELDS}.")


def _reject_nul() -> None:
    # PostgreSQL text cannot hold U+0000: refuse it once, for every parameter
    # and field, before any view or form sees it.
    if "\x00" in request.path:
        raise BadInput("The address contains a character that is not allowed.")
    # Most requests (polls, pages) have neither a query nor a body: skip
    # building the empty parameter dictionaries for them.
    sources = [request.args] if request.query_string else []
    if request.method not in ("GET", "HEAD"):
        sources.append(request.form)
    for source in sources:
        for key, values in source.lists():
            if "\x00" in key or any("\x00" in v for v in values):
                raise BadInput("The request contains a character that is not allowed (NUL).")


def register(app: Flask) -> None:
    """Call before any blueprint is registered: routes bind their converters when added."""
    app.request_class = Request
    app.url_map.converters["int"] = BoundedIntConverter
    app.before_request(_refuse_oversized_head)
    app.before_request(_reject_nul)
