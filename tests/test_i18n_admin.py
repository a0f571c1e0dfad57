"""The organiser's side speaks German and Spanish: every admin and door page, walked as an owner.

In a pseudo-locale every marked string comes out wrapped in ⟦ ⟧, so a word a
person sees outside the markers is either data (a title, a name, a code, a
date) or an English string nobody marked: the walk fails on the second. The
real catalogs are checked too: no empty or fuzzy entry for these strings, the
same placeholders as the English, and no English sentence of ours left on a
German or Spanish page.
"""
from __future__ import annotations

import json
import re

import pytest
from babel.dates import get_day_names, get_month_names
from babel.messages.pofile import read_po
from sqlalchemy import text

from tests import pseudo_locale
from tests.organiser_world import make_side
from tests.support import login
from tests.test_api import FreshContextClient
from webapp.api.problems import TITLES
from webapp.extensions import db
from webapp.i18n import LANGUAGE_COOKIE, LANGUAGES, TRANSLATIONS
from webapp.models import Ticket

STAFF_PREFIXES = ("/admin", "/door")
# Where the organiser's side keeps its strings: the entries this side of the catalogs answers for.
OUR_SOURCES = ("webapp/admin/", "webapp/door/", "webapp/templates/admin/", "webapp/templates/door/",
               "webapp/templates/api/docs.html")
# Data, not sentences: the words the `when` filter prints for dates (localised with the buyer's pages'
# formatting), currency codes, and the clock zone the pages name.
FORMAT_WORDS = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
                "mon", "tue", "wed", "thu", "fri", "sat", "sun", "utc", "eur", "gmt"}
# Text columns whose values pages show as they are.
DATA_SQL = """
SELECT concat_ws(' ', title, venue, description, timezone) FROM events
UNION ALL SELECT name FROM tiers
UNION ALL SELECT concat_ws(' ', name, email) FROM users
UNION ALL SELECT concat_ws(' ', name, slug) FROM organisers
UNION ALL SELECT concat_ws(' ', code, batch) FROM codes
UNION ALL SELECT label FROM questions
UNION ALL SELECT concat_ws(' ', section, row_label) FROM units
UNION ALL SELECT concat_ws(' ', action, entity) FROM audit_log
UNION ALL SELECT concat_ws(' ', subject, recipient, template, last_error) FROM outbox_messages
UNION ALL SELECT url FROM webhook_endpoints
UNION ALL SELECT event_type FROM webhook_deliveries
UNION ALL SELECT concat_ws(' ', billing_name, billing_address, cancel_reason) FROM orders
UNION ALL SELECT series FROM invoices
"""


@pytest.fixture
def client(app):
    # Flask-Babel keeps the request's language on `g`: each request needs an app context of its own.
    return FreshContextClient(app, app.response_class, use_cookies=True)


@pytest.fixture
def staff_world(factory):
    side = make_side(factory, "alpha", "Alpha")
    # A seated event too, so that the seat map, the generator and the seat properties are walked.
    seated = factory.seated_event(rows=2, seats_per_row=4, title="Alpha Hall", organiser_id=side.organiser.id)
    side.ids["seated_event_id"] = seated.id
    return side


def staff_pages(app, ids: dict[str, int]) -> list[str]:
    """Every GET page of the admin area and the door, with the world's ids; the seated event's pages as well."""
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(STAFF_PREFIXES) or "GET" not in rule.methods:
            continue
        values = {name: ids.get(name, {"field": "title", "name": "x.eml", "index": 0}.get(name))
                  for name in rule.arguments}
        if None in values.values():
            continue
        urls.append(rule.build(values, append_unknown=False)[1])
        if "event_id" in rule.arguments:
            urls.append(rule.build({**values, "event_id": ids["seated_event_id"]}, append_unknown=False)[1])
    return sorted(set(urls))


def date_words(language: str) -> set[str]:
    """The month and day names the `when` filter writes in `language` (CLDR's, as the buyer's pages)."""
    names: list[str] = []
    for width in ("abbreviated", "wide"):
        for context in ("format", "stand-alone"):
            names += get_month_names(width, context, locale=language).values()
            names += get_day_names(width, context, locale=language).values()
    return pseudo_locale.words(" ".join(names))


def data_words(client, language: str) -> set[str]:
    rows = db.session.execute(text(DATA_SQL)).scalars()
    # Each language is named in its own words (the organiser's default-language choice, as the switcher).
    found = FORMAT_WORDS | date_words(language) | pseudo_locale.words(" ".join(LANGUAGES.values()))
    for value in rows:
        found |= pseudo_locale.words(value or "")
    # The API reference shows the OpenAPI document's own words (summaries, descriptions) and the problem
    # titles the API answers with: the API speaks English, and the page quotes it.
    found |= pseudo_locale.words(json.dumps(client.get("/api/openapi.json").get_json(), ensure_ascii=False))
    found |= pseudo_locale.words(" ".join(str(title) for title in TITLES.values()))
    return found


def walk(client, app, side, csrf: str) -> dict[str, str]:
    """url → HTML of every staff page that answers with a page, plus the check-in verdicts."""
    pages = {}
    for url in staff_pages(app, side.ids) + ["/api/docs"]:
        response = client.get(url)
        assert response.status_code < 500, url
        if response.status_code == 200 and response.mimetype == "text/html":
            pages[url] = response.get_data(as_text=True)
    code = db.session.scalar(db.select(Ticket.code).where(Ticket.order_id == side.ids["order_id"]))
    db.session.rollback()  # no transaction left open while the pages are walked
    event_id = side.ids["event_id"]
    for attempt, typed in (("valid", code), ("again", code), ("unknown", "NO-SUCH-CODE")):
        for url in (f"/door/events/{event_id}/check-in", f"/admin/events/{event_id}/check-in"):
            response = client.post(url, data={"code": typed, "csrf_token": csrf}, headers={"HX-Request": "true"})
            pages[f"POST {url} ({attempt})"] = response.get_data(as_text=True)
    return pages


@pytest.mark.parametrize("language", ["de", "es"])
def test_every_staff_page_shows_only_marked_strings_and_data(app, client, staff_world, language):
    csrf = login(client, staff_world.members["owner"].email)
    client.set_cookie(LANGUAGE_COOKIE, language)
    with pseudo_locale.installed(app, language, pseudo_locale.pseudo_translations(language)):
        pages = walk(client, app, staff_world, csrf)
        data = data_words(client, language)
    assert len(pages) >= 40
    assert [url for url, html in pages.items() if pseudo_locale.OPEN not in html] == []
    found = {url: sorted(pseudo_locale.unmarked_words(html, data)) for url, html in pages.items()}
    # Each finding with the text around it, so that the failure says where to look.
    shown = {url: {word: _around(pages[url], word) for word in words} for url, words in found.items() if words}
    assert shown == {}


def _around(html: str, word: str) -> str:
    text = pseudo_locale.outside_markers(pseudo_locale.visible_text(html))
    at = text.lower().find(word)
    return text[max(0, at - 60):at + 60]


def _our_entries(language: str):
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as source:
        catalog = read_po(source, locale=language)
    return [m for m in catalog if m.id and any(path.startswith(OUR_SOURCES) for path, _ in m.locations)]


PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]|%%")


@pytest.mark.parametrize("language", ["de", "es"])
def test_the_catalogs_translate_every_string_of_ours_with_the_same_placeholders(language):
    entries = _our_entries(language)
    assert len(entries) >= 700
    empty = [m.id for m in entries if not m.string or not all(m.string if isinstance(m.string, tuple) else [m.string])]
    fuzzy = [m.id for m in entries if m.fuzzy]
    changed = []
    for m in entries:
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        wanted = sorted(set(PLACEHOLDER.findall(" ".join(ids))) - {"%(num)d"})
        if any(sorted(set(PLACEHOLDER.findall(s)) - {"%(num)d"}) != wanted for s in strings):
            changed.append(m.id)
    assert (empty, fuzzy, changed) == ([], [], [])


@pytest.mark.parametrize("language", ["de", "es"])
def test_no_english_sentence_of_ours_is_left_on_a_translated_page(app, client, staff_world, language):
    csrf = login(client, staff_world.members["owner"].email)
    client.set_cookie(LANGUAGE_COOKIE, language)
    pages = walk(client, app, staff_world, csrf)
    # Sentences only (three words or more, no placeholder): a single word may well be the same in both languages.
    english = {m.id for m in _our_entries(language)
               if isinstance(m.id, str) and "%" not in m.id and "<" not in m.id and len(m.id.split()) >= 3
               and m.string != m.id}
    # The API reference quotes the OpenAPI document, which is English data: its sentences do not count.
    spec = json.dumps(client.get("/api/openapi.json").get_json(), ensure_ascii=False)
    english -= {s for s in english if s in spec}
    left = {url: sorted(s for s in english if s in pseudo_locale.visible_text(html)) for url, html in pages.items()}
    assert {url: sentences for url, sentences in left.items() if sentences} == {}
    dashboard = pages[f"/admin/events/{staff_world.ids['event_id']}"]
    assert {"de": "Übersicht", "es": "Panel"}[language] in dashboard


def test_the_checker_finds_an_unmarked_string_and_lets_marked_strings_and_data_pass(app):
    page = app.jinja_env.from_string(
        "<main><h1>{{ _('Manage events') }}</h1><p>{{ title }} · Forgotten words</p>"
        "<button aria-label=\"Remove it\">{{ _('Remove') }}</button><code>not words</code></main>")
    with pseudo_locale.installed(app, "de", pseudo_locale.pseudo_translations("de")):
        with app.test_request_context("/", headers={"Cookie": f"{LANGUAGE_COOKIE}=de"}):
            html = page.render(title="Alpha Night")
    assert "⟦Manage events⟧" in html
    assert pseudo_locale.unmarked_words(html, {"alpha", "night"}) == {"forgotten", "words", "remove", "it"}
    # Inside a marked string, a translated value is marked again; the data between stays data.
    assert pseudo_locale.outside_markers("⟦Acting for Alpha as ⟦owner⟧⟧ left") == " left"



def test_templates_follow_a_forced_locale_within_one_request(app):
    # The templates' gettext keeps the request's catalog (webapp/i18n.py); a mail rendered in the buyer's
    # language inside the request (force_locale) must still get that language's catalog.
    from flask_babel import force_locale

    page = app.jinja_env.from_string("{{ _('Check in') }}")
    with app.test_request_context("/", headers={"Cookie": f"{LANGUAGE_COOKIE}=de"}):
        assert page.render() == "Einlassen"
        with force_locale("es"):
            assert page.render() == "Validar"
        assert page.render() == "Einlassen"
