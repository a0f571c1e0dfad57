"""The language a mail, PDF, `.ics` or wallet pass is made in: the one stored with it, inside a request or not.

What the buyer reads later (the worker's mails, a PDF downloaded from
another browser, an admin's cancellation) speaks the language they used
when they bought or signed up, kept on the order, the waiting-list entry,
the waiting-room place and the outbox row (migration 0028), not the
language of whoever happens to cause it.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app, g
from flask_babel import force_locale, get_locale


@contextmanager
def speaking(locale: str | None) -> Iterator[None]:
    """Translate and format in `locale` (None: leave the current one) for the block."""
    if not locale:
        yield
        return
    # Flask-Babel keeps its per-context state on `g` and treats an empty `g`
    # (the worker's fresh app context) as "no context": force_locale would
    # silently do nothing and the mail would go out in English.
    outer = g.get("language_forced")
    g.language_forced = locale
    try:
        with force_locale(locale):
            yield
    finally:
        g.language_forced = outer


def current() -> str:
    """The language being spoken: forced by `speaking`, else the request's (webapp/i18n.py chose it),
    else (a command, the worker) the install's."""
    locale = get_locale()
    return locale.language if locale else current_app.config.get("DEFAULT_LOCALE", "en")
