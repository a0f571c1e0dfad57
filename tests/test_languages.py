"""The buyer's language: the switcher, the organiser's default, and Babel's dates, numbers and money."""
from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import g
from flask_babel import force_locale
from sqlalchemy import text

from tests.support import admin_client, csrf_token, login, reserve_seats
from webapp.i18n import LANGUAGE_COOKIE
from webapp.shop.language import ONE_YEAR
from webapp.templating import money, number, when


def fresh(client, method: str, url: str, **kw):
    """A request of its own: the tests' requests share one app context, where the language is kept."""
    for kept in ("_flask_babel", "_login_user", "csrf_token"):
        g.pop(kept, None)
    return getattr(client, method)(url, **kw)


def html_lang(page: str) -> str:
    return re.search(r'<html lang="([a-z]+)"', page).group(1)


def test_the_switcher_keeps_the_choice_a_year_and_returns_to_the_page(client, factory, app):
    event = factory.ga_event(capacity=5)
    token = csrf_token(client)
    answer = fresh(client, "post", "/language", data={"lang": "es", "next": f"/events/{event.id}?qty=1",
                                                      "csrf_token": token})
    assert answer.status_code == 303 and answer.headers["Location"] == f"/events/{event.id}?qty=1"
    cookie = answer.headers["Set-Cookie"]
    assert f"{LANGUAGE_COOKIE}=es" in cookie and f"Max-Age={ONE_YEAR}" in cookie and "SameSite=Lax" in cookie
    assert ("Secure" in cookie) == bool(app.config.get("SESSION_COOKIE_SECURE"))
    page = fresh(client, "get", f"/events/{event.id}").get_data(as_text=True)
    assert html_lang(page) == "es" and "Entradas" in page and "Reservar entradas" in page


def test_the_switcher_sends_nobody_to_another_site_and_ignores_a_language_we_do_not_speak(client, app_ctx):
    token = csrf_token(client)
    for elsewhere in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        answer = fresh(client, "post", "/language", data={"lang": "de", "next": elsewhere, "csrf_token": token})
        assert answer.headers["Location"] == "/"
    answer = fresh(client, "post", "/language", data={"lang": "xx", "next": "/", "csrf_token": token})
    assert answer.status_code == 303 and LANGUAGE_COOKIE not in answer.headers.get("Set-Cookie", "")


def test_the_switcher_needs_the_csrf_token(client, app_ctx):
    assert fresh(client, "post", "/language", data={"lang": "de", "next": "/"}).status_code == 400


def test_every_buyer_page_has_the_switcher_with_each_language_named_in_itself(client, factory):
    event = factory.seated_event(rows=1, seats_per_row=2)
    page = fresh(client, "get", f"/events/{event.id}", headers={"Accept-Language": "de-DE"}).get_data(as_text=True)
    assert html_lang(page) == "de"
    for code, name in (("en", "English"), ("de", "Deutsch"), ("es", "Español")):
        assert re.search(rf'name="lang" value="{code}" lang="{code}"[^>]*>{name}</button>', page)
    assert re.search(r'value="de" lang="de" aria-current="true"', page)
    assert f'name="next" value="/events/{event.id}"' in page


def test_the_hold_survives_the_switch(client, factory, session):
    user = factory.user()
    event = factory.seated_event(rows=1, seats_per_row=4)
    hold = reserve_seats(session, user_id=user.id, event_id=event.id, unit_ids=factory.seat_ids(event)[:2])
    session.commit()
    token = login(client, user.email)
    before = fresh(client, "get", f"/holds/{hold.id}").get_data(as_text=True)
    answer = fresh(client, "post", "/language", data={"lang": "de", "next": f"/holds/{hold.id}", "csrf_token": token})
    assert answer.headers["Location"] == f"/holds/{hold.id}"
    after = fresh(client, "get", f"/holds/{hold.id}").get_data(as_text=True)
    assert html_lang(after) == "de" and "Ihre Reservierung" in after and "Your reservation" in before
    assert session.execute(text("SELECT status FROM holds WHERE id = :h"), {"h": hold.id}).scalar() == "active"
    # The same seats, in the new language's words.
    assert after.count("Reihe") >= 2 and "Platz 1" in after


def test_the_organisers_default_language_serves_a_buyer_whose_browser_asks_for_none_we_speak(client, factory,
                                                                                              session):
    event = factory.ga_event(capacity=5)
    session.execute(text("UPDATE organisers SET default_locale = 'es' WHERE id = :o"), {"o": event.organiser_id})
    session.commit()
    asked_french = {"Accept-Language": "fr-FR"}
    assert html_lang(fresh(client, "get", f"/events/{event.id}", headers=asked_french).get_data(as_text=True)) == "es"
    slug = session.execute(text("SELECT slug FROM organisers WHERE id = :o"), {"o": event.organiser_id}).scalar()
    assert html_lang(fresh(client, "get", f"/o/{slug}", headers=asked_french).get_data(as_text=True)) == "es"
    # The browser's own language still comes first.
    assert html_lang(fresh(client, "get", f"/events/{event.id}",
                           headers={"Accept-Language": "de"}).get_data(as_text=True)) == "de"


def test_money_dates_and_numbers_are_the_languages_own(app_ctx):
    moment = datetime(2026, 12, 12, 19, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    # English as the shop always wrote it.
    assert (money(123450), money(8500, "GBP"), when(moment), number(12345)) == (
        "€1,234.50", "£85.00", "Sat 12 Dec 2026, 19:30 CET", "12,345")
    with force_locale("de"):
        assert (money(123450), when(moment), when(moment, "%d %b %Y"), number(12345)) == (
            "1.234,50\xa0€", "Sa., 12. Dez. 2026, 19:30 CET", "12 Dez. 2026", "12.345")
    with force_locale("es"):
        assert (money(123450), when(moment)) == ("1.234,50\xa0€", "sáb, 12 dic 2026, 19:30 CET")
    # A venue's clock: the zone converts, the abbreviation is the time zone database's.
    assert when(datetime(2026, 7, 1, 18, 0, tzinfo=ZoneInfo("UTC")), tz="America/New_York").endswith("14:00 EDT")


def test_an_owner_sets_the_organisers_default_language_on_the_team_page(client, factory, session):
    event = factory.ga_event(capacity=5)
    client, admin, token = admin_client(client, factory)
    fresh(client, "get", "/admin/")  # acting for the first organiser: the event's
    refused = fresh(client, "post", "/admin/team/language", data={"locale": "fr", "csrf_token": token})
    assert refused.status_code == 400 and "Choose one of the shop" in refused.get_data(as_text=True)
    saved = fresh(client, "post", "/admin/team/language", data={"locale": "de", "csrf_token": token})
    assert saved.status_code == 303
    locale = session.execute(text("SELECT default_locale FROM organisers WHERE id = :o"),
                             {"o": event.organiser_id}).scalar()
    assert locale == "de"
    page = fresh(client, "get", "/admin/team").get_data(as_text=True)
    assert re.search(r'<option value="de" lang="de" selected>Deutsch</option>', page)
    logged = session.execute(text("SELECT count(*) FROM audit_log WHERE action = 'organiser.language'")).scalar()
    assert logged == 1
