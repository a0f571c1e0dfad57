"""A pseudo-locale for finding strings nobody marked for translation.

Every msgid of the catalogs is "translated" to itself wrapped in ⟦ ⟧, and
installed as a language's catalog for the test's requests. A page rendered in
that language shows every marked string inside the markers; whatever visible
text is left outside them must be data (names, titles, numbers, dates), or it
is an English string that never went through gettext.
"""
from __future__ import annotations

import io
import re
from contextlib import contextmanager
from html.parser import HTMLParser

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from flask_babel import get_domain

from webapp import i18n
from webapp.i18n import TRANSLATIONS
from webapp.shop import hall

OPEN, CLOSE = "⟦", "⟧"
# Text that is code or data, not words for people: never a finding.
SKIPPED_TAGS = {"script", "style", "code", "pre", "textarea", "svg", "iframe", "head"}
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# Attributes people read (a tooltip, a placeholder, what a screen reader says, a confirm box).
READ_ATTRIBUTES = ("placeholder", "aria-label", "title", "hx-confirm")
WORD = re.compile(r"[^\W\d_]{2,}")


def pseudo_translations(locale: str = "de") -> Translations:
    """Every msgid of the repo's catalog, wrapped in the markers (plural forms too)."""
    with (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").open("rb") as source:
        real = read_po(source, locale=locale)
    pseudo = Catalog(locale=locale)
    for message in real:
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            # As many forms as the language has (Spanish has three): the last one repeats the plural.
            forms = [OPEN + form + CLOSE for form in message.id]
            forms += forms[-1:] * (pseudo.num_plurals - len(forms))
            pseudo.add(message.id, tuple(forms))
        else:
            pseudo.add(message.id, OPEN + message.id + CLOSE)
    compiled = io.BytesIO()
    write_mo(compiled, pseudo)
    compiled.seek(0)
    return Translations(compiled)


def forget_kept_words() -> None:
    """Drop what the app keeps per language for the process, beside Flask-Babel's cache.

    The templates' catalogs (webapp/i18n.py) and the seat map's drawn words
    (shop/hall.py) are kept by language code: a pseudo-catalog put in for `de`
    must neither find German kept from before nor stay kept for the tests after.
    """
    i18n._CATALOGS.clear()
    hall._states_in.cache_clear()
    for kept in (hall._HALLS, hall._SECTIONS):
        kept._entries.clear()


@contextmanager
def installed(app, locale: str, translations: Translations):
    """Requests in `locale` use `translations` until the block ends (Flask-Babel's own cache is the seam)."""
    with app.app_context():
        cache = get_domain().cache
        key = (locale, "messages")
        kept = cache.pop(key, None)
        cache[key] = translations
    forget_kept_words()
    try:
        yield
    finally:
        with app.app_context():
            get_domain().cache.pop(key, None)
            if kept is not None:
                get_domain().cache[key] = kept
        forget_kept_words()


class _VisibleText(HTMLParser):
    """The text a person sees inside <main>, and the attributes they read, joined with line breaks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool, bool]] = []  # (tag, inside <main>, skipped)
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        inside, skipped = self.stack[-1][1:] if self.stack else (False, False)
        values = dict(attrs)
        inside = inside or tag == "main"
        skipped = (skipped or tag in SKIPPED_TAGS or "json" in (values.get("class") or "").split()
                   or (tag == "select" and values.get("name") == "timezone"))
        if inside and not skipped:
            self.parts.extend(values[name] for name in READ_ATTRIBUTES if values.get(name))
        if tag not in VOID_TAGS:
            self.stack.append((tag, inside, skipped))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID_TAGS:
            self.stack.pop()

    def handle_endtag(self, tag):
        for depth in range(len(self.stack) - 1, -1, -1):
            if self.stack[depth][0] == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data):
        if self.stack and self.stack[-1][1] and not self.stack[-1][2]:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    return "\n".join(parser.parts)


def outside_markers(text: str) -> str:
    """The text with every marked stretch taken out; a marker may hold another (a translated value)."""
    kept, depth = [], 0
    for char in text:
        if char == OPEN:
            depth += 1
        elif char == CLOSE:
            depth = max(0, depth - 1)
        elif depth == 0:
            kept.append(char)
    return "".join(kept)


def words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text)}


def unmarked_words(html: str, data: set[str]) -> set[str]:
    """The words a person sees that are neither inside a marker nor data."""
    return words(outside_markers(visible_text(html))) - data
